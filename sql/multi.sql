-- Several shapes and tables on one slot; the shapes option selects a subset.
SET synchronous_commit = on;
CREATE TABLE users (id int PRIMARY KEY, name text, org int);
CREATE TABLE posts (id int PRIMARY KEY, user_id int, body text);
ALTER TABLE users REPLICA IDENTITY FULL;
ALTER TABLE posts REPLICA IDENTITY FULL;
SELECT 'init' FROM pg_create_logical_replication_slot('multi', 'shape_router');
SELECT 'init' FROM pg_create_logical_replication_slot('multi_a', 'shape_router');
SELECT 'init' FROM pg_create_logical_replication_slot('multi_b', 'shape_router');
SELECT shape_router.register_shape('users', 'org = 1') AS u_org1 \gset
SELECT shape_router.register_shape('posts', 'user_id = 1') AS p_u1 \gset
SELECT shape_router.register_shape('posts', 'user_id IN (1, 2)', ARRAY['user_id']) AS p_u12 \gset
SELECT shape_router.register_shape('users', 'org = 2') AS u_org2 \gset

BEGIN;
INSERT INTO users VALUES (1, 'ann', 1), (2, 'bob', 2), (3, 'cy', 3);
INSERT INTO posts VALUES (10, 1, 'hello'), (11, 2, 'hi'), (12, 3, 'yo');
UPDATE users SET org = 2 WHERE id = 1;
COMMIT;

CREATE TEMP TABLE names (id bigint, name text);
INSERT INTO names VALUES (:u_org1, 'u_org1'), (:p_u1, 'p_u1'), (:p_u12, 'p_u12'), (:u_org2, 'u_org2');
CREATE TEMP TABLE stream AS
  SELECT ordinality AS n, data FROM pg_logical_slot_peek_changes('multi', NULL, NULL) WITH ORDINALITY;
SELECT s.n, coalesce(names.name, '-') AS shape, s.data::json->>'op' AS op, s.data::json->>'move' AS move,
       s.data::json->>'table' AS tbl, coalesce(s.data::json->'new', s.data::json->'old') AS row
  FROM stream s LEFT JOIN names ON names.id = (s.data::json->>'shape')::bigint ORDER BY s.n;

-- shapes subset: two consumers of the same WAL, disjoint selections
SELECT coalesce(names.name, '-') AS shape, d.data::json->>'op' AS op
  FROM pg_logical_slot_peek_changes('multi', NULL, NULL, 'shapes', :'p_u1' || ',' || :'u_org2') WITH ORDINALITY d
  LEFT JOIN names ON names.id = (d.data::json->>'shape')::bigint ORDER BY d.ordinality;
SELECT coalesce(names.name, '-') AS shape, d.data::json->>'op' AS op
  FROM pg_logical_slot_peek_changes('multi', NULL, NULL, 'shapes', :'u_org1') WITH ORDINALITY d
  LEFT JOIN names ON names.id = (d.data::json->>'shape')::bigint ORDER BY d.ordinality;
-- two slots: disjoint subsets see disjoint streams; a shape on both slots, identical records
CREATE TEMP TABLE slot_a AS SELECT ordinality AS n, data FROM pg_logical_slot_get_changes('multi_a', NULL, NULL,
  'shapes', :'p_u1' || ',' || :'u_org2' || ',' || :'p_u12', 'include-transaction', '0') WITH ORDINALITY;
CREATE TEMP TABLE slot_b AS SELECT ordinality AS n, data FROM pg_logical_slot_get_changes('multi_b', NULL, NULL,
  'shapes', :'u_org1' || ',' || :'p_u12', 'include-transaction', '0') WITH ORDINALITY;
SELECT (SELECT count(*) FROM slot_a) AS a_records, (SELECT count(*) FROM slot_b) AS b_records,
       (SELECT count(*) FROM slot_a a JOIN slot_b b ON a.data = b.data
         WHERE (a.data::json->>'shape')::bigint <> :p_u12) AS shared_outside_p_u12,
       (SELECT array_agg(data ORDER BY n) FROM slot_a WHERE (data::json->>'shape')::bigint = :p_u12) IS NOT DISTINCT FROM
       (SELECT array_agg(data ORDER BY n) FROM slot_b WHERE (data::json->>'shape')::bigint = :p_u12) AS p_u12_identical,
       (SELECT count(*) FROM slot_a WHERE (data::json->>'shape')::bigint = :p_u12) AS p_u12_records;
SELECT 'stop' FROM pg_drop_replication_slot('multi_a');
SELECT 'stop' FROM pg_drop_replication_slot('multi_b');
-- a subset of shapes that do not exist: nothing at all
SELECT count(*) FROM pg_logical_slot_peek_changes('multi', NULL, NULL, 'shapes', '999999');
SELECT 'stop' FROM pg_drop_replication_slot('multi');
DROP TABLE users, posts;
