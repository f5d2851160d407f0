-- Every class of WHERE clause that registration refuses; nothing is stored.
CREATE TABLE rej (id int PRIMARY KEY, n int, t text, f float8, j jsonb, arr int[]);
ALTER TABLE rej REPLICA IDENTITY FULL;
CREATE FUNCTION rej_udf(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1';
CREATE TYPE rej_mood AS ENUM ('sad', 'happy');
CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = int4eq);
CREATE SEQUENCE rej_seq;
-- injection and "more than one expression"
SELECT shape_router.register_shape('rej', '1=1; DROP TABLE rej');
SELECT shape_router.register_shape('rej', 'true) OR (true');
SELECT shape_router.register_shape('rej', '1=1 UNION SELECT true');
SELECT shape_router.register_shape('rej', 'true FROM pg_class');
SELECT shape_router.register_shape('rej', 'true WHERE false');
SELECT shape_router.register_shape('rej', 'true, false');
SELECT shape_router.register_shape('rej', 'true AS x');
SELECT shape_router.register_shape('rej', 'true ORDER BY 1');
SELECT shape_router.register_shape('rej', 'true LIMIT 1');
SELECT shape_router.register_shape('rej', '*');
SELECT shape_router.register_shape('rej', 'n = 1 -- trailing comment is fine') > 0 AS comment_ok;
SELECT shape_router.register_shape('rej', 'n = 1 /* unterminated');
SELECT shape_router.register_shape('rej', '');
SELECT shape_router.register_shape('rej', 'DROP TABLE rej');
-- syntax, unknown columns, type
SELECT shape_router.register_shape('rej', 'n = = 1');
SELECT shape_router.register_shape('rej', 'nope = 1');
SELECT shape_router.register_shape('rej', 'n');
SELECT shape_router.register_shape('rej', 'n + 1');
SELECT shape_router.register_shape('rej', 'other.n = 1');
-- volatile and stable functions
SELECT shape_router.register_shape('rej', 'f < random()');
SELECT shape_router.register_shape('rej', 't = now()::text');
SELECT shape_router.register_shape('rej', 't = current_user');
SELECT shape_router.register_shape('rej', 'n = t::int');
SELECT shape_router.register_shape('rej', 'n = 1 AND (SELECT true)');
SELECT shape_router.register_shape('rej', 'n::int8 = 1 AND int4(n::int8) = 1') > 0 AS function_casts_ok;
SELECT shape_router.register_shape('rej', 'n = nextval(''rej_seq'')');
-- user-defined functions, operators, types
SELECT shape_router.register_shape('rej', 'rej_udf(n) = 1');
SELECT shape_router.register_shape('rej', 'n === 1');
SELECT shape_router.register_shape('rej', 't::rej_mood = ''sad''');
-- system columns, whole-row references
SELECT shape_router.register_shape('rej', 'ctid = ''(0,1)''');
SELECT shape_router.register_shape('rej', 'xmin = ''1''');
SELECT shape_router.register_shape('rej', 'rej IS NOT NULL');
SELECT shape_router.register_shape('rej', 'rej.* IS NOT NULL');
-- subqueries, aggregates, window functions, set-returning functions, parameters
SELECT shape_router.register_shape('rej', 'n IN (SELECT 1)');
SELECT shape_router.register_shape('rej', 'EXISTS (SELECT 1 FROM pg_class)');
SELECT shape_router.register_shape('rej', 'count(*) > 1');
SELECT shape_router.register_shape('rej', 'row_number() OVER () = 1');
SELECT shape_router.register_shape('rej', 'generate_series(1, n) = 1');
SELECT shape_router.register_shape('rej', 'n = $1');
-- constant expressions that fail are caught at registration
SELECT shape_router.register_shape('rej', 'n = 1/0');
SELECT shape_router.register_shape('rej', 'n = ''abc''::int');
-- what is accepted: immutable built-ins of every kind
SELECT count(*) FROM shape_router.register_shapes('rej', ARRAY[
  'n BETWEEN 1 AND 10 AND t LIKE ''a%''',
  'n IN (1, 2, 3) OR t IS NULL',
  'coalesce(n, 0) + 1 > 2',
  'j @> ''{"a": 1}''',
  'arr && ARRAY[1, 2]',
  'CASE WHEN n > 0 THEN t ELSE ''x'' END = ''y''',
  'lower(t) = ''x'' COLLATE "C"',
  'f IS DISTINCT FROM 1.5',
  '(n, t) = (1, ''a'')',
  'n::numeric = 1.0']);
SELECT count(*) FROM shape_router.shapes WHERE relation = 'rej'::regclass;
DROP TABLE rej;
DROP FUNCTION rej_udf(int);
DROP TYPE rej_mood;
DROP OPERATOR === (int, int);
DROP SEQUENCE rej_seq;
