-- Integer division and remainder by a positive constant in indexed expressions
-- are computed natively by a reciprocal (no division instruction). Routed as
-- PostgreSQL evaluates each WHERE on the same rows: negative values, zero, the
-- extremes of each width, NULLs, divisors 1 and the largest, negative divisors
-- (a division), nested remainders, expressions with one NULL operand.
SET synchronous_commit = on;
CREATE TABLE nd (id int PRIMARY KEY, a int8, b int4, c int2);
ALTER TABLE nd REPLICA IDENTITY FULL;
CREATE TABLE nd_rows (LIKE nd);
INSERT INTO nd_rows VALUES
  (1, 17, 17, 17), (2, -17, -17, -17), (3, 0, 0, 0), (4, 9223372036854775807, 2147483647, 32767),
  (5, -9223372036854775808, -2147483648, -32768), (6, NULL, NULL, NULL), (7, 1000002, 1000002, 30),
  (8, -1000004, -1000004, -30), (9, 7, 7, 7), (10, -7, -7, -7), (11, 9223372036854775806, 2147483646, 32766),
  (12, -9223372036854775807, -2147483647, -32767), (13, 3, 3, 3), (14, -3, -3, -3), (15, 13, 14, 15),
  (16, 6917529027641081855, 1073741823, 16383), (17, -6148914691236517206, -715827882, -10922),
  (18, 3, NULL, 3), (19, NULL, 3, 1), (20, 3, 3, NULL), (21, 10, 3, 4);
CREATE TABLE nd_shapes (shape_id bigint, clause text);
INSERT INTO nd_shapes
SELECT shape_router.register_shape('nd', clause), clause
  FROM unnest(ARRAY['a % 7 = 3', 'a % 7 = -3', 'a % 7 = 0', 'a / 7 = -2', 'a / 7 = 1317624576693539401',
                    'a % 1 = 0', 'a / 1 = -9223372036854775808', 'a % 1000003 = 999999', 'a / 1000003 = -1',
                    'a % 9223372036854775807 = -1', 'a / 9223372036854775807 = -1', 'a / 3 = 3074457345618258602',
                    'a / 3 = -2049638230412172402', 'a % 3 = -2', 'a % 6917529027641081856 = 6917529027641081855',
                    'b % 5 IN (-4, 4)', 'b / 5 = -429496729', 'b / 2147483647 = 1', '(b / 2 + 1) % 3 = 2',
                    'b % 65536 = 65535', 'c % 3 = -2', 'c / 7 = 4681', 'c / 7 = -1560', 'a % -7 = 3', 'a / -7 = -2',
                    '(a % 10) % 3 = 1', '-(a % 7) = 3', 'a % 7 > 4', 'b / 3 <= -715827882',
                    -- one operand NULL: the whole expression is
                    '(a % 7 + b % 7) % 7 = 3', '(b % 7 + a % 7) % 7 = 3', '(b % 7 - c % 7) / 2 = 1',
                    '-(a % 7 + c % 7) = -3', '(a % 5) * (b % 5) = 4']) AS clause;
SELECT count(*) AS shapes, count(*) FILTER (WHERE EXISTS (SELECT FROM shape_router.explain_shape(shape_id) l
                                                     WHERE l LIKE 'routing:%' AND l NOT LIKE '%scan%')) AS indexed
  FROM nd_shapes;
SELECT 'init' FROM pg_create_logical_replication_slot('nd', 'shape_router');
INSERT INTO nd SELECT * FROM nd_rows;
DELETE FROM nd WHERE id % 2 = 0;
-- What PostgreSQL says: each shape's WHERE on each inserted and each deleted row.
CREATE TABLE nd_expected (shape_id bigint, id int, op text);
DO $$
DECLARE s record;
BEGIN
  FOR s IN SELECT * FROM nd_shapes LOOP
    EXECUTE format('INSERT INTO nd_expected SELECT %s, id, ''insert'' FROM nd_rows WHERE %s', s.shape_id, s.clause);
    EXECUTE format('INSERT INTO nd_expected SELECT %s, id, ''delete'' FROM nd_rows WHERE id %% 2 = 0 AND %s',
                   s.shape_id, s.clause);
  END LOOP;
END $$;
CREATE TABLE nd_routed AS
SELECT (data::json->>'shape')::bigint AS shape_id,
       coalesce(data::json->'new'->>'id', data::json->'old'->>'id')::int AS id, data::json->>'op' AS op
  FROM pg_logical_slot_get_changes('nd', NULL, NULL, 'include-transaction', 'false');
SELECT (SELECT count(*) FROM nd_expected) AS expected, (SELECT count(*) FROM nd_routed) AS routed;
-- (none missing, none extra)
(SELECT 'missing' AS what, e.*, s.clause FROM (SELECT * FROM nd_expected EXCEPT SELECT * FROM nd_routed) e JOIN nd_shapes s USING (shape_id)
 UNION ALL
 SELECT 'extra', x.*, s.clause FROM (SELECT * FROM nd_routed EXCEPT SELECT * FROM nd_expected) x JOIN nd_shapes s USING (shape_id))
ORDER BY 1, 2, 3, 4;
SELECT native_expressions > 0 AS computed_natively, errors FROM shape_router.decoding_stats();
SELECT 'stop' FROM pg_drop_replication_slot('nd');
DROP TABLE nd, nd_rows, nd_shapes, nd_expected, nd_routed;
