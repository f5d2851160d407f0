-- Identical shapes (same relation, program and WHERE columns) run their program
-- once per row version of a change, and each still gets its own record: its id,
-- its projection, its move in/out, its error record. Records are checked against
-- PostgreSQL's evaluation; decoding_stats() shows one program run per change per
-- distinct program, not one per shape.
SET synchronous_commit = on;
-- (the ids the next tests get stay as they were)
SELECT last_value AS seq_value, is_called AS seq_called FROM shape_router.shape_id_seq \gset
SELECT setval('shape_router.shape_id_seq', 6000, false);
CREATE TABLE it (id int PRIMARY KEY, a int, b int, title text, n int);
ALTER TABLE it REPLICA IDENTITY FULL;
CREATE TABLE it2 (id int PRIMARY KEY, a int, b int, title text, n int);
ALTER TABLE it2 REPLICA IDENTITY FULL;
CREATE TABLE pt (id int PRIMARY KEY, a int, b int, title text, n int) PARTITION BY RANGE (id);
CREATE TABLE pt1 PARTITION OF pt FOR VALUES FROM (0) TO (1000);
ALTER TABLE pt1 REPLICA IDENTITY FULL;
CREATE TABLE it_shapes (shape_id bigint, rel regclass, clause text, cols text[]);
-- 1,000 identical scan shapes, two of them with their own column list
INSERT INTO it_shapes
SELECT shape_router.register_shape('it', '(a + b > 10) IS TRUE', CASE WHEN i IN (500, 1000) THEN ARRAY['a'] END),
       'it', '(a + b > 10) IS TRUE', CASE WHEN i IN (500, 1000) THEN ARRAY['id', 'a'] END
  FROM generate_series(1, 1000) i;
-- a few others: different programs, three identical ones that can fail, the same
-- WHERE on other relations (a partition and its parent too)
INSERT INTO it_shapes
SELECT shape_router.register_shape(rel, clause), rel, clause, NULL
  FROM (VALUES (1, 'it'::regclass, '(a + b > 12) IS TRUE'), (2, 'it', '(length(title) > 3) IS TRUE'),
               (3, 'it', '(100 / n > 1) IS TRUE'), (4, 'it', '(100 / n > 1) IS TRUE'), (5, 'it', '(100 / n > 1) IS TRUE'),
               (6, 'it2', '(a + b > 10) IS TRUE'), (7, 'pt', '(a + b > 10) IS TRUE'), (8, 'pt', '(a + b > 10) IS TRUE'),
               (9, 'pt1', '(a + b > 10) IS TRUE'), (10, 'pt1', '(a + b > 10) IS TRUE')) AS v(k, rel, clause)
 ORDER BY k;
SELECT count(*) AS shapes, count(DISTINCT (rel, clause)) AS distinct_evaluations FROM it_shapes;
-- all scan shapes (an IS TRUE test of an expression has no cover): each runs a
-- program for every change of its table
SELECT DISTINCT clause, l AS routing
  FROM it_shapes, shape_router.explain_shape(shape_id) l
 WHERE l LIKE 'routing:%' ORDER BY 1;

SELECT 'init' FROM pg_create_logical_replication_slot('it_slot', 'shape_router');
CREATE TABLE it_log (seq serial, tbl regclass, op text, old_row jsonb, new_row jsonb);
CREATE FUNCTION it_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO it_log (tbl, op, old_row, new_row)
  VALUES (TG_RELID, TG_OP, CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
          CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
  RETURN NULL;
END $$;
CREATE TRIGGER it_audit AFTER INSERT OR UPDATE OR DELETE ON it FOR EACH ROW EXECUTE FUNCTION it_audit();
CREATE TRIGGER it_audit AFTER INSERT OR UPDATE OR DELETE ON it2 FOR EACH ROW EXECUTE FUNCTION it_audit();
CREATE TRIGGER it_audit AFTER INSERT OR UPDATE OR DELETE ON pt FOR EACH ROW EXECUTE FUNCTION it_audit();

-- PostgreSQL's own evaluation of a WHERE on a logged row: true, false or error
CREATE FUNCTION it_eval(clause text, r jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE result bool;
BEGIN
  IF r IS NULL THEN RETURN 'false'; END IF;
  EXECUTE format('SELECT (%s) FROM jsonb_populate_record(NULL::it, $1) AS it', clause) INTO result USING r;
  RETURN coalesce(result, false)::text;
EXCEPTION WHEN division_by_zero THEN
  RETURN 'error';
END $$;
-- The records one slot should emit for the changes logged from seq on, in order
CREATE FUNCTION it_expected(from_seq int)
RETURNS TABLE (n bigint, shape_id bigint, op text, move text, row_id int, cols text, message text)
LANGUAGE sql AS $$
WITH evals AS (
  SELECT l.seq, c.rel, c.clause, it_eval(c.clause, l.old_row) AS o, it_eval(c.clause, l.new_row) AS nw
    FROM it_log l
    JOIN (SELECT DISTINCT rel, clause FROM it_shapes) c
      ON c.rel = l.tbl OR (c.rel = 'pt'::regclass AND l.tbl = 'pt1'::regclass)
   WHERE l.seq >= from_seq)
SELECT row_number() OVER (ORDER BY l.seq, s.shape_id), s.shape_id,
       CASE WHEN 'error' IN (e.o, e.nw) THEN 'error'
            WHEN l.op = 'INSERT' THEN 'insert' WHEN l.op = 'DELETE' THEN 'delete'
            WHEN e.o = 'true' AND e.nw = 'true' THEN 'update' WHEN e.nw = 'true' THEN 'insert' ELSE 'delete' END,
       CASE WHEN 'error' NOT IN (e.o, e.nw) AND l.op = 'UPDATE' AND e.o <> e.nw
            THEN CASE WHEN e.nw = 'true' THEN 'in' ELSE 'out' END END,
       CASE WHEN 'error' NOT IN (e.o, e.nw) THEN coalesce(l.new_row, l.old_row)->>'id' END::int,
       CASE WHEN 'error' NOT IN (e.o, e.nw) THEN array_to_string(coalesce(s.cols, ARRAY['id', 'a', 'b', 'title', 'n']), ',') END,
       CASE WHEN 'error' IN (e.o, e.nw) THEN 'division by zero' END
  FROM it_log l JOIN evals e ON e.seq = l.seq
  JOIN it_shapes s ON s.rel = e.rel AND s.clause = e.clause
 WHERE CASE WHEN 'error' IN (e.o, e.nw) THEN true
            WHEN l.op = 'INSERT' THEN e.nw = 'true' WHEN l.op = 'DELETE' THEN e.o = 'true'
            ELSE 'true' IN (e.o, e.nw) END
$$;
-- The slot's records (drops aside), as it_expected has them
CREATE VIEW it_stream AS
SELECT row_number() OVER (ORDER BY ordinality) AS n, (j->>'shape')::bigint AS shape_id, j->>'op' AS op,
       j->>'move' AS move, coalesce(j->'new'->>'id', j->'old'->>'id')::int AS row_id,
       (SELECT string_agg(k, ',' ORDER BY o) FROM json_object_keys(coalesce(j->'new', j->'old')) WITH ORDINALITY AS x(k, o)) AS cols,
       j->>'message' AS message
  FROM (SELECT data::json AS j, ordinality
          FROM pg_logical_slot_get_changes('it_slot', NULL, NULL, 'include-transaction', 'false') WITH ORDINALITY) d
 WHERE j->>'op' <> 'drop';

INSERT INTO it SELECT i, i % 7, i % 5, repeat('x', i % 6), CASE WHEN i % 10 = 0 THEN 0 ELSE i % 4 + 1 END
  FROM generate_series(1, 20) i;
UPDATE it SET a = a + 5 WHERE id % 3 = 0;				-- moves in
UPDATE it SET a = a - 6 WHERE id % 4 = 1;				-- moves out
UPDATE it SET title = title || 'yy' WHERE id % 4 = 0;	-- a + b unchanged: evaluated once
UPDATE it SET n = 2 WHERE id = 10;						-- the old row fails
DELETE FROM it WHERE id % 5 = 0;						-- id 20 fails on its old row
INSERT INTO it2 VALUES (1, 9, 9, 'x', 1), (2, 1, 1, 'x', 1);
INSERT INTO pt VALUES (1, 9, 9, 'x', 1), (2, 1, 1, 'x', 1);
UPDATE pt SET b = 0 WHERE id = 1;
CREATE TABLE it_decoded1 AS SELECT * FROM it_stream;
SELECT count(*) AS records, count(*) FILTER (WHERE op = 'error') AS errors,
       count(*) FILTER (WHERE move IS NOT NULL) AS moves, count(DISTINCT shape_id) AS shapes_reached
  FROM it_expected(1);
-- mismatches against PostgreSQL, in order: none expected
SELECT coalesce(e.n, a.n) AS n, e.shape_id, e.op, e.move, e.row_id, e.cols, e.message,
       a.shape_id, a.op, a.move, a.row_id, a.cols, a.message
  FROM it_expected(1) e FULL JOIN it_decoded1 a ON a.n = e.n
 WHERE a.n IS NULL OR e.n IS NULL OR
       (e.shape_id, e.op, e.move, e.row_id, e.cols, e.message) IS DISTINCT FROM
       (a.shape_id, a.op, a.move, a.row_id, a.cols, a.message)
 ORDER BY 1 LIMIT 10;
-- One program run per row version per distinct program, not one per shape: the
-- 1,000 identical shapes (and the three failing ones) share it.
SELECT count(*) AS changes, count(*) FILTER (WHERE tbl = 'it'::regclass) AS changes_of_it FROM it_log \gset
SELECT :changes AS changes, :changes_of_it AS changes_of_it, gate_evaluations, shared_evaluations,
       gate_evaluations <= 2 * 4 * :changes AS at_most_one_run_per_program_and_row,
       shared_evaluations >= 999 * :changes_of_it AS identical_shapes_shared
  FROM shape_router.decoding_stats();

-- Drops and registrations between sessions of the same backend (a warm start):
-- the evaluator goes when its last shape does, and a new identical shape joins it.
SELECT count(*) AS dropped
  FROM (SELECT shape_router.drop_shape(shape_id) FROM it_shapes
         WHERE rel = 'it'::regclass AND clause = '(a + b > 10) IS TRUE' AND shape_id % 2 = 0) d;
SELECT count(*) AS dropped
  FROM (SELECT shape_router.drop_shape(shape_id) FROM it_shapes WHERE clause = '(a + b > 12) IS TRUE') d;
DELETE FROM it_shapes s WHERE NOT EXISTS (SELECT FROM shape_router.shapes v WHERE v.shape_id = s.shape_id);
INSERT INTO it_shapes VALUES (shape_router.register_shape('it', '(a + b > 12) IS TRUE'), 'it', '(a + b > 12) IS TRUE', NULL),
                             (shape_router.register_shape('it', '(a + b > 10) IS TRUE'), 'it', '(a + b > 10) IS TRUE', NULL);
SELECT max(seq) + 1 AS from_seq FROM it_log \gset
INSERT INTO it SELECT i, i % 9, 4, 'abcd', i % 3 FROM generate_series(21, 30) i;
UPDATE it SET b = b + 3 WHERE id > 24;
DELETE FROM it WHERE id IN (21, 22, 23);
CREATE TABLE it_decoded2 AS SELECT * FROM it_stream;
SELECT count(*) AS records, count(*) FILTER (WHERE op = 'error') AS errors FROM it_expected(:from_seq);
SELECT coalesce(e.n, a.n) AS n, e.shape_id, e.op, e.move, e.row_id, e.cols, e.message,
       a.shape_id, a.op, a.move, a.row_id, a.cols, a.message
  FROM it_expected(:from_seq) e FULL JOIN it_decoded2 a ON a.n = e.n
 WHERE a.n IS NULL OR e.n IS NULL OR
       (e.shape_id, e.op, e.move, e.row_id, e.cols, e.message) IS DISTINCT FROM
       (a.shape_id, a.op, a.move, a.row_id, a.cols, a.message)
 ORDER BY 1 LIMIT 10;
SELECT count(*) AS changes FROM it_log WHERE seq >= :from_seq \gset
SELECT warm_start, :changes AS changes, gate_evaluations, shared_evaluations,
       gate_evaluations <= 2 * 4 * :changes AS at_most_one_run_per_program_and_row,
       shared_evaluations >= 500 * :changes AS identical_shapes_shared
  FROM shape_router.decoding_stats();

SELECT 'stop' FROM pg_drop_replication_slot('it_slot');
DROP VIEW it_stream;
DROP FUNCTION it_expected(int);
DROP FUNCTION it_eval(text, jsonb);
DROP TABLE it, it2, pt, it_log, it_shapes, it_decoded1, it_decoded2;
DROP FUNCTION it_audit();
SELECT 'restored' FROM setval('shape_router.shape_id_seq', :seq_value, :'seq_called');
