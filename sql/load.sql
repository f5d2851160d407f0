-- Loading many shapes when decoding starts (the catalog is scanned through the
-- historic snapshot), then registering and dropping more while decoding.
SET synchronous_commit = on;
CREATE TABLE ld (id int PRIMARY KEY, k int);
ALTER TABLE ld REPLICA IDENTITY FULL;
SELECT count(*) FROM shape_router.register_shapes('ld',
  (SELECT array_agg('k = ' || g) FROM generate_series(1, 5000) g));
SELECT 'init' FROM pg_create_logical_replication_slot('load', 'shape_router');
INSERT INTO ld SELECT g, g * 3 FROM generate_series(1, 2000) g;   -- k = 3..6000: 1666 rows match a shape
SELECT count(*) FROM shape_router.register_shapes('ld',
  (SELECT array_agg('k = ' || g) FROM generate_series(5001, 6000) g));
UPDATE ld SET k = k + 1 WHERE id <= 10;                          -- 10 rows: move out of k, into k+1
SELECT data::json->>'op' AS op, data::json->>'move' AS move, count(*)
  FROM pg_logical_slot_get_changes('load', NULL, NULL, 'include-transaction', 'false')
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT changes_seen, relation_gate_passes, records_emitted, shapes_loaded, relations_with_shapes
  FROM shape_router.decoding_stats();
SELECT 'stop' FROM pg_drop_replication_slot('load');
DROP TABLE ld;
