-- Exact expression atoms: on expressions of integer, date and timestamp type,
-- equality, IN, ranges, negations (IS [NOT] DISTINCT FROM too), NULL tests and
-- their ORs are decided by the
-- index alone, as the same forms on a column are: no program runs. Two
-- expressions that share a virtual column number (made here by hand) leave
-- their rows to the programs. Records are checked against PostgreSQL's own
-- evaluation of each WHERE on the logged old and new rows.
SET synchronous_commit = on;
SELECT setval('shape_router.shape_id_seq', 700000, false);
CREATE TABLE xe (id int PRIMARY KEY, a int, b int, d date, t timestamp);
ALTER TABLE xe REPLICA IDENTITY FULL;
CREATE TABLE xe_shapes AS
SELECT shape_router.register_shape('xe', clause) AS shape_id, clause
  FROM unnest(ARRAY['(a + b) % 10 = 3', '(a + b) % 10 IN (4, 5, NULL)', '(a - b) > 3',
                    '(a - b) BETWEEN -2 AND 1', '(a + b) % 10 <> 7', '(a + b) % 10 NOT IN (1, 2)',
                    'abs(a) IS NULL', '(a * b) IS NOT NULL', '(a - b) < -5 OR (a + b) % 10 = 9',
                    'd + 1 >= ''2026-01-05''', 'date_trunc(''hour'', t) = ''2026-01-01 10:00''',
                    '(a + b) % 10 IS DISTINCT FROM 3', 'NOT ((a - b) IS DISTINCT FROM 2)',
                    'abs(a) IS NOT DISTINCT FROM NULL', '(a * b) IS DISTINCT FROM NULL',
                    'b = 2 AND abs(a) BETWEEN 2 AND 5', 'b = 2 AND abs(a) BETWEEN 0 AND 1',
                    'b = 2 AND abs(a) > 6', 'b = 2 AND abs(a) <= 3']) AS clause;
SELECT shape_id, clause, l AS alternative
  FROM xe_shapes, shape_router.explain_shape(shape_id) l
 WHERE l LIKE '  alternative%'
 ORDER BY shape_id, l;

CREATE TABLE xe_log (seq serial, batch int, op text, old_row jsonb, new_row jsonb);
CREATE FUNCTION xe_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO xe_log (batch, op, old_row, new_row)
  VALUES (current_setting('xe.batch')::int, TG_OP, CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
          CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
  RETURN NULL;
END $$;
CREATE TRIGGER xe_audit AFTER INSERT OR UPDATE OR DELETE ON xe FOR EACH ROW EXECUTE FUNCTION xe_audit();
CREATE FUNCTION xe_eval(clause text, r jsonb) RETURNS bool LANGUAGE plpgsql AS $$
DECLARE result bool;
BEGIN
  IF r IS NULL THEN RETURN false; END IF;
  EXECUTE format('SELECT (%s) FROM jsonb_populate_record(NULL::xe, $1) AS t', clause) INTO result USING r;
  RETURN coalesce(result, false);
END $$;
-- The records PostgreSQL's evaluation gives for one batch of changes.
CREATE FUNCTION xe_expected(b int)
RETURNS TABLE (n bigint, shape_id bigint, op text, move text, row_id int) LANGUAGE sql AS $$
SELECT row_number() OVER (ORDER BY l.seq, s.shape_id), s.shape_id,
       CASE WHEN l.op = 'INSERT' THEN 'insert' WHEN l.op = 'DELETE' THEN 'delete'
            WHEN o AND nw THEN 'update' WHEN nw THEN 'insert' ELSE 'delete' END,
       CASE WHEN l.op = 'UPDATE' AND o <> nw THEN CASE WHEN nw THEN 'in' ELSE 'out' END END,
       CASE WHEN l.op = 'UPDATE' AND o AND NOT nw THEN (l.old_row->>'id')::int
            ELSE coalesce((l.new_row->>'id')::int, (l.old_row->>'id')::int) END
  FROM xe_log l CROSS JOIN xe_shapes s
  CROSS JOIN LATERAL (SELECT l.op <> 'INSERT' AND xe_eval(s.clause, l.old_row) AS o,
                             l.op <> 'DELETE' AND xe_eval(s.clause, l.new_row) AS nw) e
 WHERE l.batch = b AND (o OR nw)
$$;
CREATE TABLE xe_decoded (batch int, n bigint, shape_id bigint, op text, move text, row_id int);
-- Mismatches of a batch's records against PostgreSQL, in order: none expected.
CREATE FUNCTION xe_mismatches(b int)
RETURNS TABLE (n bigint, e_shape bigint, e_op text, e_move text, e_row int, a_shape bigint, a_op text, a_move text,
               a_row int) LANGUAGE sql AS $$
SELECT coalesce(e.n, a.n), e.shape_id, e.op, e.move, e.row_id, a.shape_id, a.op, a.move, a.row_id
  FROM xe_expected(b) e FULL JOIN (SELECT * FROM xe_decoded WHERE batch = b) a ON a.n = e.n
 WHERE a.n IS NULL OR e.n IS NULL
    OR (e.shape_id, e.op, e.move, e.row_id) IS DISTINCT FROM (a.shape_id, a.op, a.move, a.row_id)
 ORDER BY 1 LIMIT 10
$$;
-- One batch: inserts with NULLs, updates moving rows in and out, deletes.
CREATE PROCEDURE xe_changes(batch_no int) LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('xe.batch', batch_no::text, false);
  INSERT INTO xe
  SELECT batch_no * 1000 + i, CASE WHEN i % 11 = 0 THEN NULL ELSE (i * 7 + batch_no) % 23 - 6 END,
         CASE WHEN i % 13 = 0 THEN NULL ELSE (i * 5) % 17 - 4 END,
         CASE WHEN i % 9 = 0 THEN NULL ELSE '2026-01-01'::date + i % 8 END,
         '2026-01-01 09:00'::timestamp + (i % 7) * interval '25 minutes'
    FROM generate_series(1, 120) i;
  UPDATE xe SET a = a + 3 WHERE id % 3 = 0 AND id / 1000 = batch_no;
  UPDATE xe SET b = NULL WHERE id % 10 = 4 AND id / 1000 = batch_no;
  UPDATE xe SET d = d - 2, t = t + interval '40 minutes' WHERE id % 4 = 1 AND id / 1000 = batch_no;
  UPDATE xe SET a = b, b = a WHERE id % 7 = 2 AND id / 1000 = batch_no;
  DELETE FROM xe WHERE id % 5 = 0 AND id / 1000 = batch_no;
END $$;

SELECT 'init' FROM pg_create_logical_replication_slot('xe_slot', 'shape_router');
CALL xe_changes(1);
-- The shapes but the ANDs (b = 2 AND a range of abs(a): filed under one of the
-- two, not exact; no composite on an expression), alone on the slot: the index
-- decided every record, no program ran; exact hits, equality, range, complement
-- and NULL candidates moved.
SELECT count(*) > 0 AS records
  FROM pg_logical_slot_peek_changes('xe_slot', NULL, NULL, 'include-transaction', 'false', 'shapes',
                                    (SELECT string_agg(shape_id::text, ',') FROM xe_shapes WHERE clause NOT LIKE 'b = 2 %'));
SELECT gate_evaluations = 0 AS no_program_ran, exact_hits > 0 AS exact, equality_candidates > 0 AS equalities,
       range_candidates > 0 AS ranges, complement_candidates > 0 AS complements, null_candidates > 0 AS nulls
  FROM shape_router.decoding_stats();
INSERT INTO xe_decoded
SELECT 1, ordinality, (data::json->>'shape')::bigint, data::json->>'op', data::json->>'move',
       coalesce(data::json->'new'->>'id', data::json->'old'->>'id')::int
  FROM pg_logical_slot_get_changes('xe_slot', NULL, NULL, 'include-transaction', 'false') WITH ORDINALITY;
SELECT count(*) AS records, count(DISTINCT shape_id) AS shapes_reached, count(*) FILTER (WHERE move IS NOT NULL) AS moves
  FROM xe_expected(1);
SELECT * FROM xe_mismatches(1);

-- Two expressions under one virtual column number (a - b's text added by hand
-- under the number of (a + b) % 10, found by their operators, int4mi and
-- int4mod): rows hold two results there, a key of one may stand for the other
-- (a - b = 3 is (a + b) % 10 = 3's key), and the index proves nothing on them;
-- the programs decide, and the records are still PostgreSQL's.
INSERT INTO shape_router.index_expressions (relid, attnum, expr, server_major)
SELECT minus.relid, modulo.attnum, minus.expr, minus.server_major
  FROM shape_router.index_expressions minus, shape_router.index_expressions modulo
 WHERE minus.relid = 'xe'::regclass AND modulo.relid = minus.relid
   AND minus.expr LIKE '{OPEXPR :opno 555 %' AND modulo.expr LIKE '{OPEXPR :opno 530 %';
SELECT count(*) AS texts, count(DISTINCT attnum) AS columns
  FROM shape_router.index_expressions WHERE relid = 'xe'::regclass;
SELECT 'init' FROM pg_create_logical_replication_slot('xe_shared', 'shape_router');
CALL xe_changes(2);
INSERT INTO xe_decoded
SELECT 2, ordinality, (data::json->>'shape')::bigint, data::json->>'op', data::json->>'move',
       coalesce(data::json->'new'->>'id', data::json->'old'->>'id')::int
  FROM pg_logical_slot_get_changes('xe_shared', NULL, NULL, 'include-transaction', 'false') WITH ORDINALITY;
SELECT gate_evaluations > 100 AS programs_decided, exact_hits = 0 AS no_exact_hit
  FROM shape_router.decoding_stats();
SELECT count(*) AS records FROM xe_expected(2);
SELECT * FROM xe_mismatches(2);
SELECT 'stop' FROM pg_drop_replication_slot('xe_slot');
SELECT 'stop' FROM pg_drop_replication_slot('xe_shared');

-- Two expressions whose texts hash to one virtual column number, found as
-- registered: a + k > 0 for k = 1, 2, ... until a new one (k2) lands on the
-- number of an earlier one (k1; the pair differs between majors, whose trees
-- print apart). An AND of a range on each must stay two ranges (merged, the
-- first shape's would be [k2 + 10, k1 + 40], empty once k2 > k1 + 30, where
-- the WHERE means a BETWEEN 10 AND 40), and an equality beside a BETWEEN on
-- one of them no composite (the composite index reads one value of its range
-- column a row): the records are PostgreSQL's.
CREATE TABLE xc (id int PRIMARY KEY, a int, b int);
ALTER TABLE xc REPLICA IDENTITY FULL;
CREATE TABLE xc_numbers (k int, attnum int);
CREATE TABLE xc_pair (k1 int, k2 int);
DO $$
DECLARE
  i int := 0;
  shared int;
BEGIN
  LOOP
    i := i + 1;
    PERFORM shape_router.register_shape('xc', format('a + %s > 0', i));
    SELECT attnum INTO shared FROM shape_router.index_expressions
     WHERE relid = 'xc'::regclass GROUP BY attnum HAVING count(*) > 1;
    IF shared IS NOT NULL THEN
      INSERT INTO xc_pair SELECT n.k, i FROM xc_numbers n WHERE n.attnum = shared;
      EXIT;
    END IF;
    INSERT INTO xc_numbers SELECT i, e.attnum FROM shape_router.index_expressions e
     WHERE e.relid = 'xc'::regclass AND e.attnum NOT IN (SELECT attnum FROM xc_numbers);
    EXIT WHEN i = 5000;
  END LOOP;
END $$;
SELECT count(*) AS pairs FROM xc_pair;
SELECT count(*) > 0 AS dropped FROM shape_router.shapes s, LATERAL shape_router.drop_shape(s.shape_id)
 WHERE s.relation = 'xc'::regclass;
CREATE TABLE xc_shapes AS
SELECT shape_router.register_shape('xc', clause) AS shape_id, clause
  FROM xc_pair, LATERAL unnest(ARRAY[format('a + %s >= %s AND a + %s <= %s', k2, k2 + 10, k1, k1 + 40),
                                     format('a + %s >= %s AND a + %s <= %s', k1, k1 - 50, k2, k2 + 5),
                                     format('b = 2 AND a + %s BETWEEN %s AND %s', k1, k1, k1 + 30),
                                     format('b = 2 AND a + %s BETWEEN %s AND %s', k2, k2 + 20, k2 + 60),
                                     format('a + %s = %s', k2, k2 + 63), format('a + %s < %s', k1, k1)]) AS clause;
-- every shape has a cover, none of them a composite
SELECT count(*) FILTER (WHERE l LIKE 'routing: index cover%') AS covered,
       count(*) FILTER (WHERE l LIKE '%(composite)%') AS composites
  FROM xc_shapes, shape_router.explain_shape(shape_id) l;
CREATE TABLE xc_log (seq serial, op text, old_row jsonb, new_row jsonb);
CREATE FUNCTION xc_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO xc_log (op, old_row, new_row)
  VALUES (TG_OP, CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END, CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
  RETURN NULL;
END $$;
CREATE TRIGGER xc_audit AFTER INSERT OR UPDATE OR DELETE ON xc FOR EACH ROW EXECUTE FUNCTION xc_audit();
CREATE FUNCTION xc_eval(clause text, r jsonb) RETURNS bool LANGUAGE plpgsql AS $$
DECLARE result bool;
BEGIN
  IF r IS NULL THEN RETURN false; END IF;
  EXECUTE format('SELECT (%s) FROM jsonb_populate_record(NULL::xc, $1) AS t', clause) INTO result USING r;
  RETURN coalesce(result, false);
END $$;
SELECT 'init' FROM pg_create_logical_replication_slot('xc_slot', 'shape_router');
INSERT INTO xc SELECT i, i * 37 % 300 - 100, i % 4 FROM generate_series(1, 300) i;
UPDATE xc SET a = a + 55 WHERE id % 3 = 0;
UPDATE xc SET b = 2 WHERE id % 5 = 1;
DELETE FROM xc WHERE id % 7 = 0;
CREATE TABLE xc_expected AS
SELECT row_number() OVER (ORDER BY l.seq, s.shape_id) AS n, s.shape_id,
       CASE WHEN l.op = 'INSERT' THEN 'insert' WHEN l.op = 'DELETE' THEN 'delete'
            WHEN o AND nw THEN 'update' WHEN nw THEN 'insert' ELSE 'delete' END AS op,
       coalesce((l.new_row->>'id')::int, (l.old_row->>'id')::int) AS row_id
  FROM xc_log l CROSS JOIN xc_shapes s
  CROSS JOIN LATERAL (SELECT l.op <> 'INSERT' AND xc_eval(s.clause, l.old_row) AS o,
                             l.op <> 'DELETE' AND xc_eval(s.clause, l.new_row) AS nw) e
 WHERE o OR nw;
CREATE TABLE xc_decoded AS
SELECT ordinality AS n, (data::json->>'shape')::bigint AS shape_id, data::json->>'op' AS op,
       coalesce(data::json->'new'->>'id', data::json->'old'->>'id')::int AS row_id
  FROM pg_logical_slot_get_changes('xc_slot', NULL, NULL, 'include-transaction', 'false') WITH ORDINALITY;
SELECT count(*) > 0 AS records, count(DISTINCT shape_id) AS shapes_reached FROM xc_expected;
SELECT coalesce(e.n, a.n) AS n, e.shape_id, e.op, e.row_id, a.shape_id, a.op, a.row_id
  FROM xc_expected e FULL JOIN xc_decoded a ON a.n = e.n
 WHERE a.n IS NULL OR e.n IS NULL OR (e.shape_id, e.op, e.row_id) IS DISTINCT FROM (a.shape_id, a.op, a.row_id)
 ORDER BY 1 LIMIT 10;
SELECT 'stop' FROM pg_drop_replication_slot('xc_slot');
DROP TABLE xc, xc_numbers, xc_pair, xc_shapes, xc_log, xc_expected, xc_decoded;
DROP FUNCTION xc_eval(text, jsonb);
DROP FUNCTION xc_audit();

-- Text and numeric expressions have hashed keys: a hit runs the shape's
-- program, whose test of the expression is an executor fallback. The decoder
-- evaluated the expression on the row already (for the index), so the
-- fallback is answered from that value (expression_reuses), not by the
-- executor, unless the expression is not an index column of the table (the
-- last shape's length(s) is filed under nothing: its AND goes under lower(s)).
CREATE TABLE xt (id int PRIMARY KEY, s text, n numeric);
ALTER TABLE xt REPLICA IDENTITY FULL;
CREATE TABLE xt_shapes AS
SELECT shape_router.register_shape('xt', clause) AS shape_id, clause
  FROM unnest(ARRAY['lower(s) = ''ab''', 'upper(s) IN (''AB'', ''CD'', NULL)', 'substr(s, 1, 1) <> ''a''',
                    'n * 2 >= 3', 'lower(s) IS DISTINCT FROM ''cd''', 'n * 2 < 1 OR lower(s) = ''x''',
                    'lower(s) = ''abc'' AND length(s) + 0 > 2']) AS clause;
CREATE TABLE xt_log (seq serial, op text, old_row jsonb, new_row jsonb);
CREATE FUNCTION xt_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO xt_log (op, old_row, new_row)
  VALUES (TG_OP, CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END, CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
  RETURN NULL;
END $$;
CREATE TRIGGER xt_audit AFTER INSERT OR UPDATE OR DELETE ON xt FOR EACH ROW EXECUTE FUNCTION xt_audit();
CREATE FUNCTION xt_eval(clause text, r jsonb) RETURNS bool LANGUAGE plpgsql AS $$
DECLARE result bool;
BEGIN
  IF r IS NULL THEN RETURN false; END IF;
  EXECUTE format('SELECT (%s) FROM jsonb_populate_record(NULL::xt, $1) AS t', clause) INTO result USING r;
  RETURN coalesce(result, false);
END $$;
SELECT 'init' FROM pg_create_logical_replication_slot('xt_slot', 'shape_router');
INSERT INTO xt
SELECT i, (ARRAY['ab', 'AB', 'Ab', 'cd', 'CD', 'abc', 'ABC', 'x', 'X', NULL, 'a', 'é'])[1 + i % 12],
       CASE WHEN i % 7 = 0 THEN NULL ELSE (i % 9) * 0.25 END
  FROM generate_series(1, 120) i;
UPDATE xt SET s = upper(s) WHERE id % 3 = 0;
UPDATE xt SET n = n + 1 WHERE id % 4 = 1;
UPDATE xt SET s = 'ab', n = 0 WHERE id % 10 = 5;
DELETE FROM xt WHERE id % 6 = 0;
CREATE TABLE xt_expected AS
SELECT row_number() OVER (ORDER BY l.seq, s.shape_id) AS n, s.shape_id,
       CASE WHEN l.op = 'INSERT' THEN 'insert' WHEN l.op = 'DELETE' THEN 'delete'
            WHEN o AND nw THEN 'update' WHEN nw THEN 'insert' ELSE 'delete' END AS op,
       coalesce((l.new_row->>'id')::int, (l.old_row->>'id')::int) AS row_id
  FROM xt_log l CROSS JOIN xt_shapes s
  CROSS JOIN LATERAL (SELECT l.op <> 'INSERT' AND xt_eval(s.clause, l.old_row) AS o,
                             l.op <> 'DELETE' AND xt_eval(s.clause, l.new_row) AS nw) e
 WHERE o OR nw;
CREATE TABLE xt_decoded AS
SELECT ordinality AS n, (data::json->>'shape')::bigint AS shape_id, data::json->>'op' AS op,
       coalesce(data::json->'new'->>'id', data::json->'old'->>'id')::int AS row_id
  FROM pg_logical_slot_get_changes('xt_slot', NULL, NULL, 'include-transaction', 'false') WITH ORDINALITY;
-- the executor ran only the last shape's length(s) + 0 > 2, on rows whose lower(s) is 'abc'
SELECT expression_reuses > 100 AS reused, exact_hits = 0 AS nothing_exact,
       fallback_evaluations = (SELECT count(*) FROM xt_log l
                                WHERE lower(l.new_row->>'s') = 'abc' OR lower(l.old_row->>'s') = 'abc') AS executor_calls
  FROM shape_router.decoding_stats();
SELECT count(*) AS records, count(DISTINCT shape_id) AS shapes_reached FROM xt_expected;
SELECT coalesce(e.n, a.n) AS n, e.shape_id, e.op, e.row_id, a.shape_id, a.op, a.row_id
  FROM xt_expected e FULL JOIN xt_decoded a ON a.n = e.n
 WHERE a.n IS NULL OR e.n IS NULL OR (e.shape_id, e.op, e.row_id) IS DISTINCT FROM (a.shape_id, a.op, a.row_id)
 ORDER BY 1 LIMIT 10;
SELECT 'stop' FROM pg_drop_replication_slot('xt_slot');
DROP TABLE xt, xt_shapes, xt_log, xt_expected, xt_decoded;
DROP FUNCTION xt_eval(text, jsonb);
DROP FUNCTION xt_audit();

DROP TABLE xe, xe_shapes, xe_log, xe_decoded;
DROP FUNCTION xe_mismatches(int);
DROP FUNCTION xe_expected(int);
DROP FUNCTION xe_eval(text, jsonb);
DROP FUNCTION xe_audit();
DROP PROCEDURE xe_changes(int);
