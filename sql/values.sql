-- JSON value rendering: numbers, special floats, booleans, json/jsonb, strings, NULLs, names.
SET synchronous_commit = on;
CREATE DOMAIN vals_posint AS int CHECK (VALUE > 0);
CREATE TABLE "Vals Table" (
  id int PRIMARY KEY, i2 int2, i8 int8, o oid, f4 float4, f8 float8, n numeric, b bool,
  j json, jb jsonb, t text, vc varchar(10), c char(3), ts timestamptz, d date, u uuid,
  arr int[], iv interval, by bytea, dom vals_posint, "Mixed ""Case""" text, dropped int);
ALTER TABLE "Vals Table" DROP COLUMN dropped;
-- values use the decoding session's DateStyle, IntervalStyle and TimeZone, as pgoutput does
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
SELECT 'init' FROM pg_create_logical_replication_slot('vals', 'shape_router');
SELECT shape_router.register_shape('"Vals Table"') IS NOT NULL AS registered;
INSERT INTO "Vals Table" VALUES
  (1, -32768, 9223372036854775807, 4294967295, 1.5, -0.0, 12345678901234567890.000100, true,
   '{"a": [1, 2, {"b": null}]}', '{"z": 1, "a": "x"}', E'tab\there "q" \\ back\nnewline \u00e9 ☃', 'vc', 'ab',
   '2026-03-29 01:30:00+00', '2026-11-20', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
   '{1,NULL,3}', '1 day 2 hours', '\x00ff', 7, 'mixed'),
  (2, NULL, NULL, NULL, 'NaN', 'Infinity', 'NaN', false, 'null', '[]', '', NULL, NULL,
   'infinity', '-infinity', NULL, '{}', NULL, '\x', NULL, NULL),
  (3, 0, 0, 0, '-Infinity', 1e300, '-Infinity', NULL, '"s"', '3', 'x', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
SELECT regexp_replace(data, '"shape":[0-9]+', '"shape":N') AS data FROM pg_logical_slot_peek_changes('vals', NULL, NULL, 'include-transaction', 'false');
-- every record is valid JSON and numbers stay numbers
SELECT data::jsonb->'new'->'i8' AS i8, jsonb_typeof(data::jsonb->'new'->'f4') AS f4_type,
       jsonb_typeof(data::jsonb->'new'->'j') AS j_type
  FROM pg_logical_slot_get_changes('vals', NULL, NULL, 'include-transaction', 'false');
SELECT 'stop' FROM pg_drop_replication_slot('vals');
DROP TABLE "Vals Table";
DROP DOMAIN vals_posint;
-- strings are escaped exactly as PostgreSQL's to_json escapes them (every control
-- character, quotes, backslashes, multibyte), integers at their limits
CREATE TABLE vals_esc (id int PRIMARY KEY, t text, v varchar, i4 int4, i8 int8, b bool);
SELECT 'init' FROM pg_create_logical_replication_slot('esc', 'shape_router');
SELECT shape_router.register_shape('vals_esc') IS NOT NULL AS registered;
INSERT INTO vals_esc SELECT g, chr(g) || '"\' || repeat('x', g % 7) || chr(g) || 'é☃😀', chr(g),
                            CASE WHEN g % 2 = 0 THEN -2147483648 ELSE 2147483647 END,
                            CASE WHEN g % 2 = 0 THEN -9223372036854775808 ELSE g END, g % 3 = 0
  FROM generate_series(1, 300) g;
WITH routed AS (SELECT data::json->'new' AS new FROM pg_logical_slot_get_changes('esc', NULL, NULL, 'include-transaction', 'false'))
SELECT count(*) AS rows,
       count(*) FILTER (WHERE (r.new->'t')::text = to_json(v.t)::text AND (r.new->'v')::text = to_json(v.v)::text
                          AND (r.new->'i4')::text = to_json(v.i4)::text AND (r.new->'i8')::text = to_json(v.i8)::text
                          AND (r.new->'b')::text = to_json(v.b)::text) AS same_as_to_json
  FROM routed r JOIN vals_esc v ON v.id = (r.new->>'id')::int;
SELECT 'stop' FROM pg_drop_replication_slot('esc');
DROP TABLE vals_esc;
-- random strings of 0 to 40 characters: escapes at every position of the 8-byte
-- words the escaper scans, between plain ASCII and multibyte characters
CREATE TABLE vals_rand (id int PRIMARY KEY, t text);
SELECT 'init' FROM pg_create_logical_replication_slot('rand', 'shape_router');
SELECT shape_router.register_shape('vals_rand') IS NOT NULL AS registered;
SELECT setseed(0.25);
INSERT INTO vals_rand
  SELECT g, (SELECT coalesce(string_agg(CASE WHEN r < 0.08 THEN chr(1 + floor(random() * 31)::int)
                                             WHEN r < 0.11 THEN '"' WHEN r < 0.14 THEN '\'
                                             WHEN r < 0.20 THEN 'é' WHEN r < 0.22 THEN '😀'
                                             ELSE chr(32 + floor(random() * 95)::int) END, ''), '')
               FROM (SELECT random() AS r FROM generate_series(1, g % 41) k) c)
  FROM generate_series(1, 3000) g;
WITH routed AS (SELECT data::json->'new' AS new FROM pg_logical_slot_get_changes('rand', NULL, NULL, 'include-transaction', 'false'))
SELECT count(*) AS rows, count(*) FILTER (WHERE (r.new->'t')::text = to_json(v.t)::text) AS same_as_to_json,
       count(*) FILTER (WHERE v.t ~ '[\x01-\x1f"\\]') AS with_escapes
  FROM routed r JOIN vals_rand v ON v.id = (r.new->>'id')::int;
SELECT 'stop' FROM pg_drop_replication_slot('rand');
DROP TABLE vals_rand;
-- timestamptz is written directly (timestamptz_out's steps): the same text as the
-- type's output under every DateStyle and TimeZone, for finite, infinite, BC and
-- fractional values
CREATE TABLE vals_ts (id int PRIMARY KEY, ts timestamptz);
SELECT 'init' FROM pg_create_logical_replication_slot('ts', 'shape_router');
SELECT shape_router.register_shape('vals_ts') IS NOT NULL AS registered;
-- rows 0 and 301 to 305 share one value: consecutive calls under different
-- settings begin where the previous ended, with the same timestamp
INSERT INTO vals_ts VALUES (0, '2001-02-03 04:05:06.789+00');
INSERT INTO vals_ts SELECT g, CASE g WHEN 1 THEN 'infinity' WHEN 2 THEN '-infinity' WHEN 3 THEN '0044-03-15 12:00:00 BC'
                                   WHEN 4 THEN '294276-12-31 23:59:59.999999+00' WHEN 5 THEN '4713-01-01 00:00:00+00 BC'
                                   ELSE timestamptz '2000-01-01 00:00:00+00' + (hashint4(g) * interval '1.234567 second') END
  FROM generate_series(1, 300) g;
INSERT INTO vals_ts SELECT g, '2001-02-03 04:05:06.789+00' FROM generate_series(301, 305) g;
CREATE FUNCTION vals_ts_same(style text, zone text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE result text;
BEGIN
  PERFORM set_config('datestyle', style, true);
  PERFORM set_config('timezone', zone, true);
  WITH routed AS (SELECT data::json->'new' AS new FROM pg_logical_slot_peek_changes('ts', NULL, NULL, 'include-transaction', 'false'))
  SELECT format('%s %s: %s of %s', style, zone, count(*) FILTER (WHERE (r.new->'ts')::text = to_json(v.ts::text)::text), count(*))
    INTO result FROM routed r JOIN vals_ts v ON v.id = (r.new->>'id')::int;
  RETURN result;
END $$;
SELECT vals_ts_same(s, z) FROM unnest(ARRAY['ISO, YMD', 'SQL, DMY', 'Postgres, MDY', 'German']) s,
                               unnest(ARRAY['UTC', 'America/New_York', 'Asia/Kolkata']) z;
SELECT 'stop' FROM pg_drop_replication_slot('ts');
DROP FUNCTION vals_ts_same(text, text);
DROP TABLE vals_ts;
