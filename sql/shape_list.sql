-- A slot that lists a few shapes (the shapes option) among many reads only
-- their catalog rows, through the primary key: its stream must be exactly the
-- listed shapes' records of a slot that reads every shape, whichever way a
-- list is read (a short list by key lookups, a long one by the scan).
SET synchronous_commit = on;
CREATE TABLE listed (id int PRIMARY KEY, k int, note text);
ALTER TABLE listed REPLICA IDENTITY FULL;
SELECT count(*) FROM shape_router.register_shapes('listed',
  (SELECT array_agg(format('k = %s', g) ORDER BY g) FROM generate_series(1, 600) g));
CREATE TEMP TABLE ids AS
  SELECT shape_id AS id, row_number() OVER (ORDER BY shape_id) AS g FROM shape_router.shapes
   WHERE relation = 'listed'::regclass;
SELECT 'init' FROM pg_create_logical_replication_slot('listed', 'shape_router');

INSERT INTO listed SELECT g, g, 'n' || g FROM generate_series(1, 600) g;
UPDATE listed SET k = k + 1 WHERE id % 7 = 0;
DELETE FROM listed WHERE id % 11 = 0;
-- a listed shape dropped and one registered in the stream
SELECT shape_router.drop_shape((SELECT id FROM ids WHERE g = 30));
SELECT shape_router.register_shape('listed', 'k = 31 OR k = 32') AS late \gset
UPDATE listed SET note = 'again' WHERE k BETWEEN 28 AND 33;

CREATE TEMP TABLE everything AS
  SELECT ordinality AS n, data FROM pg_logical_slot_peek_changes('listed', NULL, NULL, 'include-transaction', '0')
  WITH ORDINALITY;
-- The records of a list, from the slot that reads it and from the full stream.
CREATE FUNCTION pg_temp.same_as_full(list bigint[]) RETURNS TABLE (records bigint, same boolean) LANGUAGE sql AS $$
  WITH mine AS (
    SELECT ordinality AS n, data FROM pg_logical_slot_peek_changes('listed', NULL, NULL, 'include-transaction', '0',
      'shapes', array_to_string(list, ',')) WITH ORDINALITY)
  SELECT (SELECT count(*) FROM mine),
         (SELECT array_agg(data ORDER BY n) FROM mine) IS NOT DISTINCT FROM
         (SELECT array_agg(data ORDER BY n) FROM everything
           WHERE (data::json->>'shape')::bigint = ANY (list))
$$;
-- short lists: looked up (a listed id may be missing, dropped or registered later)
SELECT * FROM pg_temp.same_as_full(ARRAY(SELECT id FROM ids WHERE g IN (1, 7, 29, 30, 31, 500)));
SELECT * FROM pg_temp.same_as_full(ARRAY(SELECT id FROM ids WHERE g IN (14, 22)) || :late::bigint || 99999999::bigint);
SELECT * FROM pg_temp.same_as_full(ARRAY[99999998, 99999999]::bigint[]);
-- a long list: scanned
SELECT * FROM pg_temp.same_as_full(ARRAY(SELECT id FROM ids WHERE g % 3 = 0));
SELECT count(*) AS all_records FROM everything;
SELECT 'stop' FROM pg_drop_replication_slot('listed');
DROP TABLE listed;
