-- A predicate that fails on a row gets that shape an error record; other shapes and the stream go on.
SET synchronous_commit = on;
SELECT setval('shape_router.shape_id_seq', 3000) IS NOT NULL AS ids_from_3001;
CREATE TABLE er (id int PRIMARY KEY, a int, b int, t text);
ALTER TABLE er REPLICA IDENTITY FULL;
SELECT 'init' FROM pg_create_logical_replication_slot('errors', 'shape_router');
SELECT shape_router.register_shape('er', '10 / b > 1') AS s_div \gset
SELECT shape_router.register_shape('er', 'a > 0') AS s_ok \gset
SELECT shape_router.register_shape('er', 'b::int2 > 0') AS s_cast \gset
CREATE TEMP TABLE names (id bigint, name text);
INSERT INTO names VALUES (:s_div, 's_div'), (:s_ok, 's_ok'), (:s_cast, 's_cast');
INSERT INTO er VALUES (1, 1, 0, '5');       -- s_div: division by zero
INSERT INTO er VALUES (2, 1, 100000, 'abc');  -- s_cast: smallint out of range
UPDATE er SET b = 0 WHERE id = 2;           -- s_div errors on the new row, s_cast on the old
UPDATE er SET b = 1 WHERE id = 1;           -- s_div errors on the old row
INSERT INTO er VALUES (3, 1, 1, '1');       -- all fine again
SELECT coalesce(names.name, '-') AS shape, d.data::json->>'op' AS op, d.data::json->>'message' AS message,
       d.data::json->'new'->>'id' AS new_id
  FROM pg_logical_slot_get_changes('errors', NULL, NULL) WITH ORDINALITY d
  LEFT JOIN names ON names.id = (d.data::json->>'shape')::bigint ORDER BY d.ordinality;
SELECT errors, records_emitted FROM shape_router.decoding_stats();
-- matching_shapes runs the same predicates and warns on errors
SELECT names.name FROM er, shape_router.matching_shapes(er) m JOIN names ON names.id = m WHERE er.id = 1;
INSERT INTO er VALUES (4, 1, 0, 'x');
SELECT names.name FROM er, shape_router.matching_shapes(er) m JOIN names ON names.id = m WHERE er.id = 4;
SELECT 'stop' FROM pg_drop_replication_slot('errors');
DROP TABLE er;
