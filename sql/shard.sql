-- The shard option: n slots with shard=i/n together emit exactly the unsharded stream,
-- each loads only its own shapes, and shapes registered or dropped mid-stream land in
-- one shard only.
SET synchronous_commit = on;
-- fixed ids: which shard a shape lands in depends on its id
SELECT setval('shape_router.shape_id_seq', 800000) IS NOT NULL AS ids_from_800001;
CREATE TABLE sh (id int PRIMARY KEY, k int, v int, t text);
ALTER TABLE sh REPLICA IDENTITY FULL;
CREATE TABLE sh_side (id int PRIMARY KEY, k int);
ALTER TABLE sh_side REPLICA IDENTITY FULL;
-- shapes of every common form, before the slots exist: loaded at the start
SELECT count(*) AS registered FROM shape_router.register_shapes('sh', ARRAY(
  SELECT CASE i % 6 WHEN 0 THEN format('k = %s', i % 7)
                    WHEN 1 THEN format('k IN (%s, %s)', i % 7, (i + 3) % 7)
                    WHEN 2 THEN format('v > %s', i * 3)
                    WHEN 3 THEN format('k = %s OR v < %s', i % 5, i)
                    WHEN 4 THEN format('k = %s AND v BETWEEN %s AND %s', i % 7, i, i + 40)
                    ELSE 't LIKE ''%%x%%''' END
    FROM generate_series(1, 36) AS i));
SELECT shape_router.register_shape('sh') IS NOT NULL AS every_row;
SELECT count(*) AS side_shapes FROM shape_router.register_shapes('sh_side', ARRAY['k = 1', 'k = 2', 'k > 0', NULL]);
SELECT 'init' FROM pg_create_logical_replication_slot('shard_all', 'shape_router');
SELECT 'init' FROM pg_create_logical_replication_slot('shard_0', 'shape_router');
SELECT 'init' FROM pg_create_logical_replication_slot('shard_1', 'shape_router');
SELECT 'init' FROM pg_create_logical_replication_slot('shard_2', 'shape_router');

INSERT INTO sh SELECT i, i % 7, i * 2, CASE WHEN i % 4 = 0 THEN 'xx' ELSE 'y' END FROM generate_series(1, 60) AS i;
INSERT INTO sh_side SELECT i, i % 3 FROM generate_series(1, 9) AS i;
-- registered mid-stream, with writes in the same transaction
BEGIN;
SELECT count(*) AS registered_midstream FROM shape_router.register_shapes('sh', ARRAY(
  SELECT format('k = %s OR v >= %s', i % 7, 100 + i) FROM generate_series(1, 12) AS i));
UPDATE sh SET k = (k + 1) % 7, v = v + 5 WHERE id % 3 = 0;
COMMIT;
-- a rolled back registration never existed
BEGIN;
SELECT count(*) > 0 AS rolled_back FROM shape_router.register_shapes('sh', ARRAY['k = 1', 'k = 2']);
UPDATE sh SET v = v + 1 WHERE id < 10;
ROLLBACK;
-- dropped mid-stream: a drop record goes to the dropping shape's shard only
SELECT count(*) FILTER (WHERE shape_router.drop_shape(shape_id)) AS dropped
  FROM (SELECT shape_id FROM shape_router.shapes WHERE relation = 'sh'::regclass ORDER BY shape_id LIMIT 9) s;
UPDATE sh SET t = 'x' || t, v = v - 3 WHERE id % 5 = 0;
DELETE FROM sh WHERE id % 11 = 0;
TRUNCATE sh_side;
INSERT INTO sh_side VALUES (100, 1);
DROP TABLE sh_side;   -- drops its shapes: one drop record each, in its shard

CREATE TEMP TABLE stream (shard int, n bigint, j jsonb);
INSERT INTO stream SELECT -1, ordinality, data::jsonb
  FROM pg_logical_slot_get_changes('shard_all', NULL, NULL, 'include-lsn', 'true', 'include-transaction', 'false')
  WITH ORDINALITY;
CREATE TEMP TABLE loaded (shard int, shapes bigint);
INSERT INTO loaded SELECT -1, shapes_loaded FROM shape_router.decoding_stats();
INSERT INTO stream SELECT 0, ordinality, data::jsonb
  FROM pg_logical_slot_get_changes('shard_0', NULL, NULL, 'shard', '0/3', 'include-lsn', 'true',
                                   'include-transaction', 'false') WITH ORDINALITY;
INSERT INTO loaded SELECT 0, shapes_loaded FROM shape_router.decoding_stats();
INSERT INTO stream SELECT 1, ordinality, data::jsonb
  FROM pg_logical_slot_get_changes('shard_1', NULL, NULL, 'shard', ' 1 / 3 ', 'include-lsn', 'true',
                                   'include-transaction', 'false') WITH ORDINALITY;
INSERT INTO loaded SELECT 1, shapes_loaded FROM shape_router.decoding_stats();
INSERT INTO stream SELECT 2, ordinality, data::jsonb
  FROM pg_logical_slot_get_changes('shard_2', NULL, NULL, 'shard', '2/3', 'include-lsn', 'true',
                                   'include-transaction', 'false') WITH ORDINALITY;
INSERT INTO loaded SELECT 2, shapes_loaded FROM shape_router.decoding_stats();

-- every shard has work, only its own shapes' records, and the union is the whole stream
SELECT shard, count(*) > 20 AS has_records,
       bool_and(shape_router.shard_of((j->>'shape')::bigint, 3) = shard) AS only_own_shapes,
       count(*) FILTER (WHERE j->>'op' = 'drop') > 0 AS has_drops,
       count(DISTINCT j->>'op') AS ops
  FROM stream WHERE shard >= 0 GROUP BY shard ORDER BY shard;
SELECT (SELECT count(*) FROM stream WHERE shard = -1) AS unsharded,
       (SELECT count(*) FROM stream WHERE shard >= 0) AS union_of_shards,
       (SELECT array_agg(j ORDER BY n) FROM stream WHERE shard = -1) =
       (SELECT array_agg(j ORDER BY (j->>'lsn')::pg_lsn, (j->>'shape')::bigint) FROM stream WHERE shard >= 0)
         AS record_for_record,
       (SELECT count(DISTINCT j->>'shape') FROM stream WHERE shard = -1) AS shapes_seen;
-- each slot loaded only its shard's shapes (the ones live at its start)
SELECT (SELECT shapes FROM loaded WHERE shard = -1) AS unsharded_loaded,
       (SELECT sum(shapes) FROM loaded WHERE shard >= 0) AS sum_of_shards,
       (SELECT bool_and(shapes > 0 AND shapes < (SELECT shapes FROM loaded WHERE shard = -1))
          FROM loaded WHERE shard >= 0) AS each_a_part;

-- combined with shapes: the intersection
INSERT INTO sh SELECT 1000 + i, i, 1, 'xz' FROM generate_series(0, 6) AS i;
SELECT count(*) AS ids_in_shard_1 FROM shape_router.shapes
 WHERE relation = 'sh'::regclass AND shape_router.shard_of(shape_id, 3) = 1;
CREATE TEMP TABLE expected_ids AS
  SELECT shape_id FROM shape_router.shapes s
   WHERE shape_router.shard_of(shape_id, 3) = 1 AND shape_id % 2 = 0
     AND shape_id IN (SELECT shape_router.matching_shapes(sh) FROM sh WHERE id >= 1000);
SELECT (SELECT count(*) FROM expected_ids) > 1 AS several,
       (SELECT array_agg(DISTINCT (data::jsonb->>'shape')::bigint ORDER BY (data::jsonb->>'shape')::bigint)
          FROM pg_logical_slot_peek_changes('shard_all', NULL, NULL, 'include-transaction', 'false',
               'shard', '1/3', 'shapes', (SELECT string_agg(shape_id::text, ',') FROM shape_router.shapes
                                           WHERE shape_id % 2 = 0))) =
       (SELECT array_agg(shape_id ORDER BY shape_id) FROM expected_ids) AS intersection;
SELECT count(*) AS outside_the_list
  FROM pg_logical_slot_peek_changes('shard_all', NULL, NULL, 'shard', '1/3',
       'shapes', (SELECT string_agg(shape_id::text, ',') FROM shape_router.shapes
                   WHERE shape_router.shard_of(shape_id, 3) <> 1));
-- shard 0/1 is every shape
SELECT count(*) AS one_shard FROM pg_logical_slot_peek_changes('shard_all', NULL, NULL, 'shard', '0/1',
                                                               'include-transaction', 'false');

-- bad values
SELECT count(*) FROM pg_logical_slot_peek_changes('shard_all', NULL, NULL, 'shard', '3/3');
SELECT count(*) FROM pg_logical_slot_peek_changes('shard_all', NULL, NULL, 'shard', '1/0');
SELECT count(*) FROM pg_logical_slot_peek_changes('shard_all', NULL, NULL, 'shard', 'one/3');
SELECT count(*) FROM pg_logical_slot_peek_changes('shard_all', NULL, NULL, 'shard', '1/65537');
SELECT count(*) FROM pg_logical_slot_peek_changes('shard_all', NULL, NULL, 'shard', '0/2', 'shard', '1/2');
SELECT shape_router.shard_of(1, 0);
SELECT shape_router.shard_of(1, 65536) AS pinned_65536, shape_router.shard_of(1, 3) AS pinned_3;

SELECT 'stop' FROM pg_drop_replication_slot('shard_all');
SELECT 'stop' FROM pg_drop_replication_slot('shard_0');
SELECT 'stop' FROM pg_drop_replication_slot('shard_1');
SELECT 'stop' FROM pg_drop_replication_slot('shard_2');
DROP TABLE sh;
