-- Array element atoms: x = ANY(arr), arr @> ARRAY[..], ARRAY[..] <@ arr and
-- arr && ARRAY[..] on int, text and uuid arrays are indexed by their elements
-- (explain_shape shows the atoms), routed exactly as PostgreSQL evaluates them
-- (NULL arrays and elements, empty arrays, duplicates, a TOASTed array), and
-- reach only the shapes one of whose elements the row's array has.
SET synchronous_commit = on;
SELECT setval('shape_router.shape_id_seq', 7000, false);
CREATE TABLE ar (id int PRIMARY KEY, env text, ia int4[], ta text[], ua uuid[], big text[]);
ALTER TABLE ar REPLICA IDENTITY FULL;
CREATE TABLE ar_shapes (shape_id bigint, clause text);
INSERT INTO ar_shapes
SELECT shape_router.register_shape('ar', clause), clause
  FROM unnest(ARRAY['3 = ANY(ia)', 'ia @> ARRAY[1, 2]', 'ARRAY[4] <@ ia', 'ia && ARRAY[5, 6]',
                    '''t1'' = ANY(ta)', 'ta @> ARRAY[''t2'']', 'env = ''prod'' AND ta @> ARRAY[''t3'', ''t1'']',
                    'ia && ARRAY[7] OR ''t4'' = ANY(ta)', 'ia @> ARRAY[1, NULL]',
                    '''a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'' = ANY(ua)', 'big @> ARRAY[''b1'']',
                    '3::int8 = ANY(ia)']) AS clause;
SELECT shape_id, clause, l AS routing
  FROM ar_shapes, shape_router.explain_shape(shape_id) l
 WHERE l LIKE 'routing:%' OR l LIKE '  alternative%'
 ORDER BY shape_id, l;
-- 300 shapes on elements no row has: they must not be candidates
SELECT count(*) FROM (SELECT shape_router.register_shape('ar', g || ' = ANY(ia)') FROM generate_series(1000, 1299) g) s;

SELECT 'init' FROM pg_create_logical_replication_slot('ar_slot', 'shape_router');
CREATE TABLE ar_log (seq serial, op text, old_row ar, new_row ar);
CREATE FUNCTION ar_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO ar_log (op, old_row, new_row)
  VALUES (TG_OP, CASE WHEN TG_OP <> 'INSERT' THEN OLD END, CASE WHEN TG_OP <> 'DELETE' THEN NEW END);
  RETURN NULL;
END $$;
CREATE TRIGGER ar_audit AFTER INSERT OR UPDATE OR DELETE ON ar FOR EACH ROW EXECUTE FUNCTION ar_audit();
INSERT INTO ar
SELECT i, CASE WHEN i % 3 = 0 THEN 'prod' ELSE 'dev' END,
       CASE WHEN i % 11 = 0 THEN NULL WHEN i % 10 = 0 THEN '{}'
            ELSE ARRAY[i % 8, (i * 3) % 9, CASE WHEN i % 4 = 0 THEN NULL ELSE i % 5 END, i % 8] END,
       CASE WHEN i % 13 = 0 THEN NULL ELSE ARRAY['t' || (i % 5), CASE WHEN i % 6 = 0 THEN NULL ELSE 't' || (i % 3) END] END,
       CASE WHEN i % 7 = 0 THEN ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid] ELSE ARRAY[gen_random_uuid()] END,
       CASE WHEN i = 5 THEN ARRAY(SELECT md5(g::text) FROM generate_series(1, 400) g) || ARRAY['b1'] END
  FROM generate_series(1, 60) i;
UPDATE ar SET ia = ia || 7 WHERE id % 4 = 1;
UPDATE ar SET ta = ARRAY['t4'] WHERE id % 5 = 2;
UPDATE ar SET env = 'prod' WHERE id = 5;   -- the TOASTed array is not in the WAL's new row
UPDATE ar SET ia = NULL WHERE id % 9 = 0;
DELETE FROM ar WHERE id % 6 = 0;

CREATE FUNCTION ar_eval(clause text, r ar) RETURNS bool LANGUAGE plpgsql AS $$
DECLARE result bool;
BEGIN
  IF r IS NULL THEN RETURN false; END IF;
  EXECUTE format('SELECT (%s) FROM (SELECT ($1).*) AS ar', clause) INTO result USING r;
  RETURN coalesce(result, false);
END $$;
CREATE TABLE ar_expected AS
SELECT row_number() OVER (ORDER BY l.seq, s.shape_id) AS n, s.shape_id,
       CASE WHEN l.op = 'INSERT' THEN 'insert' WHEN l.op = 'DELETE' THEN 'delete'
            WHEN o AND nw THEN 'update' WHEN nw THEN 'insert' ELSE 'delete' END AS op,
       CASE WHEN l.op = 'UPDATE' AND o <> nw THEN CASE WHEN nw THEN 'in' ELSE 'out' END END AS move,
       coalesce((l.new_row).id, (l.old_row).id) AS row_id
  FROM ar_log l CROSS JOIN ar_shapes s
  CROSS JOIN LATERAL (SELECT ar_eval(s.clause, l.old_row) AS o, ar_eval(s.clause, l.new_row) AS nw) e
 WHERE CASE l.op WHEN 'INSERT' THEN nw WHEN 'DELETE' THEN o ELSE o OR nw END;
CREATE TABLE ar_decoded AS
SELECT ordinality AS n, (data::json->>'shape')::bigint AS shape_id, data::json->>'op' AS op,
       data::json->>'move' AS move, coalesce(data::json->'new'->>'id', data::json->'old'->>'id')::int AS row_id
  FROM pg_logical_slot_get_changes('ar_slot', NULL, NULL, 'include-transaction', 'false') WITH ORDINALITY;
-- The element index did the work: no scan shape, and the 300 shapes on absent
-- elements were candidates only for the one change whose row keys could not be
-- trusted (the TOASTed array), not for the other changes. The programs decide
-- the array operators themselves: no call into PostgreSQL's executor.
SELECT element_candidates > 0 AS elements_used, scan_candidates = 0 AS no_scan_shape,
       gate_evaluations < 2 * changes_seen * 12 AS runs_bounded_by_the_array_shapes,
       gate_evaluations > 0 AS programs_decide, fallback_evaluations = 0 AS no_executor_call
  FROM shape_router.decoding_stats();
SELECT count(*) AS records, count(DISTINCT shape_id) AS shapes_reached FROM ar_expected;
-- mismatches against PostgreSQL, in order: none expected
SELECT coalesce(e.n, a.n) AS n, e.shape_id, e.op, e.move, e.row_id, a.shape_id, a.op, a.move, a.row_id
  FROM ar_expected e FULL JOIN ar_decoded a ON a.n = e.n
 WHERE a.n IS NULL OR e.n IS NULL OR (e.shape_id, e.op, e.move, e.row_id) IS DISTINCT FROM (a.shape_id, a.op, a.move, a.row_id)
 ORDER BY 1 LIMIT 10;
SELECT 'stop' FROM pg_drop_replication_slot('ar_slot');
DROP FUNCTION ar_eval(text, ar);
DROP TABLE ar, ar_log, ar_shapes, ar_expected, ar_decoded;
DROP FUNCTION ar_audit();

-- Arrays of smallint, bigint and varchar, read in place from the WAL tuple
-- (one dimension), beside two-dimensional and compressed arrays, which are
-- read through a copy: the same records as PostgreSQL's evaluation.
CREATE TABLE ar2 (id int PRIMARY KEY, sa int2[], la int8[], va varchar[], m int4[]);
ALTER TABLE ar2 REPLICA IDENTITY FULL;
CREATE TABLE ar2_shapes AS
SELECT shape_router.register_shape('ar2', clause) AS shape_id, clause
  FROM unnest(ARRAY['2::int2 = ANY(sa)', 'sa && ARRAY[-3, 4]::int2[]', 'la @> ARRAY[5000000000]',
                    'va && ARRAY[''v1'', ''v0'']::varchar[]', 'va @> ARRAY[''v2'', ''v3'']::varchar[]', 'm @> ARRAY[1]',
                    '7 = ANY(m)']) AS clause;
CREATE TABLE ar2_log (seq serial, op text, old_row jsonb, new_row jsonb);
CREATE FUNCTION ar2_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO ar2_log (op, old_row, new_row)
  VALUES (TG_OP, CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END, CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
  RETURN NULL;
END $$;
CREATE TRIGGER ar2_audit AFTER INSERT OR UPDATE OR DELETE ON ar2 FOR EACH ROW EXECUTE FUNCTION ar2_audit();
CREATE FUNCTION ar2_eval(clause text, r jsonb) RETURNS bool LANGUAGE plpgsql AS $$
DECLARE result bool;
BEGIN
  IF r IS NULL THEN RETURN false; END IF;
  EXECUTE format('SELECT (%s) FROM jsonb_populate_record(NULL::ar2, $1) AS t', clause) INTO result USING r;
  RETURN coalesce(result, false);
END $$;
SELECT 'init' FROM pg_create_logical_replication_slot('ar2_slot', 'shape_router');
INSERT INTO ar2
SELECT i,
       CASE WHEN i % 11 = 0 THEN NULL WHEN i % 10 = 0 THEN '{}'
            ELSE ARRAY[i % 5 - 3, CASE WHEN i % 4 = 0 THEN NULL ELSE i % 7 END, i % 3]::int2[] END,
       CASE WHEN i % 9 = 0 THEN NULL ELSE ARRAY[5000000000 * (i % 3), -i, CASE WHEN i % 5 = 0 THEN NULL::bigint END] END,
       CASE WHEN i % 13 = 0 THEN NULL
            ELSE ARRAY['v' || (i % 4), CASE WHEN i % 6 = 0 THEN NULL ELSE 'v' || (i % 5) END, repeat('w', i % 200)]::varchar[] END,
       CASE WHEN i % 3 = 0 THEN ARRAY[[i % 8, 1], [7, i % 5]]
            WHEN i % 7 = 1 THEN ARRAY(SELECT (g % 3) + i % 2 * 7 FROM generate_series(1, 3000) g)
            ELSE ARRAY[i % 9, NULL] END
  FROM generate_series(1, 90) i;
UPDATE ar2 SET sa = sa || 2::int2, la = la || 5000000000 WHERE id % 4 = 1;
UPDATE ar2 SET va = ARRAY['v2', 'v3'] WHERE id % 5 = 2;
DELETE FROM ar2 WHERE id % 6 = 0;
CREATE TABLE ar2_expected AS
SELECT row_number() OVER (ORDER BY l.seq, s.shape_id) AS n, s.shape_id,
       CASE WHEN l.op = 'INSERT' THEN 'insert' WHEN l.op = 'DELETE' THEN 'delete'
            WHEN o AND nw THEN 'update' WHEN nw THEN 'insert' ELSE 'delete' END AS op,
       CASE WHEN l.op = 'UPDATE' AND o <> nw THEN CASE WHEN nw THEN 'in' ELSE 'out' END END AS move,
       coalesce((l.new_row->>'id')::int, (l.old_row->>'id')::int) AS row_id
  FROM ar2_log l CROSS JOIN ar2_shapes s
  CROSS JOIN LATERAL (SELECT ar2_eval(s.clause, l.old_row) AS o, ar2_eval(s.clause, l.new_row) AS nw) e
 WHERE CASE l.op WHEN 'INSERT' THEN nw WHEN 'DELETE' THEN o ELSE o OR nw END;
CREATE TABLE ar2_decoded AS
SELECT ordinality AS n, (data::json->>'shape')::bigint AS shape_id, data::json->>'op' AS op,
       data::json->>'move' AS move, coalesce(data::json->'new'->>'id', data::json->'old'->>'id')::int AS row_id
  FROM pg_logical_slot_get_changes('ar2_slot', NULL, NULL, 'include-transaction', 'false') WITH ORDINALITY;
SELECT count(*) AS records, count(DISTINCT shape_id) AS shapes_reached FROM ar2_expected;
SELECT coalesce(e.n, a.n) AS n, e.shape_id, e.op, e.move, e.row_id, a.shape_id, a.op, a.move, a.row_id
  FROM ar2_expected e FULL JOIN ar2_decoded a ON a.n = e.n
 WHERE a.n IS NULL OR e.n IS NULL OR (e.shape_id, e.op, e.move, e.row_id) IS DISTINCT FROM (a.shape_id, a.op, a.move, a.row_id)
 ORDER BY 1 LIMIT 10;
SELECT 'stop' FROM pg_drop_replication_slot('ar2_slot');
DROP FUNCTION ar2_eval(text, jsonb);
DROP TABLE ar2, ar2_log, ar2_shapes, ar2_expected, ar2_decoded;
DROP FUNCTION ar2_audit();
