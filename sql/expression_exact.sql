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
CREATE TABLE x_shapes AS
SELECT 'xe'::regclass AS tbl, shape_router.register_shape('xe', clause) AS shape_id, clause
  FROM unnest(ARRAY['(a + b) % 10 = 3', '(a + b) % 10 IN (4, 5, NULL)', '(a - b) > 3',
                    '(a - b) BETWEEN -2 AND 1', '(a + b) % 10 <> 7', '(a + b) % 10 NOT IN (1, 2)',
                    'abs(a) IS NULL', '(a * b) IS NOT NULL', '(a - b) < -5 OR (a + b) % 10 = 9',
                    'd + 1 >= ''2026-01-05''', 'date_trunc(''hour'', t) = ''2026-01-01 10:00''',
                    '(a + b) % 10 IS DISTINCT FROM 3', 'NOT ((a - b) IS DISTINCT FROM 2)',
                    'abs(a) IS NOT DISTINCT FROM NULL', '(a * b) IS DISTINCT FROM NULL',
                    'b = 2 AND abs(a) BETWEEN 2 AND 5', 'b = 2 AND abs(a) BETWEEN 0 AND 1',
                    'b = 2 AND abs(a) > 6', 'b = 2 AND abs(a) <= 3']) AS clause;
SELECT shape_id, clause, l AS alternative
  FROM x_shapes, shape_router.explain_shape(shape_id) l
 WHERE l LIKE '  alternative%'
 ORDER BY shape_id, l;

-- The harness of every table below: each change logged with its table and
-- batch (x.batch), PostgreSQL's evaluation of a WHERE on a logged row, the
-- records that evaluation gives for a table's batch, a slot's records read
-- into x_decoded, and the mismatches between the two, in order (none expected).
CREATE TABLE x_log (seq serial, tbl regclass, batch int, op text, old_row jsonb, new_row jsonb);
CREATE FUNCTION x_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO x_log (tbl, batch, op, old_row, new_row)
  VALUES (TG_RELID, current_setting('x.batch')::int, TG_OP, CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
          CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
  RETURN NULL;
END $$;
CREATE FUNCTION x_eval(clause text, tbl regclass, r jsonb) RETURNS bool LANGUAGE plpgsql AS $$
DECLARE result bool;
BEGIN
  IF r IS NULL THEN RETURN false; END IF;
  EXECUTE format('SELECT (%s) FROM jsonb_populate_record(NULL::%s, $1) AS t', clause, tbl) INTO result USING r;
  RETURN coalesce(result, false);
END $$;
CREATE FUNCTION x_expected(t regclass, b int)
RETURNS TABLE (n bigint, shape_id bigint, op text, move text, row_id int) LANGUAGE sql AS $$
SELECT row_number() OVER (ORDER BY l.seq, s.shape_id), s.shape_id,
       CASE WHEN l.op = 'INSERT' THEN 'insert' WHEN l.op = 'DELETE' THEN 'delete'
            WHEN o AND nw THEN 'update' WHEN nw THEN 'insert' ELSE 'delete' END,
       CASE WHEN l.op = 'UPDATE' AND o <> nw THEN CASE WHEN nw THEN 'in' ELSE 'out' END END,
       CASE WHEN l.op = 'UPDATE' AND o AND NOT nw THEN (l.old_row->>'id')::int
            ELSE coalesce((l.new_row->>'id')::int, (l.old_row->>'id')::int) END
  FROM x_log l JOIN x_shapes s ON s.tbl = l.tbl
  CROSS JOIN LATERAL (SELECT l.op <> 'INSERT' AND x_eval(s.clause, s.tbl, l.old_row) AS o,
                             l.op <> 'DELETE' AND x_eval(s.clause, s.tbl, l.new_row) AS nw) e
 WHERE l.tbl = t AND l.batch = b AND (o OR nw)
$$;
CREATE TABLE x_decoded (tbl regclass, batch int, n bigint, shape_id bigint, op text, move text, row_id int);
CREATE FUNCTION x_decode(slot name, t regclass, b int) RETURNS void LANGUAGE sql AS $$
INSERT INTO x_decoded
SELECT t, b, ordinality, (data::json->>'shape')::bigint, data::json->>'op', data::json->>'move',
       coalesce(data::json->'new'->>'id', data::json->'old'->>'id')::int
  FROM pg_logical_slot_get_changes(slot, NULL, NULL, 'include-transaction', 'false') WITH ORDINALITY
$$;
CREATE FUNCTION x_mismatches(t regclass, b int)
RETURNS TABLE (n bigint, e_shape bigint, e_op text, e_move text, e_row int, a_shape bigint, a_op text, a_move text,
               a_row int) LANGUAGE sql AS $$
SELECT coalesce(e.n, a.n), e.shape_id, e.op, e.move, e.row_id, a.shape_id, a.op, a.move, a.row_id
  FROM x_expected(t, b) e FULL JOIN (SELECT * FROM x_decoded WHERE tbl = t AND batch = b) a ON a.n = e.n
 WHERE a.n IS NULL OR e.n IS NULL
    OR (e.shape_id, e.op, e.move, e.row_id) IS DISTINCT FROM (a.shape_id, a.op, a.move, a.row_id)
 ORDER BY 1 LIMIT 10
$$;
CREATE TRIGGER xe_audit AFTER INSERT OR UPDATE OR DELETE ON xe FOR EACH ROW EXECUTE FUNCTION x_audit();
-- One batch: inserts with NULLs, updates moving rows in and out, deletes.
CREATE PROCEDURE xe_changes(batch_no int) LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('x.batch', batch_no::text, false);
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
                                    (SELECT string_agg(shape_id::text, ',') FROM x_shapes WHERE clause NOT LIKE 'b = 2 %'));
SELECT gate_evaluations = 0 AS no_program_ran, exact_hits > 0 AS exact, equality_candidates > 0 AS equalities,
       range_candidates > 0 AS ranges, complement_candidates > 0 AS complements, null_candidates > 0 AS nulls
  FROM shape_router.decoding_stats();
SELECT x_decode('xe_slot', 'xe', 1);
SELECT count(*) AS records, count(DISTINCT shape_id) AS shapes_reached, count(*) FILTER (WHERE move IS NOT NULL) AS moves
  FROM x_expected('xe', 1);
SELECT * FROM x_mismatches('xe', 1);

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
SELECT x_decode('xe_shared', 'xe', 2);
SELECT gate_evaluations > 100 AS programs_decided, exact_hits = 0 AS no_exact_hit
  FROM shape_router.decoding_stats();
SELECT count(*) AS records FROM x_expected('xe', 2);
SELECT * FROM x_mismatches('xe', 2);
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
INSERT INTO x_shapes
SELECT 'xc', shape_router.register_shape('xc', clause), clause
  FROM xc_pair, LATERAL unnest(ARRAY[format('a + %s >= %s AND a + %s <= %s', k2, k2 + 10, k1, k1 + 40),
                                     format('a + %s >= %s AND a + %s <= %s', k1, k1 - 50, k2, k2 + 5),
                                     format('b = 2 AND a + %s BETWEEN %s AND %s', k1, k1, k1 + 30),
                                     format('b = 2 AND a + %s BETWEEN %s AND %s', k2, k2 + 20, k2 + 60),
                                     format('a + %s = %s', k2, k2 + 63), format('a + %s < %s', k1, k1)]) AS clause;
-- every shape has a cover, none of them a composite
SELECT count(*) FILTER (WHERE l LIKE 'routing: index cover%') AS covered,
       count(*) FILTER (WHERE l LIKE '%(composite)%') AS composites
  FROM x_shapes, shape_router.explain_shape(shape_id) l WHERE tbl = 'xc'::regclass;
CREATE TRIGGER xc_audit AFTER INSERT OR UPDATE OR DELETE ON xc FOR EACH ROW EXECUTE FUNCTION x_audit();
SELECT 'init' FROM pg_create_logical_replication_slot('xc_slot', 'shape_router');
SET x.batch = 3;
INSERT INTO xc SELECT i, i * 37 % 300 - 100, i % 4 FROM generate_series(1, 300) i;
UPDATE xc SET a = a + 55 WHERE id % 3 = 0;
UPDATE xc SET b = 2 WHERE id % 5 = 1;
DELETE FROM xc WHERE id % 7 = 0;
SELECT x_decode('xc_slot', 'xc', 3);
SELECT count(*) > 0 AS records, count(DISTINCT shape_id) AS shapes_reached FROM x_expected('xc', 3);
SELECT * FROM x_mismatches('xc', 3);
SELECT 'stop' FROM pg_drop_replication_slot('xc_slot');
DROP TABLE xc, xc_numbers, xc_pair;

-- Text and numeric expressions have hashed keys: a hit runs the shape's
-- program, whose test of the expression is an executor fallback. The decoder
-- evaluated the expression on the row already (for the index), so the
-- fallback is answered from that value (expression_reuses), not by the
-- executor, unless the expression is not an index column of the table (the
-- last shape's length(s) is filed under nothing: its AND goes under lower(s)).
CREATE TABLE xt (id int PRIMARY KEY, s text, n numeric);
ALTER TABLE xt REPLICA IDENTITY FULL;
INSERT INTO x_shapes
SELECT 'xt', shape_router.register_shape('xt', clause), clause
  FROM unnest(ARRAY['lower(s) = ''ab''', 'upper(s) IN (''AB'', ''CD'', NULL)', 'substr(s, 1, 1) <> ''a''',
                    'n * 2 >= 3', 'lower(s) IS DISTINCT FROM ''cd''', 'n * 2 < 1 OR lower(s) = ''x''',
                    'lower(s) = ''abc'' AND length(s) + 0 > 2']) AS clause;
CREATE TRIGGER xt_audit AFTER INSERT OR UPDATE OR DELETE ON xt FOR EACH ROW EXECUTE FUNCTION x_audit();
SELECT 'init' FROM pg_create_logical_replication_slot('xt_slot', 'shape_router');
SET x.batch = 4;
INSERT INTO xt
SELECT i, (ARRAY['ab', 'AB', 'Ab', 'cd', 'CD', 'abc', 'ABC', 'x', 'X', NULL, 'a', 'é'])[1 + i % 12],
       CASE WHEN i % 7 = 0 THEN NULL ELSE (i % 9) * 0.25 END
  FROM generate_series(1, 120) i;
UPDATE xt SET s = upper(s) WHERE id % 3 = 0;
UPDATE xt SET n = n + 1 WHERE id % 4 = 1;
UPDATE xt SET s = 'ab', n = 0 WHERE id % 10 = 5;
DELETE FROM xt WHERE id % 6 = 0;
SELECT x_decode('xt_slot', 'xt', 4);
-- the executor ran only the last shape's length(s) + 0 > 2, on rows whose lower(s) is 'abc'
SELECT expression_reuses > 100 AS reused, exact_hits = 0 AS nothing_exact,
       fallback_evaluations = (SELECT count(*) FROM x_log l
                                WHERE l.tbl = 'xt'::regclass
                                  AND (lower(l.new_row->>'s') = 'abc' OR lower(l.old_row->>'s') = 'abc')) AS executor_calls
  FROM shape_router.decoding_stats();
SELECT count(*) AS records, count(DISTINCT shape_id) AS shapes_reached FROM x_expected('xt', 4);
SELECT * FROM x_mismatches('xt', 4);
SELECT 'stop' FROM pg_drop_replication_slot('xt_slot');

-- Integer arithmetic on integer columns (int2, int4, int8 +, -, *, /, %,
-- unary -, the int4/int8 casts) is computed natively, from the values the
-- decoder read for the row, without the executor or a deformed slot
-- (native_expressions: one per expression and row version). Truncating
-- division, x % -1 = 0, NULLs and int8 results beyond int4 are PostgreSQL's.
CREATE TABLE xn (id int PRIMARY KEY, s smallint, a int, b bigint, c int);
ALTER TABLE xn REPLICA IDENTITY FULL;
INSERT INTO x_shapes
SELECT 'xn', shape_router.register_shape('xn', clause), clause
  FROM unnest(ARRAY['(a + b) % 7 = 3', 'a % c = 0', 'a / c < -2', '-a > 5', 's * 3::smallint = 6',
                    'b - a BETWEEN -3 AND 3', 'a::int8 * 3000000000 > 0', '(b / 2)::int4 = 5',
                    '(a + b) % 7 IS NULL OR -a < -100000', 's % -1::smallint = 0', 'a % -1 <> 0',
                    'b / -1 > 0']) AS clause;
CREATE TRIGGER xn_audit AFTER INSERT OR UPDATE OR DELETE ON xn FOR EACH ROW EXECUTE FUNCTION x_audit();
SELECT 'init' FROM pg_create_logical_replication_slot('xn_slot', 'shape_router');
SET x.batch = 5;
INSERT INTO xn
SELECT i, CASE WHEN i % 9 = 0 THEN NULL ELSE i % 20 - 10 END,
       CASE WHEN i % 11 = 0 THEN NULL ELSE (i * 104729) % 2000000000 - 1000000000 + i % 3 END,
       CASE WHEN i % 13 = 0 THEN NULL WHEN i % 4 = 0 THEN 10 + i % 2 ELSE (i * 7919)::bigint * 1000003 % 4000000000 - 2000000000 END,
       CASE WHEN i % 7 = 0 THEN NULL WHEN i % 9 = 4 THEN -1 ELSE i % 9 - 4 END
  FROM generate_series(1, 150) i;
UPDATE xn SET a = a + 17 WHERE id % 3 = 0;
UPDATE xn SET b = NULL WHERE id % 10 = 4;
UPDATE xn SET c = -c, b = a + 1 WHERE id % 4 = 1;
UPDATE xn SET s = s + 1 WHERE id % 5 = 2;
DELETE FROM xn WHERE id % 6 = 0;
SELECT x_decode('xn_slot', 'xn', 5);
SELECT native_expressions = (SELECT count(*) FROM shape_router.index_expressions WHERE relid = 'xn'::regclass)
                            * (SELECT sum(CASE op WHEN 'UPDATE' THEN 2 ELSE 1 END) FROM x_log WHERE batch = 5)
         AS every_row_version_native
  FROM shape_router.decoding_stats();
SELECT count(*) AS records, count(DISTINCT shape_id) AS shapes_reached FROM x_expected('xn', 5);
SELECT * FROM x_mismatches('xn', 5);
-- Where PostgreSQL raises an error (-a of the smallest int, a % 0), the
-- executor evaluates the row as it always did: every shape of the table is a
-- candidate, and the shapes whose WHERE fails report it.
INSERT INTO xn VALUES (1001, 1, -2147483648, 5, 2), (1002, 1, 7, 5, 0), (1003, 2, 8, 5, 3);
SELECT s.clause, data::json->>'op' AS op, data::json->'new'->>'id' AS id,
       data::json->>'error' IS NOT NULL AS error
  FROM pg_logical_slot_get_changes('xn_slot', NULL, NULL, 'include-transaction', 'false') d
  JOIN x_shapes s ON s.shape_id = (d.data::json->>'shape')::bigint
 ORDER BY (data::json->'new'->>'id')::int, s.shape_id;
SELECT 'stop' FROM pg_drop_replication_slot('xn_slot');
DROP TABLE xn, xt, xe, x_shapes, x_log, x_decoded;
DROP FUNCTION x_mismatches(regclass, int);
DROP FUNCTION x_decode(name, regclass, int);
DROP FUNCTION x_expected(regclass, int);
DROP FUNCTION x_eval(text, regclass, jsonb);
DROP FUNCTION x_audit();
DROP PROCEDURE xe_changes(int);
