-- UPDATE moves rows into and out of shapes; NULL counts as false (three-valued logic).
SET synchronous_commit = on;
CREATE TABLE mv (id int PRIMARY KEY, a int, b text);
ALTER TABLE mv REPLICA IDENTITY FULL;
SELECT 'init' FROM pg_create_logical_replication_slot('move', 'shape_router');
SELECT shape_router.register_shape('mv', 'a > 10') AS s_gt \gset
SELECT shape_router.register_shape('mv', 'NOT (a > 10)') AS s_not \gset
SELECT shape_router.register_shape('mv', 'a IS NULL OR b = ''x''') AS s_null \gset
SELECT shape_router.register_shape('mv', 'b <> ''x''') AS s_ne \gset

INSERT INTO mv VALUES (1, NULL, NULL);   -- only "a IS NULL": NULL > 10 and NOT (NULL > 10) are both NULL
UPDATE mv SET a = 20;                    -- move in to gt; move out of null-shape
UPDATE mv SET a = 5;                     -- gt: out; not: in
UPDATE mv SET a = NULL;                  -- not: out (NOT NULL is NULL); null-shape: in
UPDATE mv SET b = 'x';                   -- null-shape stays (update); ne: x <> x false
UPDATE mv SET b = 'y', a = 1;            -- null-shape out; ne: in; not: in
UPDATE mv SET b = NULL;                  -- ne: out (NULL <> 'x' is NULL)
DELETE FROM mv;                          -- only shapes matching the old row: not
SELECT
       CASE (data::json->>'shape')::bigint
         WHEN :s_gt THEN 'a > 10' WHEN :s_not THEN 'NOT (a > 10)'
         WHEN :s_null THEN 'a IS NULL OR b = x' WHEN :s_ne THEN 'b <> x' END AS shape,
       data::json->>'op' AS op, data::json->>'move' AS move,
       data::json->'new' AS new, data::json->'old' AS old
  FROM pg_logical_slot_get_changes('move', NULL, NULL, 'include-transaction', 'off')
  WITH ORDINALITY ORDER BY ordinality;
SELECT 'stop' FROM pg_drop_replication_slot('move');
DROP TABLE mv;
