-- Hostile or unlucky input that must neither crash, nor stop the stream, nor route wrongly.
SET synchronous_commit = on;
SELECT setval('shape_router.shape_id_seq', 4000) IS NOT NULL AS ids_from_4001;
CREATE EXTENSION dblink;
CREATE ROLE hard_user;
CREATE TABLE hard (id int PRIMARY KEY, k int, title text, status text, ts timestamp);
ALTER TABLE hard REPLICA IDENTITY FULL;
GRANT SELECT ON hard TO hard_user;

-- 1. A restart that begins inside a transaction older than a confirmed registration:
--    shapes are live in commit order, so rows 1, 2 and 3 all route (they commit after it).
SELECT 'init' FROM pg_create_logical_replication_slot('hard_restart', 'shape_router');
SELECT dblink_connect('other', format('dbname=%s port=%s host=%s', current_database(),
       current_setting('port'), split_part(current_setting('unix_socket_directories'), ',', 1)));
SELECT dblink_exec('other', 'BEGIN');
SELECT dblink_exec('other', 'INSERT INTO hard (id, k) VALUES (1, 1)');
SELECT shape_router.register_shape('hard', 'k = 1') AS s_k1 \gset
SELECT count(*) FROM pg_logical_slot_get_changes('hard_restart', NULL, NULL);   -- confirms the registration
SELECT dblink_exec('other', 'INSERT INTO hard (id, k) VALUES (2, 1)');
SELECT dblink_exec('other', 'COMMIT');
INSERT INTO hard (id, k) VALUES (3, 1);
SELECT data::json->'new'->'id' AS routed_row
  FROM pg_logical_slot_get_changes('hard_restart', NULL, NULL, 'include-transaction', '0');
-- and the drop: rows committed after a confirmed drop do not route, even from an older transaction
SELECT dblink_exec('other', 'BEGIN');
SELECT dblink_exec('other', 'INSERT INTO hard (id, k) VALUES (4, 1)');
SELECT shape_router.drop_shape(:s_k1);
SELECT count(*) FROM pg_logical_slot_get_changes('hard_restart', NULL, NULL);
SELECT dblink_exec('other', 'COMMIT');
SELECT count(*) AS after_drop FROM pg_logical_slot_get_changes('hard_restart', NULL, NULL);
SELECT dblink_disconnect('other');
SELECT 'stop' FROM pg_drop_replication_slot('hard_restart');
DELETE FROM hard;

-- 2. Any error a predicate raises on a row is that shape's error record; the stream goes on.
SELECT shape_router.register_shape('hard', 'k = 5') AS s_k5 \gset
SET ROLE hard_user;
SELECT shape_router.register_shape('hard', 'lpad(title, 600000000) <> ''''') AS s_big \gset
RESET ROLE;
SELECT 'init' FROM pg_create_logical_replication_slot('hard_errors', 'shape_router');
INSERT INTO hard (id, k, title) VALUES (10, 5, 'x');
SELECT CASE (data::json->>'shape')::bigint WHEN :s_k5 THEN 'k = 5' WHEN :s_big THEN 'lpad' END AS shape,
       data::json->>'op' AS op, data::json->>'message' AS message
  FROM pg_logical_slot_get_changes('hard_errors', NULL, NULL, 'include-transaction', '0');
SELECT shape_router.drop_shape(:s_big);
SELECT 'stop' FROM pg_drop_replication_slot('hard_errors');

-- 3. Built-in functions written in SQL cannot run in a walsender: refused at registration.
SELECT shape_router.register_shape('hard', '(ts + interval ''1 h'' + interval ''1 h'' + interval ''1 h'' + interval ''1 h'''
  ' + interval ''1 h'' + interval ''1 h'' + interval ''1 h'' + interval ''1 h'' + interval ''1 h'' + interval ''1 h'''
  ' + interval ''1 h'' + interval ''1 h'', interval ''1 day'') OVERLAPS (timestamp ''2020-01-01'', interval ''1 day'')');

-- 4. Changing the type of a column a shape reads, or weakening the replica identity it
--    needs, is refused by the DDL guard, naming the shapes.
SELECT shape_router.register_shape('hard', 'status = ''open''') AS s_open \gset
SELECT shape_router.register_shape('hard', 'status ~ ''^o''') AS s_regex \gset
ALTER TABLE hard ALTER COLUMN status TYPE int USING 0;
ALTER TABLE hard ALTER COLUMN status TYPE varchar(10);
ALTER TABLE hard ALTER COLUMN title TYPE varchar(50);       -- no shape reads it: fine
ALTER TABLE hard REPLICA IDENTITY DEFAULT;
-- 5. ... and when the guard is bypassed (event triggers do not fire under
--    session_replication_role = replica), the plugin defends itself: no crash, one error
--    record per broken shape, and a weakened identity gives error records, not silence.
SELECT 'init' FROM pg_create_logical_replication_slot('hard_ddl', 'shape_router');
INSERT INTO hard (id, k, status) VALUES (20, 5, 'open');
SET session_replication_role = replica;
ALTER TABLE hard ALTER COLUMN status TYPE int USING 0;
RESET session_replication_role;
INSERT INTO hard (id, k, status) VALUES (21, 5, 1), (22, 5, 2);
SELECT CASE (data::json->>'shape')::bigint WHEN :s_k5 THEN 'k = 5' WHEN :s_open THEN 'status = open'
         WHEN :s_regex THEN 'status ~ ^o' END AS shape,
       data::json->>'op' AS op, data::json->'new'->'id' AS id, data::json->>'message' AS message
  FROM pg_logical_slot_get_changes('hard_ddl', NULL, NULL, 'include-transaction', '0');
SELECT shape_router.drop_shape(:s_open), shape_router.drop_shape(:s_regex);
SET session_replication_role = replica;
ALTER TABLE hard REPLICA IDENTITY DEFAULT;
RESET session_replication_role;
UPDATE hard SET k = 6 WHERE id = 20;
DELETE FROM hard WHERE id = 21;
SELECT data::json->>'op' AS op, data::json->>'message' AS message
  FROM pg_logical_slot_get_changes('hard_ddl', NULL, NULL, 'include-transaction', '0');
ALTER TABLE hard REPLICA IDENTITY FULL;
SELECT 'stop' FROM pg_drop_replication_slot('hard_ddl');

-- 6. Rows written before ADD COLUMN ... DEFAULT (fast default, not in the tuple) carry the default.
CREATE TABLE hard_fd (id int PRIMARY KEY, k int);
ALTER TABLE hard_fd REPLICA IDENTITY FULL;
INSERT INTO hard_fd VALUES (1, 1), (2, 1);
ALTER TABLE hard_fd ADD COLUMN c int NOT NULL DEFAULT 7;
SELECT shape_router.register_shape('hard_fd', 'c = 7') IS NOT NULL AS registered;
SELECT 'init' FROM pg_create_logical_replication_slot('hard_fd', 'shape_router');
UPDATE hard_fd SET k = 2 WHERE id = 1;
DELETE FROM hard_fd WHERE id = 2;
SELECT data::json->>'op' AS op, data::json->>'move' AS move, coalesce(data::json->'new', data::json->'old') AS row
  FROM pg_logical_slot_get_changes('hard_fd', NULL, NULL, 'include-transaction', '0');
SELECT 'stop' FROM pg_drop_replication_slot('hard_fd');
DROP TABLE hard_fd;

-- 7. A role with column privileges only: "all columns" is pinned to what it may read now.
CREATE TABLE hard_cp (id int PRIMARY KEY, k int);
GRANT SELECT (id, k) ON hard_cp TO hard_user;
SET ROLE hard_user;
SELECT shape_router.register_shape('hard_cp') AS s_cp \gset
RESET ROLE;
ALTER TABLE hard_cp ADD COLUMN salary int;
SELECT columns FROM shape_router.shapes WHERE shape_id = :s_cp;
SELECT 'init' FROM pg_create_logical_replication_slot('hard_cp', 'shape_router');
INSERT INTO hard_cp VALUES (1, 1, 100000);
SELECT data::json->'new' AS new FROM pg_logical_slot_get_changes('hard_cp', NULL, NULL, 'include-transaction', '0');
SELECT 'stop' FROM pg_drop_replication_slot('hard_cp');
DROP TABLE hard_cp;

-- 8. The DROP guard resolves nothing through the caller's search_path.
GRANT CREATE ON SCHEMA public TO hard_user;
SET ROLE hard_user;
CREATE FUNCTION public.hard_trojan(oid, regclass) RETURNS bool LANGUAGE plpgsql AS
  $$ BEGIN RAISE NOTICE 'trojan ran as %', current_user; RETURN $1 = $2::oid; END $$;
CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = regclass, FUNCTION = public.hard_trojan);
RESET ROLE;
CREATE TABLE hard_victim (id int);
DROP TABLE hard_victim;                                     -- no NOTICE from the trojan
DROP OPERATOR public.= (oid, regclass);
DROP FUNCTION public.hard_trojan(oid, regclass);
REVOKE CREATE ON SCHEMA public FROM hard_user;

-- 9. DROP EXTENSION is refused while a slot of this database decodes with the plugin.
SELECT 'init' FROM pg_create_logical_replication_slot('hard_ext', 'shape_router');
DROP EXTENSION shape_router;
SELECT 'stop' FROM pg_drop_replication_slot('hard_ext');

-- 10. A look-alike catalog (same schema and table name, not the extension's) is never read.
CREATE DATABASE hard_lookalike;
\c hard_lookalike
SET synchronous_commit = on;
CREATE TABLE t (id int PRIMARY KEY);
SELECT 'init' FROM pg_create_logical_replication_slot('hard_lookalike', 'shape_router');
CREATE SCHEMA shape_router;
CREATE TABLE shape_router.shape_catalog (
  shape_id bigint PRIMARY KEY, relid oid, where_expr text, where_columns int2[], columns int2[],
  created_at timestamptz, registered_by oid, program bytea, fallback_exprs text) WITH (user_catalog_table = true);
INSERT INTO shape_router.shape_catalog VALUES (1, 't'::regclass, NULL, '{}', NULL, now(), 10, NULL, NULL);
INSERT INTO t VALUES (1);
SELECT count(*) AS records FROM pg_logical_slot_get_changes('hard_lookalike', NULL, NULL);
SELECT 'stop' FROM pg_drop_replication_slot('hard_lookalike');
\c contrib_regression
DROP DATABASE hard_lookalike;

-- 11. The extension created after the slot, in the middle of what one call decodes:
-- its catalog is looked for again once the catalogs change, and found.
CREATE DATABASE hard_late;
\c hard_late
SET synchronous_commit = on;
CREATE TABLE t (id int PRIMARY KEY);
SELECT 'init' FROM pg_create_logical_replication_slot('hard_late', 'shape_router');
INSERT INTO t VALUES (1);
CREATE EXTENSION shape_router;
INSERT INTO t VALUES (2);
SELECT shape_router.register_shape('t') IS NOT NULL AS registered;
INSERT INTO t VALUES (3);
BEGIN;
SELECT shape_router.register_shape('t', 'id > 3') IS NOT NULL AS registered;
INSERT INTO t VALUES (4);
COMMIT;
SELECT data FROM pg_logical_slot_get_changes('hard_late', NULL, NULL, 'include-transaction', 'false');
SELECT 'stop' FROM pg_drop_replication_slot('hard_late');
\c contrib_regression
DROP DATABASE hard_late;

-- 12. A catalog with as many columns as this build's but other ones (made by another
-- build's script) is refused with an error, by registration and by decoding alike.
CREATE DATABASE hard_layout;
\c hard_layout
SET synchronous_commit = on;
CREATE EXTENSION shape_router;
CREATE TABLE t (id int PRIMARY KEY);
SELECT shape_router.register_shape('t', 'id > 0') IS NOT NULL AS registered;
ALTER TABLE shape_router.shape_catalog SET (user_catalog_table = false);
ALTER TABLE shape_router.shape_catalog ALTER COLUMN where_types TYPE int8[];
ALTER TABLE shape_router.shape_catalog SET (user_catalog_table = true);
SELECT 'init' FROM pg_create_logical_replication_slot('hard_layout', 'shape_router');
SELECT shape_router.register_shape('t', 'id > 1');
INSERT INTO t VALUES (1);
\set VERBOSITY terse
SELECT count(*) FROM pg_logical_slot_get_changes('hard_layout', NULL, NULL);
\set VERBOSITY default
SELECT 'stop' FROM pg_drop_replication_slot('hard_layout');
\c contrib_regression
DROP DATABASE hard_layout;

DROP TABLE hard;
DROP EXTENSION dblink;
DROP ROLE hard_user;
