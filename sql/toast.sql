-- Unchanged TOASTed values: taken from the old row under REPLICA IDENTITY FULL (for the
-- WHERE and for "new"); otherwise listed explicitly under "unchanged_toast".
SET synchronous_commit = on;
CREATE TABLE tt_full (id int PRIMARY KEY, k int, big text);
ALTER TABLE tt_full REPLICA IDENTITY FULL;
ALTER TABLE tt_full ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE TABLE tt_key (id int PRIMARY KEY, k int, big text);
ALTER TABLE tt_key ALTER COLUMN big SET STORAGE EXTERNAL;
SELECT shape_router.register_shape('tt_full', 'k = 1 AND big LIKE ''x%''') IS NOT NULL AS registered;
SELECT shape_router.register_shape('tt_key', 'id > 0') IS NOT NULL AS registered;
SELECT shape_router.register_shape('tt_key', 'id > 0', ARRAY['k']) IS NOT NULL AS registered;
SELECT 'init' FROM pg_create_logical_replication_slot('toast', 'shape_router');
INSERT INTO tt_full VALUES (1, 0, repeat('x', 10000));   -- k = 0: not routed
UPDATE tt_full SET k = 1;                                -- big unchanged: move in needs its old value
UPDATE tt_full SET big = 'y' || big;                     -- move out
INSERT INTO tt_key VALUES (1, 0, repeat('z', 10000));
UPDATE tt_key SET k = 1;                                 -- big unchanged and not in the old row
SELECT d.data::json->>'op' AS op, d.data::json->>'move' AS move, d.data::json->>'table' AS tbl,
       length(d.data::json->'new'->>'big') AS new_big, left(d.data::json->'new'->>'big', 3) AS new_big_head,
       length(d.data::json->'old'->>'big') AS old_big, d.data::json->'unchanged_toast' AS unchanged_toast,
       d.data::json->'new'->'k' AS new_k
  FROM pg_logical_slot_peek_changes('toast', NULL, NULL, 'include-transaction', 'false') WITH ORDINALITY d
 ORDER BY d.ordinality;
SELECT regexp_replace(data, '^shape [0-9]+', 'shape N') AS data
  FROM pg_logical_slot_get_changes('toast', NULL, NULL, 'format', 'text', 'include-transaction', 'false')
 WHERE data LIKE '%tt_key: UPDATE%';
SELECT 'stop' FROM pg_drop_replication_slot('toast');
DROP TABLE tt_full, tt_key;
