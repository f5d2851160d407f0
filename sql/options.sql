-- Plugin options: defaults, every option, and the errors for unknown, repeated and bad values.
SET synchronous_commit = on;
CREATE TABLE opt (id int PRIMARY KEY, v text);
SELECT shape_router.register_shape('opt') AS s_opt \gset
SELECT 'init' FROM pg_create_logical_replication_slot('options', 'shape_router');
INSERT INTO opt VALUES (1, 'a');

-- unknown option, repeated option, bad values: ERROR naming the option
SELECT data FROM pg_logical_slot_peek_changes('options', NULL, NULL, 'nope', '1');
SELECT data FROM pg_logical_slot_peek_changes('options', NULL, NULL, 'format', 'json', 'format', 'text');
SELECT data FROM pg_logical_slot_peek_changes('options', NULL, NULL, 'format', 'xml');
SELECT data FROM pg_logical_slot_peek_changes('options', NULL, NULL, 'format', NULL);
SELECT data FROM pg_logical_slot_peek_changes('options', NULL, NULL, 'include-xids', 'maybe');
SELECT data FROM pg_logical_slot_peek_changes('options', NULL, NULL, 'include-lsn', '2');
SELECT data FROM pg_logical_slot_peek_changes('options', NULL, NULL, 'include-timestamp', 'x');
SELECT data FROM pg_logical_slot_peek_changes('options', NULL, NULL, 'include-transaction', '');
SELECT data FROM pg_logical_slot_peek_changes('options', NULL, NULL, 'batch-bytes', '-1');
SELECT data FROM pg_logical_slot_peek_changes('options', NULL, NULL, 'batch-bytes', '12abc');
SELECT data FROM pg_logical_slot_peek_changes('options', NULL, NULL, 'batch-bytes', '99999999999999999999');
SELECT data FROM pg_logical_slot_peek_changes('options', NULL, NULL, 'shapes', '');
SELECT data FROM pg_logical_slot_peek_changes('options', NULL, NULL, 'shapes', '1,,2');
SELECT data FROM pg_logical_slot_peek_changes('options', NULL, NULL, 'shapes', '0');
SELECT data FROM pg_logical_slot_peek_changes('options', NULL, NULL, 'shapes', 'a');
SELECT data FROM pg_logical_slot_peek_changes('options', NULL, NULL, 'shapes', '-3');
SELECT data FROM pg_logical_slot_peek_changes('options', NULL, NULL, 'shapes', '1', 'shapes', '2');

-- booleans take PostgreSQL's spellings
SELECT count(*) FROM pg_logical_slot_peek_changes('options', NULL, NULL, 'include-xids', 'on', 'include-lsn', 'yes', 'include-timestamp', '1');

-- include-xids / include-lsn / include-timestamp, shapes with blanks
SELECT regexp_replace(regexp_replace(regexp_replace(regexp_replace(data, '"shape":[0-9]+', '"shape":N'),
         '"xid":[0-9]+', '"xid":X'), '"lsn":"[0-9A-F]+/[0-9A-F]+"', '"lsn":"L"', 'g'),
         '"timestamp":"[^"]+"', '"timestamp":"T"') AS data
  FROM pg_logical_slot_peek_changes('options', NULL, NULL,
         'include-xids', 'true', 'include-lsn', 'true', 'include-timestamp', 'true',
         'shapes', ' ' || :s_opt || ' , 999');
SELECT (data::json->>'timestamp')::timestamptz <= now() AS timestamp_parses,
       (data::json->>'lsn')::pg_lsn > '0/0' AS lsn_parses
  FROM pg_logical_slot_peek_changes('options', NULL, NULL, 'include-lsn', 'true', 'include-timestamp', 'true')
 WHERE data LIKE '{"op":"commit"%';
-- record lsn equals the lsn column of the change
SELECT (data::json->>'lsn')::pg_lsn = lsn AS record_lsn_matches
  FROM pg_logical_slot_peek_changes('options', NULL, NULL, 'include-lsn', 'true')
 WHERE data LIKE '{"shape"%';
-- defaults spelled out give the same stream as no options
SELECT (SELECT array_agg(data) FROM pg_logical_slot_peek_changes('options', NULL, NULL))
     = (SELECT array_agg(data) FROM pg_logical_slot_peek_changes('options', NULL, NULL,
          'format', 'json', 'include-transaction', 'true', 'include-xids', 'false',
          'include-lsn', 'false', 'include-timestamp', 'false', 'batch-bytes', '0')) AS defaults_match;
SELECT 'stop' FROM pg_drop_replication_slot('options');
DROP TABLE opt;
