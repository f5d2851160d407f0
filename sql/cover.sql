-- Covers: shapes as users write them (an OR over two columns, a low-cardinality
-- conjunct first, IN lists, ORs of ANDs) are filed in the routing index, not
-- run on every change, and route exactly as PostgreSQL evaluates their WHERE.
-- One slot applies the registrations mid-stream (each shape filed as it comes),
-- one loads them all at its start (filed once every key's count is known).
SET synchronous_commit = on;
SELECT setseed(0.2026);
CREATE TABLE tk (id int PRIMARY KEY, owner_id int, assignee_id int, status text, project_id int, priority int);
ALTER TABLE tk REPLICA IDENTITY FULL;
CREATE TABLE tk_log (seq bigserial PRIMARY KEY, op text, old_row tk, new_row tk);
CREATE FUNCTION tk_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO tk_log (op, old_row, new_row)
  VALUES (TG_OP, CASE WHEN TG_OP <> 'INSERT' THEN OLD END, CASE WHEN TG_OP <> 'DELETE' THEN NEW END);
  RETURN NULL;
END $$;
CREATE TRIGGER tk_audit AFTER INSERT OR UPDATE OR DELETE ON tk FOR EACH ROW EXECUTE FUNCTION tk_audit();

SELECT 'init' FROM pg_create_logical_replication_slot('cover_mid', 'shape_router');
CREATE TABLE tk_shapes (shape_id bigint, clause text);
INSERT INTO tk_shapes
SELECT shape_router.register_shape('tk', clause), clause FROM (
  SELECT format('owner_id = %s OR assignee_id = %s', k, k) FROM generate_series(1, 60) k
  UNION ALL SELECT format('status = ''open'' AND assignee_id = %s', k) FROM generate_series(1, 100) k
  UNION ALL SELECT format('project_id IN (%s, %s) AND status = ''done''', k, k + 1) FROM generate_series(1, 30) k
  UNION ALL SELECT format('(owner_id = %s AND status = ''open'') OR (assignee_id = %s AND status IN (''open'', ''review''))', k, k)
              FROM generate_series(1, 20) k
  UNION ALL SELECT format('owner_id = %s AND (status = ''open'' OR priority > 3)', k) FROM generate_series(1, 20) k
  UNION ALL SELECT format('priority > %s', k) FROM generate_series(1, 5) k   -- thresholds
  UNION ALL SELECT format('priority BETWEEN %s AND %s AND project_id > 3', k, k + 1) FROM generate_series(0, 4) k
  UNION ALL SELECT format('(priority < %s OR owner_id IN (%s, %s)) AND status <> ''closed''', k, k, k + 40)
              FROM generate_series(1, 10) k
  UNION ALL SELECT format('status ~ ''%s$''', k) FROM generate_series(1, 3) k   -- no cover (a regex): scan shapes
  -- NOT, pushed down by PostgreSQL's planner (exact under three-valued logic)
  UNION ALL SELECT format('NOT (priority < %s)', k) FROM generate_series(1, 3) k
  UNION ALL SELECT format('NOT (status <> ''open'' OR assignee_id > %s)', k) FROM generate_series(1, 3) k
  UNION ALL SELECT format('NOT (owner_id NOT IN (%s, %s))', k, k + 1) FROM generate_series(1, 3) k
  -- thresholds per key: many shapes share project_id = p, each with its own priority floor
  UNION ALL SELECT format('project_id = %s AND priority >= %s', k % 3, k % 7) FROM generate_series(1, 42) k
) AS forms(clause);
SELECT 'init' FROM pg_create_logical_replication_slot('cover_bulk', 'shape_router');

-- What explain_shape tells of three forms.
SELECT line FROM tk_shapes s, LATERAL shape_router.explain_shape(s.shape_id) WITH ORDINALITY AS x(line, k)
 WHERE s.clause IN ('owner_id = 1 OR assignee_id = 1', 'status = ''open'' AND assignee_id = 1', 'priority > 1',
                   'priority BETWEEN 2 AND 3 AND project_id > 3', 'status ~ ''1$''',
                   'NOT (status <> ''open'' OR assignee_id > 1)', 'NOT (owner_id NOT IN (1, 2))',
                   'project_id = 1 AND priority >= 1')
   AND (line LIKE 'routing:%' OR line LIKE '  alternative%')
 ORDER BY s.shape_id, k;

-- 100 open rows of priority 0 whose owner and assignee no shape names: each
-- matches the 10 "(priority < k OR ...)" shapes (1,000 records), and only those
-- and the 3 scan shapes run (1,300 runs, a few more on a rare fingerprint
-- collision). Filed under status = 'open', the 100 "status = 'open' AND
-- assignee_id = k" shapes would run for each row too (10,000 more); as scan
-- shapes, the 10 other range shapes 1,000 more.
INSERT INTO tk SELECT 100000 + g, 100000 + g, 100000 + g, 'open', 0, 0 FROM generate_series(1, 100) g;
SELECT count(*) AS records FROM pg_logical_slot_get_changes('cover_bulk', NULL, NULL, 'include-transaction', 'false');
SELECT changes_seen, gate_evaluations BETWEEN 1300 AND 1320 AS only_matching_and_scan_shapes_ran, filter_passes < 20 AS few_filter_passes,
       equality_probes, range_probes, scan_candidates, equality_candidates + range_candidates BETWEEN 1000 AND 1020 AS index_candidates_match
  FROM shape_router.decoding_stats();
SELECT max(seq) AS phase_one_end FROM tk_log \gset

-- random DML over the values the shapes name
DO $$
DECLARE
  i int;
  statuses text[] := ARRAY['open', 'done', 'review', 'closed', NULL];
BEGIN
  FOR i IN 1..600 LOOP
    INSERT INTO tk VALUES (i,
      CASE WHEN random() < 0.1 THEN NULL ELSE 1 + (random() * 70)::int END,
      CASE WHEN random() < 0.1 THEN NULL ELSE 1 + (random() * 110)::int END,
      statuses[1 + (random() * 4)::int],
      CASE WHEN random() < 0.1 THEN NULL ELSE (random() * 35)::int END,
      (random() * 6)::int);
  END LOOP;
END $$;
UPDATE tk SET assignee_id = 1 + (random() * 110)::int WHERE id <= 600 AND random() < 0.4;
UPDATE tk SET status = (ARRAY['open', 'done', 'review', NULL])[1 + (random() * 3)::int] WHERE id <= 600 AND random() < 0.4;
UPDATE tk SET owner_id = NULL, project_id = project_id + 1 WHERE id <= 600 AND random() < 0.2;
DELETE FROM tk WHERE random() < 0.2;

CREATE FUNCTION tk_eval(clause text, r tk) RETURNS bool LANGUAGE plpgsql AS $$
DECLARE result bool;
BEGIN
  IF r IS NULL THEN RETURN false; END IF;
  EXECUTE format('SELECT (%s) FROM (SELECT ($1).*) AS tk', clause) USING r INTO result;
  RETURN coalesce(result, false);
END $$;
CREATE TABLE tk_expected AS
SELECT l.seq, s.shape_id,
       CASE WHEN l.op = 'INSERT' THEN 'insert'
            WHEN l.op = 'DELETE' THEN 'delete'
            WHEN o AND nw THEN 'update' WHEN nw THEN 'insert' ELSE 'delete' END AS op,
       CASE WHEN l.op = 'UPDATE' AND o <> nw THEN CASE WHEN nw THEN 'in' ELSE 'out' END END AS move,
       coalesce((l.new_row).id, (l.old_row).id) AS row_id
  FROM tk_log l CROSS JOIN tk_shapes s
  CROSS JOIN LATERAL (SELECT tk_eval(s.clause, l.old_row) AS o, tk_eval(s.clause, l.new_row) AS nw) e
 WHERE CASE l.op WHEN 'INSERT' THEN nw WHEN 'DELETE' THEN o ELSE o OR nw END;
CREATE FUNCTION tk_decoded(slot name) RETURNS TABLE (n bigint, shape_id bigint, op text, move text, row_id int)
LANGUAGE sql AS $$
  SELECT ordinality, (data::json->>'shape')::bigint, data::json->>'op', data::json->>'move',
         coalesce(data::json->'new'->>'id', data::json->'old'->>'id')::int
    FROM pg_logical_slot_get_changes(slot, NULL, NULL, 'include-transaction', 'false') WITH ORDINALITY
$$;
-- Program runs stay near the records the rows produce (an UPDATE runs a shape
-- on its old and new row; exact shapes do not run at all); as scan shapes, all
-- 304 would run for every change. The threshold shapes are filed as composites.
CREATE TABLE tk_mid AS SELECT * FROM tk_decoded('cover_mid');
SELECT gate_evaluations <= 2 * (records_emitted + scan_candidates) + relation_gate_passes AS runs_near_matches,
       scan_candidates = 3 * relation_gate_passes AS three_scan_shapes, composite_candidates > 0 AS composites_used,
       exact_hits > 0 AS exact_shapes_decided
  FROM shape_router.decoding_stats();
CREATE TABLE tk_bulk AS SELECT * FROM tk_decoded('cover_bulk');
SELECT gate_evaluations <= 2 * (records_emitted + scan_candidates) + relation_gate_passes AS runs_near_matches,
       scan_candidates = 3 * relation_gate_passes AS three_scan_shapes, composite_candidates > 0 AS composites_used,
       exact_hits > 0 AS exact_shapes_decided
  FROM shape_router.decoding_stats();

SELECT count(*) > 1500 AS many_records, count(DISTINCT shape_id) > 200 AS most_shapes_reached FROM tk_expected;
-- mismatches against PostgreSQL's evaluation, in order: none expected
WITH e AS (SELECT row_number() OVER (ORDER BY seq, shape_id) AS n, * FROM tk_expected)
SELECT 'mid' AS slot, coalesce(e.n, a.n) AS n, e.shape_id, e.op, e.move, e.row_id, a.shape_id, a.op, a.move, a.row_id
  FROM e FULL JOIN tk_mid a ON a.n = e.n
 WHERE a.n IS NULL OR e.n IS NULL OR (e.shape_id, e.op, e.move, e.row_id) IS DISTINCT FROM (a.shape_id, a.op, a.move, a.row_id)
 ORDER BY 2 LIMIT 10;
WITH e AS (SELECT row_number() OVER (ORDER BY seq, shape_id) AS n, * FROM tk_expected WHERE seq > :phase_one_end)
SELECT 'bulk' AS slot, coalesce(e.n, a.n) AS n, e.shape_id, e.op, e.move, e.row_id, a.shape_id, a.op, a.move, a.row_id
  FROM e FULL JOIN tk_bulk a ON a.n = e.n
 WHERE a.n IS NULL OR e.n IS NULL OR (e.shape_id, e.op, e.move, e.row_id) IS DISTINCT FROM (a.shape_id, a.op, a.move, a.row_id)
 ORDER BY 2 LIMIT 10;

SELECT 'stop' FROM pg_drop_replication_slot('cover_mid');
SELECT 'stop' FROM pg_drop_replication_slot('cover_bulk');
DROP FUNCTION tk_eval(text, tk), tk_decoded(name);
DROP TABLE tk, tk_log, tk_shapes, tk_expected, tk_mid, tk_bulk;
DROP FUNCTION tk_audit();
