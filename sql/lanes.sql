-- Form lanes: scan shapes whose programs differ only in their constants (a
-- WHERE with no index cover, compiled without executor parts) run together,
-- once per row version for the whole form, and come to the shell decided.
-- Records are checked against PostgreSQL's evaluation of each WHERE;
-- decoding_stats() shows the lanes' runs and no program run of those shapes.
SET synchronous_commit = on;
SELECT last_value AS seq_value, is_called AS seq_called FROM shape_router.shape_id_seq \gset
SELECT setval('shape_router.shape_id_seq', 600000, false);
CREATE TABLE ln (id int PRIMARY KEY, a int, b int, f float8, t text);
ALTER TABLE ln REPLICA IDENTITY FULL;
CREATE TABLE ln_shapes (shape_id bigint, clause text);
-- two forms of 300 and 200 shapes, and 20 shapes with an executor part (they
-- stay scan shapes, each running its program)
INSERT INTO ln_shapes
SELECT shape_router.register_shape('ln', clause), clause
  FROM (SELECT format('a = %s OR a < b', k) AS clause, k FROM generate_series(1, 300) k
        UNION ALL
        SELECT format('f >= %s OR b IS DISTINCT FROM a', k * 0.5), 1000 + k FROM generate_series(1, 200) k
        UNION ALL
        SELECT format('(a + b > %s) IS TRUE', k), 2000 + k FROM generate_series(1, 20) k) c
 ORDER BY k;
SELECT DISTINCT regexp_replace(clause, '[0-9.]+', 'k') AS form, l AS routing
  FROM ln_shapes, shape_router.explain_shape(shape_id) l
 WHERE l LIKE 'routing:%' ORDER BY 1;

SELECT 'init' FROM pg_create_logical_replication_slot('ln_slot', 'shape_router');
CREATE TABLE ln_log (seq serial, op text, old_row jsonb, new_row jsonb);
CREATE FUNCTION ln_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO ln_log (op, old_row, new_row)
  VALUES (TG_OP, CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
          CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
  RETURN NULL;
END $$;
CREATE TRIGGER ln_audit AFTER INSERT OR UPDATE OR DELETE ON ln FOR EACH ROW EXECUTE FUNCTION ln_audit();
CREATE FUNCTION ln_eval(clause text, r jsonb) RETURNS bool LANGUAGE plpgsql AS $$
DECLARE result bool;
BEGIN
  IF r IS NULL THEN RETURN false; END IF;
  EXECUTE format('SELECT (%s) FROM jsonb_populate_record(NULL::ln, $1) AS ln', clause) INTO result USING r;
  RETURN coalesce(result, false);
END $$;
-- The records of the changes logged from seq on, for the shapes registered now, in order
CREATE FUNCTION ln_expected(from_seq int)
RETURNS TABLE (n bigint, shape_id bigint, op text, move text, row_id int)
LANGUAGE sql AS $$
WITH evals AS (
  SELECT l.seq, l.op AS change, s.shape_id, ln_eval(s.clause, l.old_row) AS o, ln_eval(s.clause, l.new_row) AS nw,
         coalesce(l.new_row, l.old_row)->>'id' AS row_id
    FROM ln_log l, ln_shapes s WHERE l.seq >= from_seq)
SELECT row_number() OVER (ORDER BY seq, shape_id), shape_id,
       CASE WHEN change = 'INSERT' THEN 'insert' WHEN change = 'DELETE' THEN 'delete'
            WHEN o AND nw THEN 'update' WHEN nw THEN 'insert' ELSE 'delete' END,
       CASE WHEN change = 'UPDATE' AND o <> nw THEN CASE WHEN nw THEN 'in' ELSE 'out' END END,
       row_id::int
  FROM evals
 WHERE CASE WHEN change = 'INSERT' THEN nw WHEN change = 'DELETE' THEN o ELSE o OR nw END
$$;
CREATE VIEW ln_stream AS
SELECT row_number() OVER (ORDER BY ordinality) AS n, (j->>'shape')::bigint AS shape_id, j->>'op' AS op,
       j->>'move' AS move, coalesce(j->'new'->>'id', j->'old'->>'id')::int AS row_id
  FROM (SELECT data::json AS j, ordinality
          FROM pg_logical_slot_get_changes('ln_slot', NULL, NULL, 'include-transaction', 'false') WITH ORDINALITY) d
 WHERE j->>'op' <> 'drop';

-- rows with NULLs, NaN and infinities; updates that move rows in and out
INSERT INTO ln SELECT i, CASE WHEN i % 11 = 0 THEN NULL ELSE i % 320 END, CASE WHEN i % 13 = 0 THEN NULL ELSE (i * 7) % 330 END,
                      CASE i % 17 WHEN 0 THEN 'NaN' WHEN 1 THEN '-Infinity' WHEN 2 THEN NULL ELSE (i % 230) * 0.5 END, 'x'
  FROM generate_series(1, 200) i;
UPDATE ln SET a = a + 40 WHERE id % 3 = 0;
UPDATE ln SET b = a WHERE id % 5 = 0;
UPDATE ln SET f = f - 30 WHERE id % 7 = 0;
UPDATE ln SET t = 'y' WHERE id % 4 = 0;		-- no column a WHERE reads
DELETE FROM ln WHERE id % 6 = 0;
CREATE TABLE ln_decoded1 AS SELECT * FROM ln_stream;
SELECT count(*) AS records, count(*) FILTER (WHERE move IS NOT NULL) AS moves,
       count(DISTINCT shape_id) AS shapes_reached FROM ln_expected(1);
-- mismatches against PostgreSQL, in order: none expected
SELECT coalesce(e.n, a.n) AS n, e.shape_id, e.op, e.move, e.row_id, a.shape_id, a.op, a.move, a.row_id
  FROM ln_expected(1) e FULL JOIN ln_decoded1 a ON a.n = e.n
 WHERE a.n IS NULL OR e.n IS NULL OR
       (e.shape_id, e.op, e.move, e.row_id) IS DISTINCT FROM (a.shape_id, a.op, a.move, a.row_id)
 ORDER BY 1 LIMIT 10;
-- Each row version runs two lanes (one a form) and decides their 500 shapes;
-- only the 20 shapes with an executor part run programs of their own.
SELECT count(*) AS changes, count(*) FILTER (WHERE op = 'UPDATE') AS updates FROM ln_log \gset
SELECT lane_runs = 2 * (:changes + :updates) AS two_lane_runs_per_row_version,
       lane_decisions = 500 * (:changes + :updates) AS every_lane_shape_decided,
       gate_evaluations <= 20 * (:changes + :updates) AS only_the_executor_shapes_run,
       scan_candidates = 20 * :changes AS scan_shapes_offered, lane_shapes, lane_forms
  FROM shape_router.decoding_stats();

-- Half of a lane's shapes dropped, a shape of a new form and one of the first
-- form added (a warm start: the lanes follow the catalog in the stream)
SELECT count(*) AS dropped
  FROM (SELECT shape_router.drop_shape(shape_id) FROM ln_shapes WHERE clause LIKE 'a = %' AND shape_id % 2 = 0) d;
DELETE FROM ln_shapes s WHERE NOT EXISTS (SELECT FROM shape_router.shapes v WHERE v.shape_id = s.shape_id);
INSERT INTO ln_shapes VALUES (shape_router.register_shape('ln', 'a = 7 OR a < b'), 'a = 7 OR a < b'),
                             (shape_router.register_shape('ln', 'b = 3 OR a > b'), 'b = 3 OR a > b');
SELECT max(seq) + 1 AS from_seq FROM ln_log \gset
INSERT INTO ln SELECT i, i % 9, 4, i * 1.5, 'z' FROM generate_series(201, 230) i;
UPDATE ln SET a = b + 1 WHERE id > 215;
DELETE FROM ln WHERE id IN (201, 202, 7);
CREATE TABLE ln_decoded2 AS SELECT * FROM ln_stream;
SELECT count(*) AS records FROM ln_expected(:from_seq);
SELECT coalesce(e.n, a.n) AS n, e.shape_id, e.op, e.move, e.row_id, a.shape_id, a.op, a.move, a.row_id
  FROM ln_expected(:from_seq) e FULL JOIN ln_decoded2 a ON a.n = e.n
 WHERE a.n IS NULL OR e.n IS NULL OR
       (e.shape_id, e.op, e.move, e.row_id) IS DISTINCT FROM (a.shape_id, a.op, a.move, a.row_id)
 ORDER BY 1 LIMIT 10;
SELECT count(*) AS changes, count(*) FILTER (WHERE op = 'UPDATE') AS updates FROM ln_log WHERE seq >= :from_seq \gset
SELECT warm_start, lane_runs = 3 * (:changes + :updates) AS three_lane_runs_per_row_version,
       lane_decisions = 352 * (:changes + :updates) AS every_lane_shape_decided, lane_shapes, lane_forms
  FROM shape_router.decoding_stats();

SELECT 'stop' FROM pg_drop_replication_slot('ln_slot');
DROP VIEW ln_stream;
DROP FUNCTION ln_expected(int);
DROP FUNCTION ln_eval(text, jsonb);
DROP TABLE ln, ln_log, ln_shapes, ln_decoded1, ln_decoded2;
DROP FUNCTION ln_audit();
SELECT 'restored' FROM setval('shape_router.shape_id_seq', :seq_value, :'seq_called');
