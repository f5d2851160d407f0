-- The whole router against PostgreSQL itself: every change is logged by a trigger
-- with its old and new row; each shape's WHERE is evaluated by PostgreSQL on those
-- rows; the expected records (shape order within a change, move in/out, NULL as
-- false) must equal the decoded stream exactly.
SET synchronous_commit = on;
SELECT setseed(0.4242);
CREATE TABLE orc (id int PRIMARY KEY, a int, b text, c numeric, d bool, e float8)
  WITH (autovacuum_enabled = off);  -- the random DML draws per row in scan order: no vacuum may move rows
ALTER TABLE orc REPLICA IDENTITY FULL;
CREATE TABLE orc_log (seq bigserial PRIMARY KEY, op text, old_row orc, new_row orc);
CREATE FUNCTION orc_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO orc_log (op, old_row, new_row)
  VALUES (TG_OP, CASE WHEN TG_OP <> 'INSERT' THEN OLD END, CASE WHEN TG_OP <> 'DELETE' THEN NEW END);
  RETURN NULL;
END $$;
CREATE TRIGGER orc_audit AFTER INSERT OR UPDATE OR DELETE ON orc FOR EACH ROW EXECUTE FUNCTION orc_audit();

-- the slot exists before the shapes: their registration is decoded mid-stream too
SELECT 'init' FROM pg_create_logical_replication_slot('oracle_slot', 'shape_router');
CREATE TABLE orc_shapes (shape_id bigint, clause text);
INSERT INTO orc_shapes
SELECT shape_router.register_shape('orc', clause), clause FROM unnest(ARRAY[
  NULL, 'a = 1', 'a <> 1', 'a > 2', 'a IS NULL', 'a IS NOT NULL', 'NOT (a = 1)',
  'a IN (1, 3, 5)', 'a NOT IN (1, 3, 5)', 'a = ANY (ARRAY[2, NULL])', 'a BETWEEN 2 AND 4',
  'b = ''x''', 'b LIKE ''x%''', 'b IS DISTINCT FROM ''y''', 'b > ''m'' COLLATE "C"',
  'c = 1.0', 'c >= 2.50', 'd', 'NOT d', 'd IS TRUE', 'd IS NOT FALSE', 'd IS UNKNOWN',
  'e < 0.5', 'e = ''NaN''', 'a = 1 AND b = ''x''', 'a = 1 OR b = ''x''', 'a = 1 OR d',
  '(a = 2 OR a IS NULL) AND NOT coalesce(d, false)', 'a + 1 > c', 'CASE WHEN d THEN a > 1 ELSE b = ''y'' END',
  'nullif(a, 2) IS NULL', 'greatest(a, 3) = 3', 'length(b) = 1', 'a % 2 = 0', 'id < 50 AND a = 2'
]) AS clause;

-- random DML: inserts, updates of every column (NULLs often), deletes, in transactions
DO $$
DECLARE
  i int;
  v text[] := ARRAY['x', 'y', 'xa', 'z', NULL];
BEGIN
  FOR i IN 1..400 LOOP
    INSERT INTO orc VALUES (i,
      CASE WHEN random() < 0.2 THEN NULL ELSE (random() * 5)::int END,
      v[1 + (random() * 4)::int],
      CASE WHEN random() < 0.2 THEN NULL ELSE round((random() * 4)::numeric, (random() * 2)::int) END,
      CASE WHEN random() < 0.3 THEN NULL ELSE random() < 0.5 END,
      CASE WHEN random() < 0.1 THEN 'NaN'::float8 WHEN random() < 0.1 THEN NULL ELSE random() END)
    ON CONFLICT DO NOTHING;
  END LOOP;
END $$;
UPDATE orc SET a = CASE WHEN random() < 0.25 THEN NULL ELSE (random() * 5)::int END WHERE random() < 0.5;
UPDATE orc SET b = (ARRAY['x', 'y', 'xa', NULL])[1 + (random() * 3)::int], d = NOT d WHERE random() < 0.5;
UPDATE orc SET c = c + 1, e = CASE WHEN e IS NULL THEN 0.25 ELSE NULL END WHERE random() < 0.4;
-- rows in 'id < 50 AND a = 2' whose key then changes: a move out carries the old row
UPDATE orc SET a = 2 WHERE id IN (17, 34);
UPDATE orc SET id = id + 1000 WHERE id % 17 = 0;
DELETE FROM orc WHERE random() < 0.3;

-- expected records, by PostgreSQL's own evaluation
CREATE FUNCTION orc_eval(clause text, r orc) RETURNS bool LANGUAGE plpgsql AS $$
DECLARE result bool;
BEGIN
  IF r IS NULL THEN RETURN false; END IF;
  IF clause IS NULL THEN RETURN true; END IF;
  EXECUTE format('SELECT (%s) FROM (SELECT ($1).*) AS orc', clause) USING r INTO result;
  RETURN coalesce(result, false);
END $$;
CREATE TABLE orc_expected AS
SELECT row_number() OVER (ORDER BY l.seq, s.shape_id) AS n, s.shape_id,
       CASE WHEN l.op = 'INSERT' THEN 'insert'
            WHEN l.op = 'DELETE' THEN 'delete'
            WHEN o AND nw THEN 'update' WHEN nw THEN 'insert' ELSE 'delete' END AS op,
       CASE WHEN l.op = 'UPDATE' AND o <> nw THEN CASE WHEN nw THEN 'in' ELSE 'out' END END AS move,
       -- the row the record carries: the new one, but the old one for a delete or a move out
       CASE WHEN nw THEN (l.new_row).id ELSE (l.old_row).id END AS row_id
  FROM orc_log l CROSS JOIN orc_shapes s
  CROSS JOIN LATERAL (SELECT orc_eval(s.clause, l.old_row) AS o, orc_eval(s.clause, l.new_row) AS nw) e
 WHERE CASE l.op WHEN 'INSERT' THEN nw WHEN 'DELETE' THEN o ELSE o OR nw END;

CREATE TABLE orc_actual AS
SELECT ordinality AS n, (data::json->>'shape')::bigint AS shape_id, data::json->>'op' AS op,
       data::json->>'move' AS move,
       coalesce(data::json->'new'->>'id', data::json->'old'->>'id')::int AS row_id
  FROM pg_logical_slot_get_changes('oracle_slot', NULL, NULL, 'include-transaction', 'false') WITH ORDINALITY;

SELECT count(*) > 1000 AS many_records, count(DISTINCT shape_id) AS shapes_with_records FROM orc_expected;
SELECT (SELECT count(*) FROM orc_log) AS changes, (SELECT count(*) FROM orc_expected) AS expected_records,
       (SELECT count(*) FROM orc_actual) AS decoded_records;
-- mismatches, shown in full: none expected
SELECT coalesce(e.n, a.n) AS n, e.shape_id AS exp_shape, e.op AS exp_op, e.move AS exp_move, e.row_id AS exp_row,
       a.shape_id AS act_shape, a.op AS act_op, a.move AS act_move, a.row_id AS act_row
  FROM orc_expected e FULL JOIN orc_actual a ON a.n = e.n
 WHERE a.n IS NULL OR e.n IS NULL OR (e.shape_id, e.op, e.move, e.row_id) IS DISTINCT FROM (a.shape_id, a.op, a.move, a.row_id)
 ORDER BY 1 LIMIT 20;
SELECT 'stop' FROM pg_drop_replication_slot('oracle_slot');
DROP FUNCTION orc_eval(text, orc);
DROP TABLE orc, orc_log, orc_shapes, orc_expected, orc_actual;
DROP FUNCTION orc_audit();
