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

-- The common types are written without their output function (text, varchar,
-- integers, bool, timestamptz): each must read as the output function's text
-- does. name has no such path: its literal is the reference for text's and
-- varchar's, over strings of quotes, backslashes and control characters.
CREATE TABLE tfv (id int PRIMARY KEY, t text, n name, v varchar, i8 int8, b bool, ts timestamptz);
SELECT shape_router.register_shape('tfv', NULL) AS tfv_shape \gset
SELECT 'init' FROM pg_create_logical_replication_slot('text_values', 'shape_router');
SELECT setseed(0.3);
INSERT INTO tfv
SELECT g, s, s, s, (random() * 1e15)::int8 - 5e14::int8, random() < 0.5,
       '2026-01-01 00:00:00+00'::timestamptz + random() * interval '3000 days'
  FROM (SELECT g, (SELECT string_agg((ARRAY['a', '''', '\', E'\n', E'\t', E'\r', chr(1), 'é', ' ', 'x'])[1 + floor(random() * 10)::int], '')
                     FROM generate_series(0, (g % 20) + (g * 0)) i) AS s
          FROM generate_series(1, 200) g) x;
CREATE TEMP TABLE tfv_records AS
SELECT data FROM pg_logical_slot_get_changes('text_values', NULL, NULL, 'format', 'text', 'include-transaction', 'false');
SELECT count(*) AS records,
       count(*) FILTER (WHERE substring(data FROM 't\[text\]:(E?''(?:[^'']|'''')*'')') =
                              substring(data FROM 'n\[name\]:(E?''(?:[^'']|'''')*'')')) AS text_as_name,
       count(*) FILTER (WHERE substring(data FROM ' v\[character varying\]:(E?''(?:[^'']|'''')*'')') =
                              substring(data FROM 'n\[name\]:(E?''(?:[^'']|'''')*'')')) AS varchar_as_name,
       count(*) FILTER (WHERE substring(data FROM 'i8\[bigint\]:(-?[0-9]+)') = r.i8::text
                          AND substring(data FROM ' b\[boolean\]:([a-z]+)') = CASE WHEN r.b THEN 'true' ELSE 'false' END
                          AND substring(data FROM 'ts\[timestamp with time zone\]:(''[^'']*'')') = quote_literal(r.ts::text)) AS others_as_output
  FROM tfv_records JOIN tfv r ON r.id = substring(data FROM 'id\[integer\]:([0-9]+)')::int;
SELECT 'stop' FROM pg_drop_replication_slot('text_values');
SELECT shape_router.drop_shape(:tfv_shape);
DROP TABLE tfv;
