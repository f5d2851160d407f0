-- Partitioned tables: a shape on the root sees every partition's changes in the
-- root's layout; a shape on a partition sees only that partition; multi-level
-- trees; partitions attached and detached while the slot runs; TRUNCATE.
SET synchronous_commit = on;
SELECT setval('shape_router.shape_id_seq', 3000) IS NOT NULL AS ids_from_3001;
CREATE TABLE pt (id int, region text, amount numeric, note text, PRIMARY KEY (id, region))
  PARTITION BY LIST (region);
CREATE TABLE pt_eu PARTITION OF pt FOR VALUES IN ('eu');
-- a partition with a dropped column and a different column order
CREATE TABLE pt_us (junk int, note text, amount numeric, region text NOT NULL, id int NOT NULL);
ALTER TABLE pt_us DROP COLUMN junk;
ALTER TABLE pt ATTACH PARTITION pt_us FOR VALUES IN ('us');
-- two levels: pt_asia is itself partitioned
CREATE TABLE pt_asia PARTITION OF pt FOR VALUES IN ('jp', 'kr') PARTITION BY LIST (region);
CREATE TABLE pt_asia_jp (note text, region text NOT NULL, id int NOT NULL, amount numeric);
ALTER TABLE pt_asia ATTACH PARTITION pt_asia_jp FOR VALUES IN ('jp');
CREATE TABLE pt_asia_kr PARTITION OF pt_asia FOR VALUES IN ('kr');
ALTER TABLE pt_eu REPLICA IDENTITY FULL;
ALTER TABLE pt_us REPLICA IDENTITY FULL;
ALTER TABLE pt_asia_jp REPLICA IDENTITY FULL;
-- pt_asia_kr keeps the default identity (the primary key): a WHERE on amount is refused
SELECT shape_router.register_shape('pt', 'amount > 100');
ALTER TABLE pt_asia_kr REPLICA IDENTITY FULL;
SELECT 'init' FROM pg_create_logical_replication_slot('part', 'shape_router');
SELECT shape_router.register_shape('pt', 'amount > 100') AS s_big \gset
SELECT shape_router.register_shape('pt', 'id = 7') AS s_id7 \gset
SELECT shape_router.register_shape('pt', NULL, ARRAY['note']) AS s_notes \gset
SELECT shape_router.register_shape('pt_us', 'amount > 100') AS s_us \gset
SELECT shape_router.register_shape('pt_asia', 'region = ''jp''') AS s_asia \gset
SELECT relation, where_clause, columns FROM shape_router.shapes WHERE shape_id > 3000 ORDER BY shape_id;
INSERT INTO pt VALUES (1, 'eu', 50, 'small eu'), (2, 'us', 500, 'big us'), (7, 'jp', 700, 'big jp'),
                      (8, 'kr', 10, 'small kr');
UPDATE pt SET amount = 150 WHERE id = 1;          -- moves into s_big
UPDATE pt SET amount = 5 WHERE id = 2;            -- moves out of s_big and s_us
DELETE FROM pt WHERE id = 7;
UPDATE pt SET region = 'eu', amount = 600 WHERE id = 2;  -- crosses partitions: PostgreSQL logs a delete and an insert
SELECT data FROM pg_logical_slot_get_changes('part', NULL, NULL, 'format', 'text', 'include-transaction', '0');
-- the same rows through matching_shapes (the root's row type)
INSERT INTO pt VALUES (9, 'jp', 900, 'x');
SELECT shape_router.matching_shapes(p) FROM pt p WHERE id = 9;
SELECT count(*) FROM pg_logical_slot_get_changes('part', NULL, NULL);
-- a partition attached while the slot runs: its rows reach the root's shapes;
-- one detached: they no longer do
CREATE TABLE pt_br (id int NOT NULL, amount numeric, region text NOT NULL, note text);
ALTER TABLE pt_br REPLICA IDENTITY FULL;
INSERT INTO pt_br VALUES (20, 2000, 'br', 'before attach');
ALTER TABLE pt ATTACH PARTITION pt_br FOR VALUES IN ('br');
INSERT INTO pt VALUES (21, 'br', 2100, 'attached');
ALTER TABLE pt DETACH PARTITION pt_us;
INSERT INTO pt_us VALUES ('detached', 9999, 'us', 22);
SELECT data FROM pg_logical_slot_get_changes('part', NULL, NULL, 'format', 'json', 'include-transaction', '0');
-- attaching a partition whose replica identity does not cover a shape's WHERE is refused
CREATE TABLE pt_fr (id int NOT NULL, region text NOT NULL, amount numeric, note text, PRIMARY KEY (id, region));
ALTER TABLE pt ATTACH PARTITION pt_fr FOR VALUES IN ('fr');
ALTER TABLE pt_eu REPLICA IDENTITY DEFAULT;
-- TRUNCATE of the root: one record per shape; of one partition: the root's
-- shapes are told which partition
TRUNCATE pt;
TRUNCATE pt_eu;
SELECT data FROM pg_logical_slot_get_changes('part', NULL, NULL, 'include-transaction', '0');
-- DROP TABLE of a partition drops its shapes (a drop record), not the root's
DROP TABLE pt_asia;
DROP TABLE pt;
SELECT data FROM pg_logical_slot_get_changes('part', NULL, NULL, 'include-transaction', '0');
SELECT relation, shape_id - 3000 AS n FROM shape_router.shapes WHERE shape_id > 3000;
DROP TABLE pt_us, pt_fr;
SELECT data FROM pg_logical_slot_get_changes('part', NULL, NULL, 'include-transaction', '0');
-- inheritance children are separate tables: the parent's shapes see only its own rows
CREATE TABLE ih_parent (id int PRIMARY KEY, v int);
CREATE TABLE ih_child () INHERITS (ih_parent);
SELECT shape_router.register_shape('ih_parent') IS NOT NULL AS registered;
INSERT INTO ih_parent VALUES (1, 1);
INSERT INTO ih_child VALUES (2, 2);
DROP TABLE ih_parent CASCADE;
SELECT data FROM pg_logical_slot_get_changes('part', NULL, NULL, 'include-transaction', '0');
SELECT 'stop' FROM pg_drop_replication_slot('part');
