-- INSERT / UPDATE / DELETE / TRUNCATE routing, framing, and silence for unrouted transactions.
-- predictability
SET synchronous_commit = on;
CREATE TABLE todos (id bigserial PRIMARY KEY, user_id int NOT NULL, status text, title text);
ALTER TABLE todos REPLICA IDENTITY FULL;
CREATE TABLE unwatched (id int PRIMARY KEY, v text);
SELECT 'init' FROM pg_create_logical_replication_slot('routing', 'shape_router');
SELECT shape_router.register_shape('todos', 'user_id = 5') AS s_user5 \gset
SELECT shape_router.register_shape('todos', 'user_id = 5 AND status = ''open''', ARRAY['title']) AS s_open \gset
SELECT shape_router.register_shape('todos') AS s_all \gset
SELECT :s_user5 < :s_open AND :s_open < :s_all AS ids_ascending;

INSERT INTO todos (user_id, status, title) VALUES (5, 'open', 'a'), (6, 'done', 'b'), (7, NULL, 'c');
UPDATE todos SET status = 'done' WHERE user_id = 5;
UPDATE todos SET user_id = 6 WHERE id = 1;
DELETE FROM todos WHERE id = 2;
-- nothing routed: no records at all, not even begin/commit
INSERT INTO unwatched VALUES (1, 'x');
BEGIN; INSERT INTO unwatched VALUES (2, 'y'); UPDATE unwatched SET v = 'z'; COMMIT;
TRUNCATE todos;
TRUNCATE unwatched;
SELECT regexp_replace(data, '"shape":[0-9]+', '"shape":N') AS data
  FROM pg_logical_slot_get_changes('routing', NULL, NULL);

-- shape numbers, in order, for one change with all three shapes
INSERT INTO todos (id, user_id, status, title) VALUES (100, 5, 'open', 'x');
SELECT (data::json->>'shape')::bigint - :s_user5 AS shape_offset, data::json->>'op' AS op
  FROM pg_logical_slot_get_changes('routing', NULL, NULL);

-- include-transaction off; a transaction with several changes
BEGIN;
INSERT INTO todos (id, user_id, status, title) VALUES (101, 9, 'open', 'y');
INSERT INTO unwatched VALUES (3, 'w');
DELETE FROM todos WHERE id = 101;
COMMIT;
SELECT regexp_replace(data, '"shape":[0-9]+', '"shape":N') AS data
  FROM pg_logical_slot_get_changes('routing', NULL, NULL, 'include-transaction', 'false');

-- primary key change under default replica identity: old key tuple, key-only old
CREATE TABLE keyed (id int PRIMARY KEY, v text);
SELECT shape_router.register_shape('keyed', 'id < 10') AS s_keyed \gset
INSERT INTO keyed VALUES (1, 'a');
UPDATE keyed SET v = 'b' WHERE id = 1;
UPDATE keyed SET id = 20 WHERE id = 1;
UPDATE keyed SET id = 2 WHERE id = 20;
DELETE FROM keyed;
SELECT regexp_replace(data, '"shape":[0-9]+', '"shape":N') AS data
  FROM pg_logical_slot_get_changes('routing', NULL, NULL, 'include-transaction', 'false');

SELECT 'stop' FROM pg_drop_replication_slot('routing');
DROP TABLE todos, unwatched, keyed;
