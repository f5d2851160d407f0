-- batch-bytes packs a transaction's records, newline-separated, into messages of about N bytes.
SET synchronous_commit = on;
CREATE TABLE bt (id int PRIMARY KEY, pad text);
SELECT shape_router.register_shape('bt') IS NOT NULL AS registered;
SELECT 'init' FROM pg_create_logical_replication_slot('batch', 'shape_router');
INSERT INTO bt SELECT g, repeat('x', 10) FROM generate_series(1, 20) g;
INSERT INTO bt VALUES (100, 'second transaction');
-- one record per message without batching
SELECT count(*) AS messages FROM pg_logical_slot_peek_changes('batch', NULL, NULL);
-- 200-byte batches: several messages, none split a record, all records there in order
CREATE TEMP TABLE msgs AS
  SELECT ordinality AS n, data FROM pg_logical_slot_peek_changes('batch', NULL, NULL, 'batch-bytes', '200') WITH ORDINALITY;
SELECT count(*) AS messages, max(length(data)) < 400 AS bounded FROM msgs;
SELECT count(*) AS records,
       bool_and(line::json IS NOT NULL) AS all_json,
       string_agg(line::json->>'op', ',' ORDER BY n, k) AS ops
  FROM msgs, regexp_split_to_table(data, E'\n') WITH ORDINALITY AS l(line, k);
-- a commit always flushes: the second transaction does not share a message with the first
SELECT n, data LIKE '%"second transaction"%' AS second, data LIKE '{"op":"begin"}%' AS starts_with_begin
  FROM msgs WHERE data LIKE '%second transaction%' OR n = 1;
-- a huge batch: one message per transaction
SELECT count(*) AS messages FROM pg_logical_slot_peek_changes('batch', NULL, NULL, 'batch-bytes', '1000000');
-- batching changes framing only: same records as unbatched
SELECT (SELECT array_agg(line ORDER BY n, k) FROM msgs, regexp_split_to_table(data, E'\n') WITH ORDINALITY AS l(line, k))
     = (SELECT array_agg(data ORDER BY ordinality) FROM pg_logical_slot_peek_changes('batch', NULL, NULL) WITH ORDINALITY) AS same_records;
SELECT 'stop' FROM pg_drop_replication_slot('batch');
DROP TABLE bt;
