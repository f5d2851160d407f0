-- Shapes carried across a major upgrade: pg_upgrade copies the catalog's rows as they
-- are, but node trees are read correctly only by the major that wrote them. A row made
-- under another major is re-analysed from its WHERE text, and never read otherwise. The
-- upgrade is faked: rows are marked as made under PostgreSQL 14, and their trees,
-- programs and covers are rotated between shapes, so that reading any of them would route
-- wrongly.
SET synchronous_commit = on;
-- fixed ids: the WARNINGs below name a shape
SELECT setval('shape_router.shape_id_seq', 900000) IS NOT NULL AS ids_from_900001;
CREATE TABLE up (id int PRIMARY KEY, k int, v int, t text);
ALTER TABLE up REPLICA IDENTITY FULL;
SELECT shape_router.register_shape('up', 'k = 1 AND v > 10') AS a \gset
SELECT shape_router.register_shape('up', 'k IN (2, 3) OR t LIKE ''a%''') AS b \gset
SELECT shape_router.register_shape('up', 'v BETWEEN 5 AND 8', ARRAY['v']) AS c \gset
SELECT shape_router.register_shape('up') AS d \gset
SELECT shape_router.register_shape('up', 'k > 100 AND lower(t) <> ''q''') AS e \gset
SELECT shape_router.register_shape('up', 'upper(t) = ''AB''') AS f \gset
-- registered in a session whose dates read day first: the stored text must not depend on it
SET datestyle = 'SQL, DMY';
SELECT shape_router.register_shape('up', 'k = 3 AND ''02/01/2026''::date < ''2026-01-10''::date') AS g \gset
RESET datestyle;
SELECT server_major = current_setting('server_version_num')::int / 10000 AS this_major,
       where_source, where_names
  FROM shape_router.shape_catalog ORDER BY shape_id;
-- renamed after registration: k and v swap names; the stored texts keep the old ones
ALTER TABLE up RENAME COLUMN k TO tmp;
ALTER TABLE up RENAME COLUMN v TO k;
ALTER TABLE up RENAME COLUMN tmp TO v;

-- the same writes, run before and after the fake upgrade (they leave the table empty);
-- the streams are compared as sorted lists, as UPDATE and DELETE visit rows in heap order
CREATE FUNCTION up_writes() RETURNS void LANGUAGE sql AS $$
  INSERT INTO up (id, v, k, t) SELECT i, i % 5, i * 3 % 20, CASE WHEN i % 3 = 0 THEN 'ab' ELSE 'b' END
    FROM generate_series(1, 40) AS i;
  UPDATE up SET k = k + 4 WHERE id % 4 = 0;
  UPDATE up SET v = (v + 1) % 5, t = 'a' || t WHERE id % 7 = 0;
  UPDATE up SET v = 200 WHERE id = 39;
  DELETE FROM up;
$$;
SELECT 'init' FROM pg_create_logical_replication_slot('up_live', 'shape_router');
SELECT up_writes();
CREATE TEMP TABLE before AS
  SELECT ordinality AS n, data FROM pg_logical_slot_get_changes('up_live', NULL, NULL, 'include-transaction', 'false')
  WITH ORDINALITY;
SELECT (data::json->>'shape')::bigint - :a AS shape, data::json->>'op' AS op, count(*)
  FROM before GROUP BY 1, 2 ORDER BY 1, 2;

-- the fake upgrade: a's row gets b's types, program and cover, b gets c's, c gets a's;
-- e's text becomes one that no major can analyse
UPDATE shape_router.shape_catalog c
   SET server_major = 14, where_types = o.where_types, program = o.program,
       fallback_exprs = o.fallback_exprs, index_cover = o.index_cover
  FROM shape_router.shape_catalog o
 WHERE (c.shape_id, o.shape_id) IN ((:a, :b), (:b, :c), (:c, :a));
UPDATE shape_router.shape_catalog SET server_major = 14 WHERE shape_id IN (:d, :f, :g);
-- a session whose search_path would find another upper() first: the text is analysed
-- with pg_catalog's names all the same
CREATE SCHEMA up_shadow;
CREATE FUNCTION up_shadow.upper(text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT ''AB''';
SET search_path = up_shadow, pg_catalog, public;
UPDATE shape_router.shape_catalog SET server_major = 14, where_source = 'k >>> 100' WHERE shape_id = :e;
SELECT 'init' FROM pg_create_logical_replication_slot('up_fresh', 'shape_router');
SELECT up_writes();
-- the live slot applies the rewritten rows mid-stream; the fresh one loads them at its start
CREATE TEMP TABLE after_live AS
  SELECT ordinality AS n, data FROM pg_logical_slot_get_changes('up_live', NULL, NULL, 'include-transaction', 'false')
  WITH ORDINALITY;
CREATE TEMP TABLE after_fresh AS
  SELECT ordinality AS n, data FROM pg_logical_slot_get_changes('up_fresh', NULL, NULL, 'include-transaction', 'false')
  WITH ORDINALITY;
SELECT (SELECT count(*) FROM before) AS records_before,
       (SELECT count(*) FROM before WHERE (data::json->>'shape')::bigint = :e) AS of_e_before,
       (SELECT count(*) FROM after_live WHERE (data::json->>'shape')::bigint = :e) AS of_e_live,
       (SELECT count(*) FROM after_fresh WHERE (data::json->>'shape')::bigint = :e) AS of_e_fresh,
       (SELECT array_agg(data ORDER BY data) FROM before WHERE (data::json->>'shape')::bigint <> :e) =
       (SELECT array_agg(data ORDER BY data) FROM after_live) AS live_same,
       (SELECT array_agg(data ORDER BY data) FROM before WHERE (data::json->>'shape')::bigint <> :e) =
       (SELECT array_agg(data ORDER BY data) FROM after_fresh) AS fresh_same;

-- the SQL functions read the rows the same way
SELECT shape_id - :a AS shape, where_clause, columns FROM shape_router.shapes ORDER BY shape_id;
SELECT line FROM shape_router.explain_shape(:a) AS line LIMIT 4;
SELECT array_agg(s - :a ORDER BY s) AS matches
  FROM shape_router.matching_shapes(ROW(1, 1, 12, 'ab')::up) AS s WHERE s <> :e;
SELECT shape_router.evaluate_shape(:c, ROW(1, 0, 6, 'x')::up) AS c_on_6, shape_router.evaluate_shape(:c, ROW(1, 6, 0, 'x')::up) AS c_on_0;
SELECT shape_router.explain_shape(:e);
-- f's cover reads an expression, whose index_expressions row of this major only
-- upgrade_shapes() writes: until then a scan shape
SELECT line FROM shape_router.explain_shape(:f) AS line WHERE line LIKE 'routing:%';

RESET search_path;
-- upgrade_shapes() rewrites the rows as this major makes them; e must be dropped first
SELECT shape_router.upgrade_shapes();
SELECT shape_router.drop_shape(:e);
SELECT shape_router.upgrade_shapes() AS rewritten;
SELECT bool_and(server_major = current_setting('server_version_num')::int / 10000) AS all_this_major,
       string_agg(coalesce(where_source || ' ' || where_names::text, '-'), '; ' ORDER BY shape_id) AS texts
  FROM shape_router.shape_catalog;
SELECT shape_router.upgrade_shapes() AS nothing_left;
SELECT count(*) AS reanalysed_lines FROM shape_router.explain_shape(:a) AS line WHERE line LIKE 'registered under%';
SELECT line FROM shape_router.explain_shape(:f) AS line WHERE line LIKE 'routing:%';
SELECT up_writes();
SELECT (SELECT array_agg(data ORDER BY data) FROM before WHERE (data::json->>'shape')::bigint <> :e) =
       (SELECT array_agg(data ORDER BY data)
          FROM pg_logical_slot_get_changes('up_live', NULL, NULL, 'include-transaction', 'false')) AS upgraded_same;
SELECT 'stop' FROM pg_drop_replication_slot('up_live');
SELECT 'stop' FROM pg_drop_replication_slot('up_fresh');
-- only a superuser (or a role granted EXECUTE) may rewrite the catalog
CREATE ROLE up_user;
SET ROLE up_user;
SELECT shape_router.upgrade_shapes();
RESET ROLE;
DROP ROLE up_user;
DROP FUNCTION up_writes();
DROP SCHEMA up_shadow CASCADE;
DROP TABLE up;
