-- DDL on shaped tables: DROP TABLE drops the shapes; dropping a used column is refused; renames are followed.
SET synchronous_commit = on;
SELECT setval('shape_router.shape_id_seq', 2000) IS NOT NULL AS ids_from_2001;
CREATE TABLE dd (id int PRIMARY KEY, a int, b text, c text);
ALTER TABLE dd REPLICA IDENTITY FULL;
SELECT 'init' FROM pg_create_logical_replication_slot('ddl', 'shape_router');
SELECT shape_router.register_shape('dd', 'a = 1') AS s_a \gset
SELECT shape_router.register_shape('dd', NULL, ARRAY['b']) AS s_b \gset
ALTER TABLE dd DROP COLUMN a;
ALTER TABLE dd DROP COLUMN b;
ALTER TABLE dd DROP COLUMN c;                -- unused by any shape: fine
ALTER TABLE dd RENAME COLUMN a TO a_renamed;
SELECT where_clause, columns FROM shape_router.shapes WHERE shape_id IN (:s_a, :s_b) ORDER BY shape_id;
SELECT line FROM shape_router.explain_shape(:s_a) AS line WHERE line LIKE 'where:%' OR line LIKE 'reads%';
-- showing a WHERE locks its table only while it is read again: no lock is left held
BEGIN;
SELECT count(where_clause) AS shown FROM shape_router.shapes WHERE shape_id = :s_a;
SELECT count(*) AS locks_held FROM pg_locks WHERE relation = 'dd'::regclass AND pid = pg_backend_pid();
COMMIT;
INSERT INTO dd VALUES (1, 1, 'x');
SELECT data::json->'new' AS new FROM pg_logical_slot_get_changes('ddl', NULL, NULL, 'include-transaction', '0');
BEGIN;
DROP TABLE dd;
SELECT count(*) AS shapes_in_txn FROM shape_router.shapes WHERE shape_id IN (:s_a, :s_b);
ROLLBACK;
SELECT count(*) AS shapes_after_rollback FROM shape_router.shapes WHERE shape_id IN (:s_a, :s_b);
DROP TABLE dd;
SELECT count(*) AS shapes_after_drop FROM shape_router.shapes WHERE shape_id IN (:s_a, :s_b);
SELECT data FROM pg_logical_slot_get_changes('ddl', NULL, NULL);
SELECT relations_with_shapes, shapes_loaded FROM shape_router.decoding_stats();
-- a column a shape reads keeps its type and collation: a longer varchar is fine, another
-- type or collation is refused (the shape's program was compiled for them)
CREATE TABLE dv (id int PRIMARY KEY, v varchar(10), w text);
ALTER TABLE dv REPLICA IDENTITY FULL;
SELECT shape_router.register_shape('dv', 'v < ''m'' AND w = ''x''') - 2000 AS s_v;
ALTER TABLE dv ALTER COLUMN v TYPE varchar(20);
ALTER TABLE dv ALTER COLUMN v TYPE text;
ALTER TABLE dv ALTER COLUMN v TYPE varchar(20) COLLATE "C";
ALTER TABLE dv ALTER COLUMN w TYPE text COLLATE "C";
ALTER TABLE dv RENAME COLUMN w TO w2;
SELECT where_clause FROM shape_router.shapes WHERE relation = 'dv'::regclass;
DROP TABLE dv;
-- one statement dropping two tables whose shapes interleave: drop records in ascending shape order
CREATE TABLE dd1 (id int PRIMARY KEY);
CREATE TABLE dd2 (id int PRIMARY KEY);
SELECT shape_router.register_shape('dd1') - 2000 AS first,
       shape_router.register_shape('dd2') - 2000 AS second,
       shape_router.register_shape('dd1') - 2000 AS third;
SELECT data FROM pg_logical_slot_get_changes('ddl', NULL, NULL, 'include-transaction', '0');
DROP TABLE dd1, dd2;
SELECT (data::json->>'shape')::bigint - 2000 AS dropped, data::json->>'op' AS op
  FROM pg_logical_slot_get_changes('ddl', NULL, NULL, 'include-transaction', '0');
SELECT 'stop' FROM pg_drop_replication_slot('ddl');
