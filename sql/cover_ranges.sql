-- Range atoms against PostgreSQL on every type they cover: random thresholds,
-- BETWEENs and ORs of ranges over int, float8 (NaN, ±Infinity, -0), numeric
-- (scales, NaN, ±Infinity), date and timestamptz (infinities, DST), and text
-- (C collation, prefixes longer than 8 bytes); rows drawn from the same values,
-- NULLs included. Every routed record must be the one PostgreSQL's own
-- evaluation of the WHERE on the old and new row gives, and the ranges must be
-- on the hot path (range probes and index candidates move, few scan shapes).
SET synchronous_commit = on;
SELECT setseed(0.777);
CREATE TABLE rg (id int PRIMARY KEY, i int8, f float8, n numeric, d date, ts timestamptz, t text COLLATE "C");
ALTER TABLE rg REPLICA IDENTITY FULL;
CREATE TABLE rg_log (seq bigserial PRIMARY KEY, op text, old_row rg, new_row rg);
CREATE FUNCTION rg_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO rg_log (op, old_row, new_row)
  VALUES (TG_OP, CASE WHEN TG_OP <> 'INSERT' THEN OLD END, CASE WHEN TG_OP <> 'DELETE' THEN NEW END);
  RETURN NULL;
END $$;
CREATE TRIGGER rg_audit AFTER INSERT OR UPDATE OR DELETE ON rg FOR EACH ROW EXECUTE FUNCTION rg_audit();

-- value pools: the constants of the shapes and the values of the rows
CREATE TABLE rg_values (col text, v text);
INSERT INTO rg_values SELECT 'i', v FROM unnest(ARRAY['-9223372036854775808', '-5', '-1', '0', '1', '2', '3', '7', '100',
  '9223372036854775807']) v;
INSERT INTO rg_values SELECT 'f', v FROM unnest(ARRAY['-Infinity', '-1e300', '-2.5', '-0', '0', '1e-310', '0.5', '2.5',
  '1e300', 'Infinity', 'NaN']) v;
INSERT INTO rg_values SELECT 'n', v FROM unnest(ARRAY['-Infinity', '-12345678901234567890.5', '-1.50', '-1', '0', '0.000',
  '1', '1.0', '1.5', '1.50001', '12345678', '12345678.9', 'Infinity', 'NaN']) v;
INSERT INTO rg_values SELECT 'd', v FROM unnest(ARRAY['-infinity', '1999-12-31', '2000-01-01', '2026-03-29',
  '2026-03-30', '2026-10-25', 'infinity']) v;
INSERT INTO rg_values SELECT 'ts', v FROM unnest(ARRAY['-infinity', '2026-03-29 00:59:59+00', '2026-03-29 01:00:00+00',
  '2026-03-29 01:30:00+01', '2026-10-25 00:30:00+00', '2026-10-25 01:30:00+00', 'infinity']) v;
INSERT INTO rg_values SELECT 't', v FROM unnest(ARRAY['', 'a', 'ab', 'abcdefgh', 'abcdefgh1', 'abcdefgh2', 'abcdefgi',
  'b', 'z', 'é']) v;
CREATE FUNCTION rg_pick(c text) RETURNS text LANGUAGE sql AS $$
  SELECT v FROM rg_values WHERE col = c ORDER BY random() LIMIT 1
$$;
CREATE FUNCTION rg_lit(c text) RETURNS text LANGUAGE sql AS $$
  SELECT quote_literal(rg_pick(c)) || CASE c WHEN 'i' THEN '::int8' WHEN 'f' THEN '::float8' WHEN 'n' THEN '::numeric'
    WHEN 'd' THEN '::date' WHEN 'ts' THEN '::timestamptz' ELSE '' END
$$;

SELECT 'init' FROM pg_create_logical_replication_slot('ranges_mid', 'shape_router');
CREATE TABLE rg_shapes (shape_id bigint, clause text);
INSERT INTO rg_shapes
SELECT shape_router.register_shape('rg', clause), clause FROM (
  SELECT format('%s %s %s', c, (ARRAY['<', '<=', '>', '>='])[1 + floor(random() * 4)::int], rg_lit(c)) AS clause
    FROM unnest(ARRAY['i', 'f', 'n', 'd', 'ts', 't']) c, generate_series(1, 12)
  UNION ALL
  SELECT format('%s BETWEEN %s AND %s', c, rg_lit(c), rg_lit(c))
    FROM unnest(ARRAY['i', 'f', 'n', 'd', 'ts', 't']) c, generate_series(1, 6)
  UNION ALL
  SELECT format('%s < %s OR %s > %s', c, rg_lit(c), c, rg_lit(c))
    FROM unnest(ARRAY['i', 'f', 'n', 'd', 'ts', 't']) c, generate_series(1, 4)
  UNION ALL
  SELECT format('%s >= %s AND %s <> %s', c, rg_lit(c), c, rg_lit(c))
    FROM unnest(ARRAY['i', 'f', 'n', 't']) c, generate_series(1, 3)
) s;
SELECT 'init' FROM pg_create_logical_replication_slot('ranges_bulk', 'shape_router');
SELECT count(*) AS shapes, count(*) FILTER (WHERE c.index_cover IS NULL) AS scan_shapes
  FROM rg_shapes s JOIN shape_router.shape_catalog c USING (shape_id);

-- rows: inserts, updates of every column (NULLs too), deletes
DO $$
BEGIN
  FOR k IN 1..300 LOOP
    INSERT INTO rg VALUES (k,
      CASE WHEN random() < 0.15 THEN NULL ELSE rg_pick('i')::int8 END,
      CASE WHEN random() < 0.15 THEN NULL ELSE rg_pick('f')::float8 END,
      CASE WHEN random() < 0.15 THEN NULL ELSE rg_pick('n')::numeric END,
      CASE WHEN random() < 0.15 THEN NULL ELSE rg_pick('d')::date END,
      CASE WHEN random() < 0.15 THEN NULL ELSE rg_pick('ts')::timestamptz END,
      CASE WHEN random() < 0.15 THEN NULL ELSE rg_pick('t') END);
  END LOOP;
  FOR k IN 1..300 LOOP
    IF random() < 0.5 THEN
      UPDATE rg SET i = CASE WHEN random() < 0.2 THEN NULL ELSE rg_pick('i')::int8 END,
                    f = CASE WHEN random() < 0.2 THEN NULL ELSE rg_pick('f')::float8 END,
                    t = CASE WHEN random() < 0.2 THEN NULL ELSE rg_pick('t') END WHERE id = k;
    ELSE
      UPDATE rg SET n = CASE WHEN random() < 0.2 THEN NULL ELSE rg_pick('n')::numeric END,
                    d = CASE WHEN random() < 0.2 THEN NULL ELSE rg_pick('d')::date END,
                    ts = CASE WHEN random() < 0.2 THEN NULL ELSE rg_pick('ts')::timestamptz END WHERE id = k;
    END IF;
  END LOOP;
  DELETE FROM rg WHERE random() < 0.3;
END $$;

CREATE FUNCTION rg_eval(clause text, r rg) RETURNS bool LANGUAGE plpgsql AS $$
DECLARE result bool;
BEGIN
  IF r IS NULL THEN RETURN false; END IF;
  EXECUTE format('SELECT (%s) FROM (SELECT ($1).*) AS rg', clause) USING r INTO result;
  RETURN coalesce(result, false);
END $$;
CREATE TABLE rg_expected AS
SELECT row_number() OVER (ORDER BY l.seq, s.shape_id) AS n, s.shape_id,
       CASE WHEN l.op = 'INSERT' THEN 'insert'
            WHEN l.op = 'DELETE' THEN 'delete'
            WHEN o AND nw THEN 'update' WHEN nw THEN 'insert' ELSE 'delete' END AS op,
       CASE WHEN l.op = 'UPDATE' AND o <> nw THEN CASE WHEN nw THEN 'in' ELSE 'out' END END AS move,
       coalesce((l.new_row).id, (l.old_row).id) AS row_id
  FROM rg_log l CROSS JOIN rg_shapes s
  CROSS JOIN LATERAL (SELECT rg_eval(s.clause, l.old_row) AS o, rg_eval(s.clause, l.new_row) AS nw) e
 WHERE CASE l.op WHEN 'INSERT' THEN nw WHEN 'DELETE' THEN o ELSE o OR nw END;
CREATE FUNCTION rg_decoded(slot name) RETURNS TABLE (n bigint, shape_id bigint, op text, move text, row_id int)
LANGUAGE sql AS $$
  SELECT ordinality, (data::json->>'shape')::bigint, data::json->>'op', data::json->>'move',
         coalesce(data::json->'new'->>'id', data::json->'old'->>'id')::int
    FROM pg_logical_slot_get_changes(slot, NULL, NULL, 'include-transaction', 'false') WITH ORDINALITY
$$;
SELECT count(*) > 5000 AS many_records, count(DISTINCT shape_id) AS shapes_with_records,
       (SELECT count(*) FROM rg_log) * (SELECT count(*) FROM rg_shapes) AS shape_change_pairs
  FROM rg_expected;
CREATE TABLE rg_mid AS SELECT * FROM rg_decoded('ranges_mid');
SELECT range_probes > 0 AS ranges_probed, range_candidates > 0 AS ranges_returned_candidates, scan_candidates = 0 AS no_scan_shape,
       gate_evaluations <= 2 * records_emitted AS runs_near_records
  FROM shape_router.decoding_stats();
CREATE TABLE rg_bulk AS SELECT * FROM rg_decoded('ranges_bulk');
SELECT range_probes > 0 AS ranges_probed, index_range_entries > 0 AS ranges_filed
  FROM shape_router.decoding_stats();
-- mismatches, shown in full: none expected
SELECT 'mid' AS slot, coalesce(e.n, a.n) AS n, e.shape_id, e.op, e.move, e.row_id, a.shape_id, a.op, a.move, a.row_id,
       (SELECT clause FROM rg_shapes WHERE shape_id = coalesce(e.shape_id, a.shape_id))
  FROM rg_expected e FULL JOIN rg_mid a ON a.n = e.n
 WHERE a.n IS NULL OR e.n IS NULL OR (e.shape_id, e.op, e.move, e.row_id) IS DISTINCT FROM (a.shape_id, a.op, a.move, a.row_id)
 ORDER BY 2 LIMIT 10;
SELECT 'bulk' AS slot, coalesce(e.n, a.n) AS n, e.shape_id, e.op, e.move, e.row_id, a.shape_id, a.op, a.move, a.row_id
  FROM rg_expected e FULL JOIN rg_bulk a ON a.n = e.n
 WHERE a.n IS NULL OR e.n IS NULL OR (e.shape_id, e.op, e.move, e.row_id) IS DISTINCT FROM (a.shape_id, a.op, a.move, a.row_id)
 ORDER BY 2 LIMIT 10;

SELECT 'stop' FROM pg_drop_replication_slot('ranges_mid');
SELECT 'stop' FROM pg_drop_replication_slot('ranges_bulk');
DROP FUNCTION rg_eval(text, rg), rg_decoded(name), rg_pick(text), rg_lit(text);
DROP TABLE rg, rg_log, rg_shapes, rg_expected, rg_mid, rg_bulk, rg_values;
DROP FUNCTION rg_audit();
