-- NULL, complement, prefix and whole-table atoms: col IS NULL, IS NOT NULL, <>,
-- NOT IN, IS [NOT] DISTINCT FROM, LIKE 'p%', ^@, starts_with(), no WHERE and
-- WHERE true are indexed (explain_shape shows the atoms), routed exactly as
-- PostgreSQL evaluates them, found through their own counters, and, on integer
-- columns, decided without their program.
SET synchronous_commit = on;
SELECT setval('shape_router.shape_id_seq', 5000, false);
CREATE TABLE ng (id int PRIMARY KEY, n int, s text, pad text);
ALTER TABLE ng REPLICA IDENTITY FULL;
CREATE TABLE ng_shapes (shape_id bigint, clause text);
INSERT INTO ng_shapes
SELECT shape_router.register_shape('ng', clause), clause
  FROM unnest(ARRAY['n IS NULL', 'n IS NOT NULL', 'n <> 5', 'n NOT IN (1, 2)', 'n IS DISTINCT FROM 3',
                    'n IS NOT DISTINCT FROM NULL', 'NOT (n IS DISTINCT FROM 4)', 's <> ''archived''',
                    's IS DISTINCT FROM ''x'' AND n IS NULL', 'n <> 5 OR n <> 6', 'n <> ALL (ARRAY[7, NULL])',
                    'true', 's LIKE ''arch%''', 's ^@ ''x''', 'starts_with(s, ''ar'')', 's LIKE ''%''']) AS clause;
INSERT INTO ng_shapes VALUES (shape_router.register_shape('ng'), NULL);
SELECT shape_id, coalesce(clause, '(no WHERE)') AS clause, l AS routing
  FROM ng_shapes, shape_router.explain_shape(shape_id) l
 WHERE l LIKE 'routing:%' OR l LIKE '  alternative%'
 ORDER BY shape_id, l;

SELECT 'init' FROM pg_create_logical_replication_slot('ng_slot', 'shape_router');
CREATE TABLE ng_log (seq serial, op text, old_row ng, new_row ng);
CREATE FUNCTION ng_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO ng_log (op, old_row, new_row)
  VALUES (TG_OP, CASE WHEN TG_OP <> 'INSERT' THEN OLD END, CASE WHEN TG_OP <> 'DELETE' THEN NEW END);
  RETURN NULL;
END $$;
CREATE TRIGGER ng_audit AFTER INSERT OR UPDATE OR DELETE ON ng FOR EACH ROW EXECUTE FUNCTION ng_audit();
INSERT INTO ng SELECT i, CASE WHEN i % 9 = 0 THEN NULL ELSE i % 8 END,
                      CASE WHEN i % 7 = 0 THEN NULL WHEN i % 3 = 0 THEN 'archived' ELSE 'x' END, 'p'
  FROM generate_series(1, 60) i;
UPDATE ng SET n = CASE WHEN n IS NULL THEN 5 WHEN n = 5 THEN NULL ELSE n + 1 END WHERE id % 2 = 0;
UPDATE ng SET s = CASE WHEN s = 'archived' THEN NULL ELSE 'archived' END WHERE id % 5 = 0;
UPDATE ng SET pad = 'q' WHERE id % 4 = 1;
DELETE FROM ng WHERE id % 6 = 0;

-- PostgreSQL's own evaluation of each WHERE on the old and new rows
CREATE FUNCTION ng_eval(clause text, r ng) RETURNS bool LANGUAGE plpgsql AS $$
DECLARE result bool;
BEGIN
  IF r IS NULL THEN RETURN false; END IF;
  IF clause IS NULL THEN RETURN true; END IF;
  EXECUTE format('SELECT (%s) FROM (SELECT ($1).*) AS ng', clause) INTO result USING r;
  RETURN coalesce(result, false);
END $$;
CREATE TABLE ng_expected AS
SELECT row_number() OVER (ORDER BY l.seq, s.shape_id) AS n, s.shape_id,
       CASE WHEN l.op = 'INSERT' THEN 'insert' WHEN l.op = 'DELETE' THEN 'delete'
            WHEN o AND nw THEN 'update' WHEN nw THEN 'insert' ELSE 'delete' END AS op,
       CASE WHEN l.op = 'UPDATE' AND o <> nw THEN CASE WHEN nw THEN 'in' ELSE 'out' END END AS move,
       coalesce((l.new_row).id, (l.old_row).id) AS row_id
  FROM ng_log l CROSS JOIN ng_shapes s
  CROSS JOIN LATERAL (SELECT ng_eval(s.clause, l.old_row) AS o, ng_eval(s.clause, l.new_row) AS nw) e
 WHERE CASE l.op WHEN 'INSERT' THEN nw WHEN 'DELETE' THEN o ELSE o OR nw END;
CREATE TABLE ng_decoded AS
SELECT ordinality AS n, (data::json->>'shape')::bigint AS shape_id, data::json->>'op' AS op,
       data::json->>'move' AS move, coalesce(data::json->'new'->>'id', data::json->'old'->>'id')::int AS row_id
  FROM pg_logical_slot_get_changes('ng_slot', NULL, NULL, 'include-transaction', 'false') WITH ORDINALITY;
-- Each access path did the work; the integer shapes were decided by the index:
-- program runs are far fewer than candidates.
SELECT null_candidates > 0 AS null_atoms_used, complement_candidates > 0 AS complements_used,
       prefix_candidates > 0 AS prefixes_used,
       always_candidates = 2 * relation_gate_passes AS two_whole_table_shapes, scan_candidates = 0 AS no_scan_shape,
       exact_hits > 0 AS decided_by_index,
       gate_evaluations < (null_candidates + complement_candidates + always_candidates) / 2 AS few_program_runs
  FROM shape_router.decoding_stats();
SELECT count(*) AS records, count(DISTINCT shape_id) AS shapes_reached FROM ng_expected;
-- mismatches against PostgreSQL, in order: none expected
SELECT coalesce(e.n, a.n) AS n, e.shape_id, e.op, e.move, e.row_id, a.shape_id, a.op, a.move, a.row_id
  FROM ng_expected e FULL JOIN ng_decoded a ON a.n = e.n
 WHERE a.n IS NULL OR e.n IS NULL OR (e.shape_id, e.op, e.move, e.row_id) IS DISTINCT FROM (a.shape_id, a.op, a.move, a.row_id)
 ORDER BY 1 LIMIT 10;
SELECT 'stop' FROM pg_drop_replication_slot('ng_slot');
DROP FUNCTION ng_eval(text, ng);
DROP TABLE ng, ng_log, ng_shapes, ng_expected, ng_decoded;
DROP FUNCTION ng_audit();
