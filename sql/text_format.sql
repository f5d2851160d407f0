-- format=text: one stable, human-readable line per record.
SET synchronous_commit = on;
CREATE TABLE tf (id bigint PRIMARY KEY, user_id int, title text, done boolean, score numeric, tags text[]);
ALTER TABLE tf REPLICA IDENTITY FULL;
SELECT 'init' FROM pg_create_logical_replication_slot('text_format', 'shape_router');
SELECT shape_router.register_shape('tf', 'user_id = 5') AS s1 \gset
SELECT shape_router.register_shape('tf', 'done', ARRAY['title']) AS s2 \gset
INSERT INTO tf VALUES (1, 5, 'a ''quoted'' title', false, 1.50, '{x,y}');
UPDATE tf SET done = true;
UPDATE tf SET user_id = 6;
UPDATE tf SET done = false;
DELETE FROM tf;
INSERT INTO tf VALUES (2, 5, NULL, NULL, NULL, NULL);
INSERT INTO tf VALUES (4, 5, E'two\nlines\\ and a tab\t', true, 'NaN', '{"a\\b"}');  -- E'' escapes: one line per record
TRUNCATE tf;
SELECT regexp_replace(data, '^shape [0-9]+', 'shape ' || CASE
         WHEN data LIKE 'shape ' || :s1 || ':%' THEN 'S1'
         WHEN data LIKE 'shape ' || :s2 || ':%' THEN 'S2' ELSE '?' END) AS data
  FROM pg_logical_slot_get_changes('text_format', NULL, NULL, 'format', 'text');
INSERT INTO tf VALUES (3, 5, 't', true, 2, NULL);
SELECT regexp_replace(regexp_replace(regexp_replace(regexp_replace(data, '^shape [0-9]+', 'shape N'),
         '(BEGIN|COMMIT) [0-9]+', '\1 X'), '\(lsn [0-9A-F]+/[0-9A-F]+\)', '(lsn L)'), '\(at [^)]+\)', '(at T)') AS data
  FROM pg_logical_slot_get_changes('text_format', NULL, NULL, 'format', 'text',
         'include-xids', '1', 'include-lsn', '1', 'include-timestamp', '1', 'shapes', :'s2');
SELECT 'stop' FROM pg_drop_replication_slot('text_format');
DROP TABLE tf;
