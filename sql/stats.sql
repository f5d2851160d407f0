-- Funnel counters move: the relation gate rejects changes to tables without shapes.
SET synchronous_commit = on;
CREATE TABLE st_watched (id int PRIMARY KEY, k int);
ALTER TABLE st_watched REPLICA IDENTITY FULL;
CREATE TABLE st_other (id int PRIMARY KEY);
SELECT shape_router.register_shape('st_watched', 'k = 1') IS NOT NULL AS registered;
SELECT shape_router.register_shape('st_watched', 'k = 2') IS NOT NULL AS registered;
SELECT shape_router.register_shape('st_watched', 'k + 0 = 3') IS NOT NULL AS registered;  -- arithmetic: a fallback
SELECT 'init' FROM pg_create_logical_replication_slot('stats', 'shape_router');
INSERT INTO st_other SELECT generate_series(1, 1000);
INSERT INTO st_watched SELECT g, g % 4 FROM generate_series(1, 100) g;
UPDATE st_watched SET k = 1 WHERE id <= 10;
SELECT count(*) AS records FROM pg_logical_slot_get_changes('stats', NULL, NULL, 'include-transaction', 'false');
-- 1000 + 100 + 10 changes seen; 110 pass the gate.
-- Program runs: "k = 1" and "k = 2" are indexed on k, so only rows with that k (old or new)
-- reach them; "k + 0 = 3" is a scan shape and sees every row.
--   inserts: 25 (k = 1) + 25 (k = 2) + 100 (scan) = 150;
--   updates of ids 1..10 to k = 1: "k = 1" runs once for ids 1, 5, 9 (k unchanged) and twice
--   for the 7 others (17); "k = 2" twice for ids 2, 6, 10 (6); the scan shape 3 + 14 (17): 40.
-- Fallbacks: only "k + 0 = 3" calls the executor: 100 + 3 + 14 = 117.
-- Records: 75 inserts; updates: k = 1 gets 3 updates + 7 moves in, k = 2 loses 3, k + 0 = 3 loses 2: 90.
SELECT changes_seen, relation_gate_passes, gate_evaluations, fallback_evaluations, records_emitted, errors,
       shapes_loaded, relations_with_shapes
  FROM shape_router.decoding_stats();
SELECT 'stop' FROM pg_drop_replication_slot('stats');
DROP TABLE st_watched, st_other;
