-- Registration and drop mid-stream, rollback of a registration, and a shape
-- registered in the same transaction as the rows it then routes.
SET synchronous_commit = on;
CREATE TABLE ms (id int PRIMARY KEY, k int);
ALTER TABLE ms REPLICA IDENTITY FULL;
SELECT 'init' FROM pg_create_logical_replication_slot('midstream', 'shape_router');
INSERT INTO ms VALUES (1, 1);                       -- before any shape: not routed
SELECT shape_router.register_shape('ms', 'k = 1') AS s1 \gset
INSERT INTO ms VALUES (2, 1);                       -- routed to s1
BEGIN;
SELECT shape_router.register_shape('ms', 'k = 1') AS s_rolled_back \gset
INSERT INTO ms VALUES (3, 1);                       -- s1 only, once rolled back
ROLLBACK;
INSERT INTO ms VALUES (4, 1);                       -- s1 only
BEGIN;
INSERT INTO ms VALUES (5, 2);                       -- before the registration in this transaction: nothing
SELECT shape_router.register_shape('ms', 'k = 2') AS s2 \gset
INSERT INTO ms VALUES (6, 2);                       -- s2: live for its transaction's later changes
COMMIT;
BEGIN;
SELECT shape_router.drop_shape(:s1);
INSERT INTO ms VALUES (7, 1);                       -- dropped earlier in this transaction: nothing
COMMIT;
BEGIN;
SELECT shape_router.drop_shape(:s2);
ROLLBACK;
INSERT INTO ms VALUES (8, 2);                       -- s2 survives the rolled-back drop
-- a registration committed while another transaction is open routes only later commits
BEGIN;
INSERT INTO ms VALUES (9, 3);
SELECT shape_router.register_shape('ms', 'k = 3') AS s3 \gset
SAVEPOINT sp;
SELECT shape_router.register_shape('ms', 'k = 9') AS s9 \gset
ROLLBACK TO sp;
INSERT INTO ms VALUES (10, 3), (11, 9);             -- s3 yes; s9 was rolled back to the savepoint
COMMIT;

CREATE TEMP TABLE names (id bigint, name text);
INSERT INTO names VALUES (:s1, 's1'), (:s2, 's2'), (:s3, 's3'), (:s9, 's9'), (:s_rolled_back, 's_rolled_back');
SELECT coalesce(names.name, '-') AS shape, d.data::json->>'op' AS op, d.data::json->'new' AS new
  FROM pg_logical_slot_get_changes('midstream', NULL, NULL) WITH ORDINALITY d
  LEFT JOIN names ON names.id = (d.data::json->>'shape')::bigint ORDER BY d.ordinality;

-- a new decoding session loads the catalog as of where it starts
INSERT INTO ms VALUES (12, 2), (13, 3);
SELECT coalesce(names.name, '-') AS shape, d.data::json->'new' AS new
  FROM pg_logical_slot_get_changes('midstream', NULL, NULL, 'include-transaction', 'false') WITH ORDINALITY d
  LEFT JOIN names ON names.id = (d.data::json->>'shape')::bigint ORDER BY d.ordinality;
SELECT 'stop' FROM pg_drop_replication_slot('midstream');
DROP TABLE ms;
