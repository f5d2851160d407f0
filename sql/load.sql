-- Loading many shapes when decoding starts (the catalog is scanned through the
-- historic snapshot, its pages copied 16 at a time), then registering and
-- dropping more while decoding.
SET synchronous_commit = on;
CREATE TABLE ld (id int PRIMARY KEY, k int);
ALTER TABLE ld REPLICA IDENTITY FULL;
SELECT count(*) FROM shape_router.register_shapes('ld',
  (SELECT array_agg('k = ' || g) FROM generate_series(1, 5000) g));
-- Rows the load must not see, on every page and past the last: dropped shapes
-- (k a multiple of 10) and a registration rolled back.
SELECT count(shape_router.drop_shape(shape_id)) AS dropped
  FROM shape_router.shapes WHERE relation = 'ld'::regclass AND where_clause ~ '0\)*$';
BEGIN;
SELECT count(*) FROM shape_router.register_shapes('ld',
  (SELECT array_agg('k = ' || g) FROM generate_series(7001, 7300) g));
ROLLBACK;
SELECT pg_relation_size('shape_router.shape_catalog') / current_setting('block_size')::int > 32 AS several_batches;
SELECT 'init' FROM pg_create_logical_replication_slot('load', 'shape_router');
INSERT INTO ld SELECT g, g * 3 FROM generate_series(1, 2000) g;   -- k = 3..6000: 1500 rows match a shape
SELECT count(*) FROM shape_router.register_shapes('ld',
  (SELECT array_agg('k = ' || g) FROM generate_series(5001, 6000) g));
UPDATE ld SET k = k + 1 WHERE id <= 10;   -- 9 rows move out of k, 9 into k + 1 (not out of 30, not into 10)
SELECT data::json->>'op' AS op, data::json->>'move' AS move, count(*)
  FROM pg_logical_slot_get_changes('load', NULL, NULL, 'include-transaction', 'false')
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT changes_seen, relation_gate_passes, records_emitted, shapes_loaded, relations_with_shapes
  FROM shape_router.decoding_stats();
SELECT 'stop' FROM pg_drop_replication_slot('load');
DROP TABLE ld;
