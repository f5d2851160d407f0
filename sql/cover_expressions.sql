-- Expression atoms: expr = c, expr IN (...) and expr < <= > >= c over immutable expressions of the
-- table's own columns ((a + b) % m, lower(), jsonb ->>, date_trunc, casts,
-- length()) are filed under the expression's virtual column, shown by
-- explain_shape, and routed exactly as PostgreSQL evaluates them: errors
-- (error records), NULL results, rows moving in and out, unchanged TOASTed
-- values, a default replica identity, shapes registered mid-stream and a
-- column added mid-stream, on a slot that applies the registrations from the
-- stream and on one that loads them at its start.
SET synchronous_commit = on;
SELECT setval('shape_router.shape_id_seq', 9000, false);
CREATE TABLE ex (id int PRIMARY KEY, amount int8, priority int, email text, payload jsonb, ts timestamp,
                 title varchar, n int, big text);
ALTER TABLE ex REPLICA IDENTITY FULL;
ALTER TABLE ex ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE TABLE exd (id int PRIMARY KEY, v int);
CREATE TABLE exp (id int, part int, s text) PARTITION BY LIST (part);
CREATE TABLE exp1 PARTITION OF exp FOR VALUES IN (1);
CREATE TABLE exp2 PARTITION OF exp FOR VALUES IN (2);
ALTER TABLE exp1 REPLICA IDENTITY FULL;
ALTER TABLE exp2 REPLICA IDENTITY FULL;
CREATE TABLE ex_shapes (shape_id bigint, tbl regclass, clause text, from_seq int);
SELECT 'init' FROM pg_create_logical_replication_slot('ex_stream', 'shape_router');
INSERT INTO ex_shapes
SELECT shape_router.register_shape('ex', clause), 'ex', clause, 0
  FROM unnest(ARRAY['(amount + priority) % 1000003 = 5', '(amount + priority) % 1000003 IN (6, 7)',
                    'lower(email) = ''x@y.com''', 'lower(email) IN (''a@b.com'', ''c@d.com'')',
                    'payload->>''kind'' = ''order''', 'payload->>''kind'' IN (''refund'', ''order'')',
                    'date_trunc(''day'', ts) = ''2026-01-02''', 'ts::date = ''2026-01-01''',
                    'length(title) IN (3, 4)', '100 / (n - 3) = 5', 'left(big, 3) = ''abc''',
                    'lower(email) = ''x@y.com'' AND n > 2', 'length(title) = 3 OR lower(email) = ''a@b.com''',
                    'upper(title)::text = ''ABCDEF''', '(amount + priority) % 1000003 > 999990',
                    '5 < length(title)', 'payload->>''kind'' < ''b''', 'date_trunc(''day'', ts) >= ''2026-01-02''',
                    '100 / (n - 3) <= 5', '(amount * 2) >= 6']) AS clause;
INSERT INTO ex_shapes
SELECT shape_router.register_shape('exd', clause), 'exd', clause, 0
  FROM unnest(ARRAY['id % 7 = 3', '(id * 2) IN (4, 8, 206)', 'abs(id - 10) = 2']) AS clause;
-- on a partitioned table: its partitions' rows are keyed in its layout
INSERT INTO ex_shapes
SELECT shape_router.register_shape('exp', clause), 'exp', clause, 0
  FROM unnest(ARRAY['lower(s) = ''ab''', '(id + part) % 4 IN (0, 1)']) AS clause;
-- negations and NULL tests of expressions: NULL and complement atoms on the virtual column
INSERT INTO ex_shapes
SELECT shape_router.register_shape('ex', clause), 'ex', clause, 0
  FROM unnest(ARRAY['lower(email) <> ''x@y.com''', 'payload->>''kind'' NOT IN (''refund'', ''order'')',
                    'payload->>''kind'' IS NULL', '(amount + priority) % 1000003 IS NOT NULL',
                    '100 / (n - 3) <> 5', 'length(title) IS NULL AND n > 20',
                    'payload->>''kind'' NOT IN (''order'', NULL)']) AS clause;
SELECT shape_id, clause, l AS routing
  FROM ex_shapes, shape_router.explain_shape(shape_id) l
 WHERE l LIKE 'routing:%' OR l LIKE '  alternative%'
 ORDER BY shape_id, l;
-- one expression, one virtual column: each text is stored once
SELECT relid::regclass, count(*) AS expressions, count(DISTINCT attnum) AS columns,
       bool_and(attnum >= 4096 AND attnum < 8192) AS virtual
  FROM shape_router.index_expressions GROUP BY relid ORDER BY relid::regclass::text;
-- IS DISTINCT FROM: a complement and a NULL atom; forms that stay scan shapes: not a
-- constant, a mutable function
CREATE TABLE exr (id int PRIMARY KEY, email text);
ALTER TABLE exr REPLICA IDENTITY FULL;
CREATE TABLE exr_shapes AS
SELECT shape_router.register_shape('exr', clause) AS shape_id, clause
  FROM unnest(ARRAY['lower(email) IS DISTINCT FROM ''m''', 'abs(id) = id', 'lower(email) = email']) AS clause;
SELECT clause, l AS routing
  FROM exr_shapes, shape_router.explain_shape(shape_id) l
 WHERE l LIKE 'routing:%'
 ORDER BY shape_id;
-- an extension installed by an older script of 0.1, without index_expressions: a scan shape
ALTER TABLE shape_router.index_expressions RENAME TO index_expressions_away;
SELECT shape_router.register_shape('exr', 'lower(email) = ''x''') AS exr_old \gset
ALTER TABLE shape_router.index_expressions_away RENAME TO index_expressions;
SELECT l AS routing FROM shape_router.explain_shape(:exr_old) l WHERE l LIKE 'routing:%';

SELECT 'init' FROM pg_create_logical_replication_slot('ex_load', 'shape_router');
CREATE TABLE ex_log (seq serial, tbl regclass, op text, old_row jsonb, new_row jsonb);
CREATE FUNCTION ex_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO ex_log (tbl, op, old_row, new_row)
  VALUES (TG_RELID, TG_OP, CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
          CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
  RETURN NULL;
END $$;
CREATE TRIGGER ex_audit AFTER INSERT OR UPDATE OR DELETE ON ex FOR EACH ROW EXECUTE FUNCTION ex_audit();
CREATE TRIGGER exd_audit AFTER INSERT OR UPDATE OR DELETE ON exd FOR EACH ROW EXECUTE FUNCTION ex_audit();
CREATE FUNCTION exp_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO ex_log (tbl, op, old_row, new_row)
  VALUES ('exp', TG_OP, CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
          CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
  RETURN NULL;
END $$;
CREATE TRIGGER exp_audit AFTER INSERT OR UPDATE OR DELETE ON exp FOR EACH ROW EXECUTE FUNCTION exp_audit();
INSERT INTO ex
SELECT i, i % 4, i % 7,
       CASE i % 6 WHEN 0 THEN NULL WHEN 1 THEN 'X@Y.com' WHEN 2 THEN 'a@B.com' WHEN 3 THEN 'c@d.com'
                  WHEN 4 THEN 'other@e.com' ELSE 'x@y.com' END,
       CASE i % 5 WHEN 0 THEN NULL WHEN 1 THEN '{"kind": "order"}' WHEN 2 THEN '{"kind": "refund", "n": 4}'
                  WHEN 3 THEN '{"n": 1}' ELSE '{"kind": "Order"}' END::jsonb,
       '2026-01-01'::timestamp + (i % 3) * interval '13 hours',
       CASE i % 4 WHEN 0 THEN NULL WHEN 1 THEN 'abc' WHEN 2 THEN 'abcd' ELSE 'abcdef' END,
       i % 30,
       CASE WHEN i % 4 = 0 THEN 'abc' || repeat('z', 5000) || i WHEN i % 4 = 1 THEN 'ab' ELSE 'q' || repeat('y', 3000) END
  FROM generate_series(1, 60) i;
INSERT INTO exd SELECT i, i FROM generate_series(1, 20) i;
UPDATE ex SET amount = amount + 1 WHERE id % 3 = 0;
UPDATE ex SET email = upper(email) WHERE id % 4 = 1;
UPDATE ex SET payload = '{"kind": "order"}' WHERE id % 5 = 3;
UPDATE ex SET n = 3 WHERE id = 10;           -- 100 / (n - 3): an error on the new row
UPDATE ex SET n = 4 WHERE id = 33;           -- and on the old row
UPDATE ex SET title = NULL WHERE id % 8 = 1;
UPDATE ex SET priority = priority + 7 WHERE id % 4 = 0;   -- big unchanged (TOASTed)
UPDATE ex SET big = 'ab' || big WHERE id % 8 = 2;
UPDATE exd SET v = v + 1 WHERE id % 2 = 0;   -- no old row logged: the key did not change
UPDATE exd SET id = id + 200 WHERE id IN (3, 6);   -- a key-only old row
DELETE FROM exd WHERE id % 5 = 0;
INSERT INTO exp SELECT i, 1 + i % 2, CASE i % 3 WHEN 0 THEN 'AB' WHEN 1 THEN 'ab' END FROM generate_series(1, 20) i;
UPDATE exp SET s = 'Ab' WHERE id % 4 = 2;
UPDATE exp SET part = 3 - part WHERE id % 5 = 0;   -- to the other partition: a delete and an insert
DELETE FROM exp WHERE id % 7 = 0;
-- registered mid-stream, between changes, in one batch (two share an expression)
INSERT INTO ex_shapes
SELECT r.shape_id, 'ex', c.clause, (SELECT max(seq) FROM ex_log)
  FROM shape_router.register_shapes('ex', ARRAY['n * 2 = 10', 'abs(priority - 3) IN (1, 2)', 'n * 2 IN (12, 14)'])
       WITH ORDINALITY AS r(shape_id, i)
  JOIN unnest(ARRAY['n * 2 = 10', 'abs(priority - 3) IN (1, 2)', 'n * 2 IN (12, 14)']) WITH ORDINALITY AS c(clause, i)
       USING (i);
UPDATE ex SET n = 5 WHERE id % 10 = 1;
UPDATE ex SET priority = 2 WHERE id % 11 = 0;
-- a column added mid-stream, and a shape on it
ALTER TABLE ex ADD COLUMN extra int DEFAULT 7;
INSERT INTO ex_shapes
SELECT shape_router.register_shape('ex', 'extra + n = 12'), 'ex', 'extra + n = 12', (SELECT max(seq) FROM ex_log);
UPDATE ex SET extra = 2 WHERE id % 9 = 0;
UPDATE ex SET n = 5 WHERE id % 7 = 2;
INSERT INTO ex (id, amount, priority, email, payload, ts, title, n, big, extra)
VALUES (61, 1, 4, 'A@B.COM', '{"kind": "refund"}', '2026-01-02 05:00', 'xyz', 23, 'abc', NULL),
       (62, 3, 3, NULL, '{"kind": null}', NULL, NULL, 3, NULL, 10);
DELETE FROM ex WHERE id % 6 = 0;

-- PostgreSQL's own evaluation of each WHERE on the old and new rows
CREATE FUNCTION ex_eval(clause text, tbl regclass, r jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE result bool;
BEGIN
  IF r IS NULL THEN RETURN 'false'; END IF;
  EXECUTE format('SELECT (%s) FROM jsonb_populate_record(NULL::%s, $1) AS t', clause, tbl) INTO result USING r;
  RETURN CASE WHEN result THEN 'true' ELSE 'false' END;
EXCEPTION WHEN division_by_zero THEN
  RETURN 'error';
END $$;
CREATE TABLE ex_expected AS
SELECT row_number() OVER (ORDER BY l.seq, s.shape_id) AS n, s.shape_id,
       CASE WHEN 'error' IN (o, nw) THEN 'error'
            WHEN l.op = 'INSERT' THEN 'insert' WHEN l.op = 'DELETE' THEN 'delete'
            WHEN o = 'true' AND nw = 'true' THEN 'update' WHEN nw = 'true' THEN 'insert' ELSE 'delete' END AS op,
       CASE WHEN l.op = 'UPDATE' AND o <> nw AND 'error' NOT IN (o, nw)
            THEN CASE WHEN nw = 'true' THEN 'in' ELSE 'out' END END AS move,
       CASE WHEN 'error' IN (o, nw) THEN NULL WHEN l.op = 'UPDATE' AND o = 'true' AND nw = 'false' THEN (l.old_row->>'id')::int
            ELSE coalesce((l.new_row->>'id')::int, (l.old_row->>'id')::int) END AS row_id
  FROM ex_log l JOIN ex_shapes s ON s.tbl = l.tbl AND l.seq > s.from_seq
  CROSS JOIN LATERAL (SELECT CASE WHEN l.op <> 'INSERT' THEN ex_eval(s.clause, s.tbl, l.old_row) ELSE 'false' END AS o,
                             CASE WHEN l.op <> 'DELETE' THEN ex_eval(s.clause, s.tbl, l.new_row) ELSE 'false' END AS nw) e
 WHERE 'true' IN (o, nw) OR 'error' IN (o, nw);
CREATE TABLE ex_decoded AS
SELECT 'stream' AS slot, ordinality AS n, (data::json->>'shape')::bigint AS shape_id, data::json->>'op' AS op,
       data::json->>'move' AS move, coalesce(data::json->'new'->>'id', data::json->'old'->>'id')::int AS row_id
  FROM pg_logical_slot_get_changes('ex_stream', NULL, NULL, 'include-transaction', 'false') WITH ORDINALITY;
-- The expression atoms did the work: no shape is a scan shape, and the programs
-- ran for candidates only (25 shapes on every change of ex would be 25 runs or
-- more each; the rows with an error make every shape a candidate, and this data
-- matches many shapes a row: the negations most rows).
SELECT equality_candidates > 0 AS expressions_used, scan_candidates = 0 AS no_scan_shape,
       gate_evaluations < 12 * relation_gate_passes AS few_program_runs, errors > 0 AS error_records,
       complement_candidates > 0 AS complements_used, null_candidates > 0 AS nulls_used
  FROM shape_router.decoding_stats();
INSERT INTO ex_decoded
SELECT 'load', ordinality, (data::json->>'shape')::bigint, data::json->>'op',
       data::json->>'move', coalesce(data::json->'new'->>'id', data::json->'old'->>'id')::int
  FROM pg_logical_slot_get_changes('ex_load', NULL, NULL, 'include-transaction', 'false') WITH ORDINALITY;
-- the same on the slot that loaded the shapes and their expressions at its start
SELECT equality_candidates > 0 AS expressions_used, scan_candidates = 0 AS no_scan_shape,
       gate_evaluations < 12 * relation_gate_passes AS few_program_runs, errors > 0 AS error_records,
       complement_candidates > 0 AS complements_used, null_candidates > 0 AS nulls_used
  FROM shape_router.decoding_stats();
SELECT count(*) AS records, count(DISTINCT shape_id) AS shapes_reached, count(*) FILTER (WHERE op = 'error') AS errors,
       count(*) FILTER (WHERE move IS NOT NULL) AS moves
  FROM ex_expected;
-- mismatches against PostgreSQL, in order, on each slot: none expected
SELECT coalesce(e.n, a.n) AS n, e.shape_id, e.op, e.move, e.row_id, a.shape_id, a.op, a.move, a.row_id
  FROM ex_expected e FULL JOIN (SELECT * FROM ex_decoded WHERE slot = 'stream') a ON a.n = e.n
 WHERE a.n IS NULL OR e.n IS NULL OR (e.shape_id, e.op, e.move, e.row_id) IS DISTINCT FROM (a.shape_id, a.op, a.move, a.row_id)
 ORDER BY 1 LIMIT 10;
SELECT coalesce(e.n, a.n) AS n, e.shape_id, e.op, e.move, e.row_id, a.shape_id, a.op, a.move, a.row_id
  FROM ex_expected e FULL JOIN (SELECT * FROM ex_decoded WHERE slot = 'load') a ON a.n = e.n
 WHERE a.n IS NULL OR e.n IS NULL OR (e.shape_id, e.op, e.move, e.row_id) IS DISTINCT FROM (a.shape_id, a.op, a.move, a.row_id)
 ORDER BY 1 LIMIT 10;
SELECT 'stop' FROM pg_drop_replication_slot('ex_stream');
SELECT 'stop' FROM pg_drop_replication_slot('ex_load');
DROP FUNCTION ex_eval(text, regclass, jsonb);

-- A default replica identity over a TOASTed key: an UPDATE that leaves the key alone
-- logs no old row and the key only as a pointer the decoder cannot read. The
-- expressions cannot be evaluated: every shape is a candidate, and each says why
-- in its error record, as a scan shape would.
CREATE TABLE exk (k text PRIMARY KEY, v int);
ALTER TABLE exk ALTER COLUMN k SET STORAGE EXTERNAL;
SELECT shape_router.register_shape('exk', 'length(k) = 2500') AS exk_length \gset
SELECT shape_router.register_shape('exk', 'left(k, 1) = ''b''') AS exk_left \gset
SELECT 'init' FROM pg_create_logical_replication_slot('exk_slot', 'shape_router');
INSERT INTO exk VALUES ('a' || repeat('x', 2499), 0), ('b' || repeat('x', 2000), 0);
UPDATE exk SET v = 1;
DELETE FROM exk WHERE k LIKE 'b%';
SELECT CASE (data::json->>'shape')::bigint WHEN :exk_length THEN 'length' WHEN :exk_left THEN 'left' END AS shape,
       data::json->>'op' AS op, data::json->>'message' AS message
  FROM pg_logical_slot_get_changes('exk_slot', NULL, NULL, 'include-transaction', 'false') WITH ORDINALITY
 ORDER BY ordinality;
SELECT 'stop' FROM pg_drop_replication_slot('exk_slot');
DROP TABLE exk;

CREATE TEMP TABLE ex_relids AS
SELECT 'ex'::regclass::oid AS relid UNION ALL SELECT 'exd'::regclass::oid UNION ALL SELECT 'exp'::regclass::oid;
DROP TABLE ex, exd, exp, exr, exr_shapes, ex_log, ex_shapes, ex_expected, ex_decoded;
-- DROP TABLE takes its shapes' expressions with it
SELECT count(*) AS expressions_left FROM shape_router.index_expressions WHERE relid IN (SELECT relid FROM ex_relids);
DROP TABLE ex_relids;
DROP FUNCTION ex_audit();
DROP FUNCTION exp_audit();
