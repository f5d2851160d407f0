-- Warm start: a session of the SQL interface that starts on the same slot exactly
-- where this backend's previous session stopped reuses its shapes and index
-- (decoding_stats().warm_start); anything else loads afresh. The records are the same
-- either way: slot warm_a is read in many sessions, slot warm_b once over the same WAL.
SET synchronous_commit = on;
CREATE TABLE wt (id int PRIMARY KEY, k int, v int);
ALTER TABLE wt REPLICA IDENTITY FULL;
SELECT count(*) AS registered FROM shape_router.register_shapes('wt', ARRAY(
  SELECT CASE WHEN i % 3 = 0 THEN format('k = %s', i % 10) WHEN i % 3 = 1 THEN format('v > %s', i)
              ELSE format('k IN (%s, %s) OR v < %s', i % 10, (i + 1) % 10, i - 40) END
    FROM generate_series(1, 60) AS i));
SELECT 'init' FROM pg_create_logical_replication_slot('warm_a', 'shape_router');
SELECT 'init' FROM pg_create_logical_replication_slot('warm_b', 'shape_router');
SELECT 'init' FROM pg_create_logical_replication_slot('warm_other', 'shape_router');
CREATE TEMP TABLE a_stream (session int, n bigint, data text);
CREATE TEMP TABLE sessions (session int, warm boolean, records bigint);
CREATE FUNCTION read_a(session int) RETURNS void LANGUAGE sql AS $$
  INSERT INTO a_stream SELECT session, ordinality, data
    FROM pg_logical_slot_get_changes('warm_a', NULL, NULL) WITH ORDINALITY;
  INSERT INTO sessions SELECT session, warm_start, records_emitted FROM shape_router.decoding_stats();
$$;

INSERT INTO wt SELECT i, i % 10, i FROM generate_series(1, 30) AS i;
SELECT read_a(1);                       -- the first session loads
UPDATE wt SET k = (k + 3) % 10 WHERE id % 2 = 0;
SELECT read_a(2);                       -- same slot, where session 1 stopped: reused
-- registrations and drops between sessions are decoded in order, as in any session
SELECT shape_router.register_shape('wt', 'k = 7 AND v >= 20') IS NOT NULL AS registered_between;
SELECT shape_router.drop_shape(min(shape_id)) FROM shape_router.shapes WHERE relation = 'wt'::regclass;
DELETE FROM wt WHERE id % 5 = 0;
SELECT read_a(3);
-- DDL between sessions: the reused state rebuilds what it knew of the table
ALTER TABLE wt ADD COLUMN note text DEFAULT 'n';
UPDATE wt SET v = v + 100, note = 'moved' WHERE id % 3 = 0;
SELECT read_a(4);
-- a peek reads ahead without moving the slot: the next session starts behind it
INSERT INTO wt VALUES (100, 7, 25);
SELECT count(*) > 0 AS peeked FROM pg_logical_slot_peek_changes('warm_a', NULL, NULL);
SELECT warm_start AS peek_reused FROM shape_router.decoding_stats();
SELECT read_a(5);
INSERT INTO wt VALUES (101, 1, 1);
SELECT read_a(6);
-- another slot in between
SELECT count(*) >= 0 AS other_slot FROM pg_logical_slot_get_changes('warm_other', NULL, NULL);
INSERT INTO wt VALUES (102, 2, 2);
SELECT read_a(7);
-- other output options keep the state; another shape selection does not
INSERT INTO wt VALUES (103, 3, 3);
SELECT count(*) AS text_records FROM pg_logical_slot_peek_changes('warm_a', NULL, NULL, 'format', 'text');
SELECT warm_start AS text_reused FROM shape_router.decoding_stats();
SELECT read_a(8);
TRUNCATE wt;
SELECT read_a(9);

SELECT session, warm, records FROM sessions ORDER BY session;
-- every session of warm_a together emitted exactly what one session of warm_b emits
CREATE TEMP TABLE b_stream AS
  SELECT ordinality AS n, data FROM pg_logical_slot_get_changes('warm_b', NULL, NULL) WITH ORDINALITY;
SELECT (SELECT count(*) FROM b_stream) AS b_records,
       (SELECT count(*) FROM a_stream) AS a_records,
       (SELECT array_agg(data ORDER BY session, n) FROM a_stream) =
       (SELECT array_agg(data ORDER BY n) FROM b_stream) AS same_stream;

-- reasons to load afresh, each on its own
INSERT INTO wt VALUES (200, 1, 1);
SELECT count(*) > 0 FROM pg_logical_slot_get_changes('warm_a', NULL, NULL);
SELECT warm_start AS cold_after_other_slot FROM shape_router.decoding_stats();
INSERT INTO wt VALUES (201, 1, 1);
SELECT count(*) > 0 FROM pg_logical_slot_get_changes('warm_a', NULL, NULL);
SELECT warm_start AS warm_again FROM shape_router.decoding_stats();
-- the slot moved without this backend decoding (as another backend's session would)
INSERT INTO wt VALUES (202, 1, 1);
SELECT 'advanced' FROM pg_replication_slot_advance('warm_a', pg_current_wal_lsn());
INSERT INTO wt VALUES (203, 1, 1);
SELECT count(*) AS records_after_advance FROM pg_logical_slot_get_changes('warm_a', NULL, NULL, 'include-transaction', 'false');
SELECT warm_start AS cold_after_advance FROM shape_router.decoding_stats();
-- a session that failed
SELECT count(*) FROM pg_logical_slot_get_changes('warm_a', NULL, NULL, 'batch-bytes', '-1');
INSERT INTO wt VALUES (204, 1, 1);
SELECT count(*) > 0 FROM pg_logical_slot_get_changes('warm_a', NULL, NULL);
SELECT warm_start AS cold_after_error FROM shape_router.decoding_stats();
-- another selection of shapes
INSERT INTO wt VALUES (205, 1, 1);
SELECT count(*) > 0 FROM pg_logical_slot_get_changes('warm_a', NULL, NULL, 'shard', '0/2');
SELECT warm_start AS cold_after_new_selection FROM shape_router.decoding_stats();
INSERT INTO wt VALUES (206, 1, 1);
SELECT count(*) >= 0 FROM pg_logical_slot_get_changes('warm_a', NULL, NULL, 'shard', '0/2');
SELECT warm_start AS same_selection_warm FROM shape_router.decoding_stats();
-- switched off
SET shape_router.warm_start = off;
INSERT INTO wt VALUES (207, 1, 1);
SELECT count(*) > 0 FROM pg_logical_slot_get_changes('warm_a', NULL, NULL);
INSERT INTO wt VALUES (208, 1, 1);
SELECT count(*) > 0 FROM pg_logical_slot_get_changes('warm_a', NULL, NULL);
SELECT warm_start AS off_cold FROM shape_router.decoding_stats();
RESET shape_router.warm_start;

SELECT 'stop' FROM pg_drop_replication_slot('warm_a');
SELECT 'stop' FROM pg_drop_replication_slot('warm_b');
SELECT 'stop' FROM pg_drop_replication_slot('warm_other');
DROP FUNCTION read_a(int);
DROP TABLE wt;
