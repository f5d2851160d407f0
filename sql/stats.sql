-- Funnel counters move: the relation gate rejects changes to tables without shapes.
SET synchronous_commit = on;
CREATE TABLE st_watched (id int PRIMARY KEY, k int);
ALTER TABLE st_watched REPLICA IDENTITY FULL;
CREATE TABLE st_other (id int PRIMARY KEY);
SELECT shape_router.register_shape('st_watched', 'k = 1') IS NOT NULL AS registered;
SELECT shape_router.register_shape('st_watched', 'k = 2') IS NOT NULL AS registered;
SELECT shape_router.register_shape('st_watched', 'k * 1.5 = 4.5') IS NOT NULL AS registered;  -- numeric: a fallback
SELECT shape_router.register_shape('st_watched', 'k = 0 AND k > k - 1') IS NOT NULL AS registered;  -- column against expression: a fallback
SELECT 'init' FROM pg_create_logical_replication_slot('stats', 'shape_router');
INSERT INTO st_other SELECT generate_series(1, 1000);
INSERT INTO st_watched SELECT g, g % 4 FROM generate_series(1, 100) g;
UPDATE st_watched SET k = 1 WHERE id <= 10;
SELECT count(*) AS records FROM pg_logical_slot_get_changes('stats', NULL, NULL, 'include-transaction', 'false');
-- 1000 + 100 + 10 changes seen; 110 pass the gate.
-- "k = 1" and "k = 2" are indexed on k, so only rows with that k (old or new) reach them,
-- and being exact (the key is the value) they are decided by the index without a program
-- run: exact_hits = 25 + 25 inserts, and 10 ("k = 1") + 3 ("k = 2", ids 2, 6, 10) updates.
-- "k * 1.5 = 4.5" is indexed on its expression (a virtual column), under numeric keys, which
-- are hashes: its program runs for rows whose k * 1.5 is 4.5, old or new: 25 inserts, and twice
-- for each of the updates of ids 3 and 7 (moves out): 25 + 4 runs. Its fallback tests the
-- indexed expression, whose value the decoder has: 29 expression reuses, no executor call.
-- "k = 0 AND k > k - 1" is filed under k = 0: 25 inserts, and the updates of ids 4 and 8 (moves
-- out) run it twice each: 29 runs; its fallback (k > k - 1) goes to the executor where k = 0
-- holds: 25 + 2 = 27. Program runs: 58.
-- Records: 100 inserts; updates: k = 1 gets 3 updates + 7 moves in, k = 2 loses 3,
-- k * 1.5 = 4.5 loses 2, k = 0 AND ... loses 2: 117.
SELECT changes_seen, relation_gate_passes, gate_evaluations, fallback_evaluations, expression_reuses, exact_hits,
       records_emitted, errors, shapes_loaded, relations_with_shapes
  FROM shape_router.decoding_stats();
-- start_cpu_us: the session's CPU until its first change could be routed (shapes
-- loaded, index built), NULL for a session that saw no change; session_cpu_us: the
-- whole session's, from its start to its end.
SELECT start_cpu_us >= 0 AS start_measured, session_cpu_us >= start_cpu_us AS session_measured
  FROM shape_router.decoding_stats();
SELECT count(*) AS records FROM pg_logical_slot_get_changes('stats', NULL, NULL);
SELECT changes_seen, start_cpu_us IS NULL AS no_start, session_cpu_us >= 0 AS session_measured
  FROM shape_router.decoding_stats();
SELECT 'stop' FROM pg_drop_replication_slot('stats');
DROP TABLE st_watched, st_other;

-- The value sieve: while no shape can want a change, a row's integer values that
-- no shape is keyed on are answered by the sieve (a bit a value), without their
-- keys. 1,000 rows of 2 values each, of which the 10 assignees 1..10 are keyed.
CREATE TABLE st_sieve (id int PRIMARY KEY, owner_id int, assignee_id int);
ALTER TABLE st_sieve REPLICA IDENTITY FULL;
SELECT count(*) AS registered FROM shape_router.register_shapes('st_sieve',
  ARRAY(SELECT format('owner_id = %s OR assignee_id = %s', g, g) FROM generate_series(1, 200) g));
SELECT 'init' FROM pg_create_logical_replication_slot('sieve', 'shape_router');
INSERT INTO st_sieve SELECT g, 1000 + g, CASE WHEN g <= 10 THEN g ELSE 2000 + g END FROM generate_series(1, 1000) g;
SELECT count(*) AS records FROM pg_logical_slot_get_changes('sieve', NULL, NULL, 'include-transaction', 'false');
SELECT changes_seen, equality_probes, sieved_values > 1900 AS most_values_sieved, records_emitted
  FROM shape_router.decoding_stats();
SELECT 'stop' FROM pg_drop_replication_slot('sieve');
DROP TABLE st_sieve;
