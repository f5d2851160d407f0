-- From shape_router.prefetch_min_keys index keys on (lowered here from its
-- default, so that 70,000 shapes reach it), each change prefetches the filter
-- lines of the next change of its transaction. Routing must not depend on it:
-- changes whose next change is of another table (the log), inside a
-- subtransaction (no prefetch), moves, deletes. The oracle: the shapes' WHERE
-- (user_id = k) applied by PostgreSQL to each change's old and new row, as the
-- triggers saw them.
SET synchronous_commit = on;
SET shape_router.prefetch_min_keys = 65536;
CREATE TABLE pf (id int PRIMARY KEY, user_id int NOT NULL, v text);
ALTER TABLE pf REPLICA IDENTITY FULL;
CREATE TABLE pf_log (seq bigserial PRIMARY KEY, op text, old_user int, new_user int);
-- Statement triggers: the log is written after each statement's rows, so that
-- consecutive changes of pf stay consecutive in the WAL.
CREATE FUNCTION pf_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO pf_log (op, new_user) SELECT 'INSERT', user_id FROM new_rows;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO pf_log (op, old_user, new_user)
      SELECT 'UPDATE', o.user_id, n.user_id FROM old_rows o JOIN new_rows n USING (id);
  ELSE
    INSERT INTO pf_log (op, old_user) SELECT 'DELETE', user_id FROM old_rows;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER pf_log_insert AFTER INSERT ON pf REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION pf_log();
CREATE TRIGGER pf_log_update AFTER UPDATE ON pf REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION pf_log();
CREATE TRIGGER pf_log_delete AFTER DELETE ON pf REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION pf_log();
SELECT count(*) AS registered
  FROM shape_router.register_shapes('pf', (SELECT array_agg('user_id = ' || g) FROM generate_series(1, 70000) g));
-- the slot after the shapes: its session loads them at its start and builds the
-- index at once (shapes registered mid-stream would be built in the background
-- and installed at some later commit)
SELECT 'init' FROM pg_create_logical_replication_slot('pf', 'shape_router');
INSERT INTO pf VALUES (0, 1, 'the first transaction loads the shapes');
-- Transactions of 50 changes stay under logical_decoding_work_mem (64kB here):
-- only changes of a transaction held in memory are prefetched.
DO $$
BEGIN
  FOR t IN 0..59 LOOP
    INSERT INTO pf SELECT g, 1 + (g * 7919) % 140000, 'x' FROM generate_series(t * 50 + 1, t * 50 + 50) g;
    COMMIT;
  END LOOP;
  FOR t IN 0..59 LOOP
    UPDATE pf SET user_id = CASE WHEN id % 3 = 0 THEN user_id + 70000 WHEN id % 3 = 1 THEN user_id + 1 ELSE user_id END
     WHERE id BETWEEN t * 50 + 1 AND t * 50 + 50 AND id % 5 <> 0;
    COMMIT;
    DELETE FROM pf WHERE id BETWEEN t * 50 + 1 AND t * 50 + 50 AND id % 7 = 0;
    COMMIT;
  END LOOP;
END $$;
-- a subtransaction: not prefetched
BEGIN;
INSERT INTO pf VALUES (3001, 5, 'a');
INSERT INTO pf VALUES (3002, 70001, 'b');
SAVEPOINT s;
UPDATE pf SET user_id = 6 WHERE id = 3001;
INSERT INTO pf VALUES (3003, 7, 'c');
RELEASE SAVEPOINT s;
UPDATE pf SET user_id = 69999 WHERE id = 3002;
DELETE FROM pf WHERE id = 3003;
COMMIT;
-- one transaction spilled to disk: not prefetched
UPDATE pf SET v = 'y' WHERE id <= 1500;
CREATE TEMP TABLE pf_routed AS
  SELECT (data::json->>'shape')::bigint AS shape_id,
         data::json->>'op' || coalesce('/' || (data::json->>'move'), '') AS op
    FROM pg_logical_slot_get_changes('pf', NULL, NULL, 'include-transaction', 'false');
ANALYZE pf_routed;
-- what the user_id = k shapes should get, from the log; and what they got
CREATE TEMP VIEW pf_expected AS
  SELECT u AS user_id, op FROM (
    SELECT new_user AS u, 'insert' AS op FROM pf_log WHERE op = 'INSERT'
    UNION ALL SELECT old_user, 'delete' FROM pf_log WHERE op = 'DELETE'
    UNION ALL SELECT new_user, 'update' FROM pf_log WHERE op = 'UPDATE' AND old_user = new_user
    UNION ALL SELECT old_user, 'delete/out' FROM pf_log WHERE op = 'UPDATE' AND old_user <> new_user
    UNION ALL SELECT new_user, 'insert/in' FROM pf_log WHERE op = 'UPDATE' AND old_user <> new_user) e
   WHERE u BETWEEN 1 AND 70000;
CREATE TEMP TABLE pf_user_shapes AS
  SELECT shape_id, substring(where_clause FROM '= (\d+)')::int AS user_id
    FROM shape_router.shapes WHERE relation = 'pf'::regclass AND where_clause ~ '^\(user_id = \d+\)$';
ANALYZE pf_user_shapes;
CREATE TEMP VIEW pf_got AS
  SELECT s.user_id, r.op FROM pf_routed r JOIN pf_user_shapes s USING (shape_id);
-- the prefetch path ran: about one change in two had its next change prefetched
-- (not the subtransaction's, the spilled transaction's, nor those followed by the log)
SELECT prefetches > 4000 AS prefetched, prefetches < changes_seen / 2 AS not_every_change FROM shape_router.decoding_stats();
SELECT op, count(*) FROM pf_expected GROUP BY op ORDER BY op;
SELECT (SELECT count(*) FROM pf_routed) AS routed,
       (SELECT count(*) FROM (SELECT * FROM pf_got EXCEPT ALL SELECT * FROM pf_expected) x) AS unexpected,
       (SELECT count(*) FROM (SELECT * FROM pf_expected EXCEPT ALL SELECT * FROM pf_got) x) AS missing;
SELECT 'stop' FROM pg_drop_replication_slot('pf');
-- A table whose shapes need keys beyond its plain columns' (a substring
-- shape's grams): the prefetch makes those too, from the next change's values
-- and its lowered text, and the route takes them all.
SELECT count(*) AS registered FROM shape_router.register_shapes('pf', ARRAY['v LIKE ''%zz%''']);
SELECT 'init' FROM pg_create_logical_replication_slot('pf2', 'shape_router');
TRUNCATE pf_log;
DO $$
BEGIN
  FOR t IN 100..119 LOOP
    INSERT INTO pf SELECT g, 1 + (g * 7919) % 140000, CASE WHEN g % 10 = 0 THEN 'azzb' ELSE 'x' END
      FROM generate_series(t * 50 + 1, t * 50 + 50) g;
    COMMIT;
  END LOOP;
END $$;
CREATE TEMP TABLE pf2_routed AS
  SELECT (data::json->>'shape')::bigint AS shape_id
    FROM pg_logical_slot_get_changes('pf2', NULL, NULL, 'include-transaction', 'false');
SELECT prefetches > 400 AS prefetched FROM shape_router.decoding_stats();
SELECT (SELECT count(*) FROM pf2_routed r JOIN shape_router.shapes s USING (shape_id) WHERE s.where_clause LIKE '(v %') AS substring_routed,
       (SELECT count(*) FROM pf WHERE id > 5000 AND v LIKE '%zz%') AS substring_expected,
       (SELECT count(*) FROM pf2_routed r JOIN shape_router.shapes s USING (shape_id) WHERE s.where_clause LIKE '(user_id%') AS user_routed,
       (SELECT count(*) FROM pf_log WHERE new_user BETWEEN 1 AND 70000) AS user_expected;
SELECT 'stop' FROM pg_drop_replication_slot('pf2');
-- Rows with keys beyond their plain columns' (array elements, raw and lowered
-- grams, native expressions' values): the prefetch reads the next change's
-- values, lowers its text, evaluates its expressions and makes every key; the
-- route takes them all. Inserts, updates (moves in and out) and deletes, in
-- transactions of 25 changes, against PostgreSQL's evaluation of each WHERE on
-- each change's old and new row.
ALTER TABLE pf ADD COLUMN tags int[];
-- the log keeps each change's whole rows too
ALTER TABLE pf_log ADD COLUMN old_row pf, ADD COLUMN new_row pf;
CREATE OR REPLACE FUNCTION pf_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO pf_log (op, new_user, new_row)
      SELECT 'INSERT', n.user_id, ROW(n.id, n.user_id, n.v, n.tags)::pf FROM new_rows n;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO pf_log (op, old_user, new_user, old_row, new_row)
      SELECT 'UPDATE', o.user_id, n.user_id, ROW(o.id, o.user_id, o.v, o.tags)::pf, ROW(n.id, n.user_id, n.v, n.tags)::pf
        FROM old_rows o JOIN new_rows n USING (id);
  ELSE
    INSERT INTO pf_log (op, old_user, old_row) SELECT 'DELETE', o.user_id, ROW(o.id, o.user_id, o.v, o.tags)::pf FROM old_rows o;
  END IF;
  RETURN NULL;
END $$;
TRUNCATE pf_log;
CREATE TEMP TABLE pf3_shapes AS
  SELECT id AS shape_id, clause
    FROM unnest(ARRAY['tags @> ARRAY[7]', '3 = ANY(tags)', 'tags && ARRAY[5, 11]', 'v ILIKE ''%QQ%''',
                      'v LIKE ''%zz%'' AND tags @> ARRAY[2]', '(user_id + 3) % 10 = 4', 'user_id % 7 = 1 OR 9 = ANY(tags)']) clause,
         LATERAL shape_router.register_shape('pf', clause) id;
-- (id is no index column: the expression's native evaluation reads it besides them)
INSERT INTO pf3_shapes SELECT id, '(id + 3) % 10 = 4' FROM shape_router.register_shape('pf', '(id + 3) % 10 = 4') id;
-- The workload: transactions t of 25 inserts, then their updates and deletes.
CREATE PROCEDURE pf3_workload(first int, last int) LANGUAGE plpgsql AS $$
BEGIN
  FOR t IN first .. last LOOP
    INSERT INTO pf SELECT g, 1 + (g * 7919) % 140000,
                          (ARRAY['azzb', 'xqqy', 'x', 'QQ', 'zz'])[1 + g % 5],
                          ARRAY[g % 13, (g * 7) % 13]
      FROM generate_series(t * 25 + 1, t * 25 + 25) g;
    COMMIT;
  END LOOP;
  FOR t IN first .. last LOOP
    UPDATE pf SET tags = CASE WHEN id % 3 = 0 THEN tags || 7 WHEN id % 3 = 1 THEN ARRAY[id % 11] ELSE tags END,
                  v = CASE WHEN id % 4 = 0 THEN upper(v) ELSE v END,
                  user_id = CASE WHEN id % 5 = 0 THEN user_id + 1 ELSE user_id END
     WHERE id BETWEEN t * 25 + 1 AND t * 25 + 25 AND id % 6 <> 0;
    COMMIT;
    DELETE FROM pf WHERE id BETWEEN t * 25 + 1 AND t * 25 + 25 AND id % 6 = 0;
    COMMIT;
  END LOOP;
END $$;
-- What each pf3 shape should get: its WHERE on each logged row version, by PostgreSQL.
CREATE TEMP TABLE pf3_matches (shape_id bigint, seq bigint, old_match bool, new_match bool);
CREATE TEMP TABLE pf3_expected (shape_id bigint, op text);
CREATE FUNCTION pf3_expect() RETURNS void LANGUAGE plpgsql AS $$
DECLARE s record;
BEGIN
  TRUNCATE pf3_matches, pf3_expected;
  FOR s IN SELECT * FROM pf3_shapes LOOP
    EXECUTE format('INSERT INTO pf3_matches SELECT %s, l.seq,
                      coalesce((SELECT %s FROM (SELECT (l.old_row).*) r), false),
                      coalesce((SELECT %s FROM (SELECT (l.new_row).*) r), false)
                      FROM pf_log l', s.shape_id, s.clause, s.clause);
  END LOOP;
  INSERT INTO pf3_expected
    SELECT m.shape_id,
           CASE WHEN l.op = 'INSERT' THEN 'insert' WHEN l.op = 'DELETE' THEN 'delete'
                WHEN m.old_match AND m.new_match THEN 'update'
                WHEN m.old_match THEN 'delete/out' ELSE 'insert/in' END
      FROM pf3_matches m JOIN pf_log l USING (seq)
     WHERE (l.op = 'INSERT' AND m.new_match) OR (l.op = 'DELETE' AND m.old_match)
        OR (l.op = 'UPDATE' AND (m.old_match OR m.new_match));
END $$;
SELECT 'init' FROM pg_create_logical_replication_slot('pf3', 'shape_router');
CALL pf3_workload(400, 419);
TRUNCATE pf_routed;
INSERT INTO pf_routed
  SELECT (data::json->>'shape')::bigint AS shape_id,
         data::json->>'op' || coalesce('/' || (data::json->>'move'), '') AS op
    FROM pg_logical_slot_get_changes('pf3', NULL, NULL, 'include-transaction', 'false');
ANALYZE pf_routed;
-- the changes routed with their prefetched keys and values (one in two, as above)
SELECT prefetches > 700 AS prefetched, prefetched_keys_reused > 700 AS keys_reused FROM shape_router.decoding_stats();
-- the user_id = k shapes: exact, from the kept plain keys of new and old rows alike
SELECT (SELECT count(*) FROM pf_got) AS user_routed,
       (SELECT count(*) FROM (SELECT * FROM pf_got EXCEPT ALL SELECT * FROM pf_expected) x) AS unexpected,
       (SELECT count(*) FROM (SELECT * FROM pf_expected EXCEPT ALL SELECT * FROM pf_got) x) AS missing;
SELECT pf3_expect();
SELECT s.clause, count(*) FILTER (WHERE e.op = 'insert') AS inserts, count(*) FILTER (WHERE e.op = 'update') AS updates,
       count(*) FILTER (WHERE e.op LIKE '%/%') AS moves, count(*) FILTER (WHERE e.op = 'delete') AS deletes
  FROM pf3_shapes s LEFT JOIN pf3_expected e USING (shape_id) GROUP BY s.shape_id, s.clause ORDER BY s.shape_id;
SELECT (SELECT count(*) FROM (SELECT * FROM pf_routed WHERE shape_id IN (SELECT shape_id FROM pf3_shapes)
                              EXCEPT ALL SELECT * FROM pf3_expected) x) AS unexpected,
       (SELECT count(*) FROM (SELECT * FROM pf3_expected EXCEPT ALL SELECT * FROM pf_routed) x) AS missing;
SELECT 'stop' FROM pg_drop_replication_slot('pf3');
-- The same with one more shape, on an expression only the executor evaluates
-- (length(v) = 4): the prefetch makes the plain columns' keys alone, and the
-- route the rest (elements, grams, every expression), from the same values.
TRUNCATE pf_log;
INSERT INTO pf3_shapes SELECT id, 'length(v) = 4' FROM shape_router.register_shape('pf', 'length(v) = 4') id;
SELECT 'init' FROM pg_create_logical_replication_slot('pf4', 'shape_router');
CALL pf3_workload(500, 509);
TRUNCATE pf_routed;
INSERT INTO pf_routed
  SELECT (data::json->>'shape')::bigint AS shape_id,
         data::json->>'op' || coalesce('/' || (data::json->>'move'), '') AS op
    FROM pg_logical_slot_get_changes('pf4', NULL, NULL, 'include-transaction', 'false');
SELECT prefetches > 300 AS prefetched, prefetched_keys_reused > 300 AS keys_reused FROM shape_router.decoding_stats();
SELECT pf3_expect();
SELECT count(*) FILTER (WHERE shape_id = (SELECT max(shape_id) FROM pf3_shapes)) AS length_shape_records,
       count(*) AS records FROM pf3_expected;
SELECT (SELECT count(*) FROM (SELECT * FROM pf_routed WHERE shape_id IN (SELECT shape_id FROM pf3_shapes)
                              EXCEPT ALL SELECT * FROM pf3_expected) x) AS unexpected,
       (SELECT count(*) FROM (SELECT * FROM pf3_expected EXCEPT ALL SELECT * FROM pf_routed) x) AS missing;
SELECT 'stop' FROM pg_drop_replication_slot('pf4');
SELECT count(*) AS dropped FROM shape_router.shapes s, shape_router.drop_shape(s.shape_id) d WHERE s.relation = 'pf'::regclass AND d;
DROP VIEW pf_expected, pf_got;
DROP TABLE pf, pf_log, pf_user_shapes;
DROP FUNCTION pf_log(), pf3_expect();
DROP PROCEDURE pf3_workload(int, int);
