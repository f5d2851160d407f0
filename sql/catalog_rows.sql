-- Catalog rows as the plugin reads them at a start, written as registration writes them
-- and as a superuser might rewrite them: the column lists in another order, with
-- duplicates or another lower bound, and covers too long for a row's inline room.
SET synchronous_commit = on;
SELECT setval('shape_router.shape_id_seq', 700000) IS NOT NULL AS ids_from_700001;
CREATE TABLE cat_rows (id int PRIMARY KEY, a int, b int, c text);
ALTER TABLE cat_rows REPLICA IDENTITY FULL;
SELECT shape_router.register_shape('cat_rows', 'a = 1 AND c = ''x''', ARRAY['a', 'c']) AS s_ac \gset
SELECT shape_router.register_shape('cat_rows', 'b = 2 AND a > 0') AS s_ba \gset
-- 40 values: more atoms and cover items than a row's inline room
SELECT shape_router.register_shape('cat_rows', 'b IN (' ||
       (SELECT string_agg(v::text, ', ') FROM generate_series(100, 139) v) || ')') AS s_in \gset
SELECT shape_id - :s_ac AS rel_id, where_columns, columns, cardinality(index_cover) AS cover_items
  FROM shape_router.shape_catalog WHERE shape_id >= :s_ac ORDER BY shape_id;
-- What registration wrote, rewritten: descending with a duplicate; a lower bound of 0.
UPDATE shape_router.shape_catalog SET where_columns = '{4,2,4}', columns = '{4,2,2}' WHERE shape_id = :s_ac;
UPDATE shape_router.shape_catalog SET where_columns = '[0:1]={3,2}' WHERE shape_id = :s_ba;
SELECT 'init' FROM pg_create_logical_replication_slot('cat_rows', 'shape_router');
INSERT INTO cat_rows VALUES (1, 1, 0, 'x'), (2, 1, 0, 'y'), (3, 1, 2, 'z'), (4, 0, 2, 'z'),
                            (5, 0, 139, NULL), (6, 0, 140, NULL);
-- rows 1 (s_ac, columns a and c and the key), 3 (s_ba), 5 (s_in)
SELECT (data::json->>'shape')::bigint - :s_ac AS rel_shape, data::json->'new' AS new_row
  FROM pg_logical_slot_get_changes('cat_rows', NULL, NULL, 'include-transaction', '0')
 ORDER BY 1, 2::text;
-- An UPDATE moving a row out of s_ac: a delete record for it.
UPDATE cat_rows SET c = 'y' WHERE id = 1;
SELECT (data::json->>'shape')::bigint - :s_ac AS rel_shape, data::json->>'op' AS op
  FROM pg_logical_slot_get_changes('cat_rows', NULL, NULL, 'include-transaction', '0');
SELECT 'stop' FROM pg_drop_replication_slot('cat_rows');
-- A row that lost the types the ALTER TABLE guard compares: the guard refuses, not skips.
UPDATE shape_router.shape_catalog SET where_types = NULL WHERE shape_id = :s_ba;
ALTER TABLE cat_rows ALTER COLUMN id TYPE bigint;
SELECT shape_router.drop_shape(s) FROM unnest(ARRAY[:s_ac, :s_ba, :s_in]::bigint[]) s;
DROP TABLE cat_rows;
