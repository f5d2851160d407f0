-- Registration, the shapes listing, bulk registration, drop, and the rules on tables.
SET synchronous_commit = on;
SELECT setval('shape_router.shape_id_seq', 1000) IS NOT NULL AS ids_from_1001;
CREATE TABLE reg_todos (id bigserial PRIMARY KEY, user_id int NOT NULL, status text, title text);
ALTER TABLE reg_todos REPLICA IDENTITY FULL;

SELECT shape_router.register_shape('reg_todos', 'user_id = 5') AS s1 \gset
SELECT shape_router.register_shape('reg_todos', 'user_id = 5 AND status = ''open''', ARRAY['title', 'status']) AS s2 \gset
SELECT shape_router.register_shape('reg_todos') AS s3 \gset
SELECT count(*) FROM shape_router.register_shapes('reg_todos', ARRAY['user_id = 1', NULL, 'status IS NULL']);
SELECT shape_id - :s1 AS rel_id, relation, where_clause, columns, role, created_at <= now() AS created_in_past
  FROM shape_router.shapes ORDER BY shape_id;

-- ids come back in input order
SELECT array_agg(id ORDER BY ord) = array_agg(id ORDER BY id) AS ids_in_order
  FROM shape_router.register_shapes('reg_todos', ARRAY['user_id = 10', 'user_id = 11', 'user_id = 12'])
       WITH ORDINALITY AS r(id, ord);

-- an empty bulk call registers nothing
SELECT count(*) FROM shape_router.register_shapes('reg_todos', ARRAY[]::text[]);

-- the listing follows column renames (the tree stores attnums)
ALTER TABLE reg_todos RENAME COLUMN status TO state;
SELECT where_clause, columns FROM shape_router.shapes WHERE shape_id = :s2;
ALTER TABLE reg_todos RENAME COLUMN state TO status;

-- drop
SELECT shape_router.drop_shape(:s3);
SELECT shape_router.drop_shape(:s3);
SELECT shape_router.drop_shape(-1);
SELECT count(*) FROM shape_router.shapes WHERE shape_id = :s3;

-- a failing element rolls back the whole bulk call
SELECT count(*) AS before FROM shape_router.shapes \gset
SELECT * FROM shape_router.register_shapes('reg_todos', ARRAY['user_id = 20', 'nope = 1']);
SELECT count(*) - :before AS added FROM shape_router.shapes;

-- relations a shape cannot be registered on
CREATE VIEW reg_view AS SELECT * FROM reg_todos;
SELECT shape_router.register_shape('reg_view', 'user_id = 1');
CREATE TEMP TABLE reg_temp (id int PRIMARY KEY);
SELECT shape_router.register_shape('reg_temp');
CREATE UNLOGGED TABLE reg_unlogged (id int PRIMARY KEY);
SELECT shape_router.register_shape('reg_unlogged');
CREATE SEQUENCE reg_sequence;
SELECT shape_router.register_shape('reg_sequence');
SELECT shape_router.register_shape('pg_class');
SELECT shape_router.register_shape('shape_router.shape_catalog');
SELECT shape_router.register_shape(NULL, 'true');
SELECT shape_router.register_shape('no_such_table', 'true');
SELECT * FROM shape_router.register_shapes('reg_todos', NULL);

-- column lists
SELECT shape_router.register_shape('reg_todos', NULL, ARRAY['nope']);
SELECT shape_router.register_shape('reg_todos', NULL, ARRAY['title', 'title']);
SELECT shape_router.register_shape('reg_todos', NULL, ARRAY['ctid']);
SELECT shape_router.register_shape('reg_todos', NULL, ARRAY[NULL]::text[]);
SELECT shape_router.register_shape('reg_todos', NULL, ARRAY[['a'],['b']]);

-- replica identity: a WHERE on non-key columns needs REPLICA IDENTITY FULL
CREATE TABLE reg_default_ri (id int PRIMARY KEY, user_id int, note text);
SELECT shape_router.register_shape('reg_default_ri', 'user_id = 1');
SELECT shape_router.register_shape('reg_default_ri', 'id = 1') > 0 AS key_only_ok;
SELECT shape_router.register_shape('reg_default_ri', NULL, ARRAY['note']) > 0 AS projection_ok;
CREATE TABLE reg_no_key (a int, b int);
SELECT shape_router.register_shape('reg_no_key', 'a = 1');
CREATE TABLE reg_index_ri (a int NOT NULL, b int);
CREATE UNIQUE INDEX reg_index_ri_a ON reg_index_ri (a);
ALTER TABLE reg_index_ri REPLICA IDENTITY USING INDEX reg_index_ri_a;
SELECT shape_router.register_shape('reg_index_ri', 'a > 1') > 0 AS index_ri_ok;
SELECT shape_router.register_shape('reg_index_ri', 'b > 1');

-- the catalog is written only through the functions
CREATE ROLE reg_user;
SET ROLE reg_user;
INSERT INTO shape_router.shape_catalog VALUES (999, 1, '{}', NULL, now(), 1);
DELETE FROM shape_router.shape_catalog;
SELECT nextval('shape_router.shape_id_seq');
SELECT count(*) > 0 AS can_read_listing FROM shape_router.shapes;
-- SELECT privilege on the columns a shape reads or projects
SELECT shape_router.register_shape('reg_todos', 'user_id = 1');
RESET ROLE;
GRANT SELECT (id, user_id) ON reg_todos TO reg_user;
SET ROLE reg_user;
SELECT shape_router.register_shape('reg_todos', 'user_id = 1', ARRAY['user_id']) AS user_shape \gset
SELECT shape_router.register_shape('reg_todos', 'user_id = 1');
SELECT shape_router.register_shape('reg_todos', 'user_id = 1', ARRAY['title']);
SELECT shape_router.register_shape('reg_todos', 'status = ''x''', ARRAY['user_id']);
SELECT role FROM shape_router.shapes WHERE shape_id = :user_shape;
-- only the registering role (or the table owner) may drop a shape
SELECT shape_router.drop_shape(:s1);
SELECT shape_router.drop_shape(:user_shape);
RESET ROLE;

-- One call of many WHEREs on different columns: they share the table's range
-- table entry, and each is analysed, and its columns noted, as if alone.
BEGIN;
CREATE TEMP TABLE reg_bulk_ids AS
  SELECT r.id, r.ord
    FROM shape_router.register_shapes('reg_todos', (SELECT array_agg(CASE g % 5
             WHEN 0 THEN format('user_id = %s', g)
             WHEN 1 THEN format('status = %L OR user_id > %s', 's' || g, g)
             WHEN 2 THEN format('title IN (%L, %L) AND status <> %L', 't' || g, 'u' || g, 'v' || g)
             WHEN 3 THEN format('user_id IN (%s, %s, %s)', g, g + 1, g + 2)
             ELSE format('status = ''open'' AND user_id BETWEEN %s AND %s', g, g + 9) END ORDER BY g)
           FROM generate_series(1, 10000) g)) WITH ORDINALITY AS r(id, ord);
CREATE TEMP TABLE reg_bulk AS
  SELECT r.ord, c.where_columns, s.where_clause
    FROM reg_bulk_ids r
    JOIN shape_router.shape_catalog c ON c.shape_id = r.id
    JOIN shape_router.shapes s ON s.shape_id = r.id;
SELECT count(*) AS registered, count(DISTINCT where_clause) AS distinct_clauses FROM reg_bulk;
SELECT where_columns, count(*) FROM reg_bulk GROUP BY 1 ORDER BY 1;
SELECT ord, where_columns, where_clause FROM reg_bulk WHERE ord IN (1, 2, 3, 4, 5, 9996, 9997, 9998, 9999, 10000) ORDER BY ord;
-- qualified and whole-row references; then a call whose error is caught, and another call
CREATE TEMP TABLE reg_bulk2 AS
  SELECT r.id, r.ord FROM shape_router.register_shapes('reg_todos', ARRAY[
    'reg_todos.status = ''a''', 'ROW(reg_todos.*) IS NOT NULL AND user_id = 1', '(reg_todos).title = ''b''']) WITH ORDINALITY AS r(id, ord);
DO $$
BEGIN
  PERFORM shape_router.register_shapes('reg_todos', ARRAY['user_id = 1', 'nope = 2', 'title = ''c''']);
EXCEPTION WHEN undefined_column THEN
  RAISE NOTICE 'caught: %', SQLERRM;
END $$;
INSERT INTO reg_bulk2
  SELECT r.id, r.ord + 3 FROM shape_router.register_shapes('reg_todos', ARRAY['title = ''d''', 'user_id = 2 OR status = ''e''']) WITH ORDINALITY AS r(id, ord);
SELECT r.ord, c.where_columns, s.where_clause
  FROM reg_bulk2 r
  JOIN shape_router.shape_catalog c ON c.shape_id = r.id
  JOIN shape_router.shapes s ON s.shape_id = r.id
 ORDER BY r.ord;
ROLLBACK;

DROP VIEW reg_view;
DROP SEQUENCE reg_sequence;
DROP TABLE reg_todos, reg_temp, reg_unlogged, reg_default_ri, reg_no_key, reg_index_ri;
SELECT count(*) AS shapes_left FROM shape_router.shapes;
DROP ROLE reg_user;
