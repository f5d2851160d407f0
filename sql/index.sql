-- The routing index on the hot path: every funnel stage's counter moves.
SET synchronous_commit = on;
CREATE TABLE ix (id int PRIMARY KEY, k int, tag text);
ALTER TABLE ix REPLICA IDENTITY FULL;
-- 2000 indexed shapes (k = 1 .. 2000); one keyed on tag (an equality conjunct is
-- preferred to an IN list: one key instead of two); one scan shape (a regex: no cover)
SELECT count(*) FROM shape_router.register_shapes('ix', (SELECT array_agg('k = ' || g) FROM generate_series(1, 2000) g));
SELECT shape_router.register_shape('ix', 'k IN (5000, 5001) AND tag = ''x''') IS NOT NULL AS registered;
SELECT shape_router.register_shape('ix', 'tag ~* ''^scan''') IS NOT NULL AS registered;
SELECT 'init' FROM pg_create_logical_replication_slot('ix', 'shape_router');

-- 1. changes no indexed shape wants: 4000 rows with k and tag outside every key.
--    No shape is keyed on their k: the value sieve answers each (no key made).
--    Their tags' keys go to the filter, which rejects almost all; the few it lets
--    through (8-bit fingerprints: about 1 in 256) are caught by the slot
--    fingerprint (another 8 bits), so almost no indexed shape is a candidate. A
--    slot hit on "k = N" (exact: its key is the value) is decided by the index
--    without its program; program runs are the scan shape's, and any slot hit's
--    on the inexact shape.
--    (Which keys collide depends on the table's OID, hashed into every key.)
INSERT INTO ix SELECT g, 100000 + g, 'none ' || g FROM generate_series(1, 4000) g;
SELECT count(*) AS records FROM pg_logical_slot_get_changes('ix', NULL, NULL, 'include-transaction', '0');
SELECT changes_seen, relation_gate_passes, sieved_values > 3800 AS most_k_values_sieved, equality_probes,
       filter_passes BETWEEN 1 AND 60 AS few_filter_passes,
       filter_passes > mphf_hits AS fingerprint_caught_false_positives,
       mphf_hits <= 2 AS at_most_2_slot_hits, gate_evaluations + exact_hits = 4000 + mphf_hits AS programs_scan_and_slot_hits,
       records_emitted,
       index_keys, index_bytes / index_keys <= 8 AS at_most_8_bytes_per_key, index_rebuilds
  FROM shape_router.decoding_stats();

-- 2. changes that match: each reaches exactly its shape (plus the scan shape); "k = N"
--    is decided by its key (exact_hits), the IN-and-tag shape by its program;
--    rows are probed on both indexed columns (k and tag), NULLs give no key
DELETE FROM ix;
SELECT count(*) FROM pg_logical_slot_get_changes('ix', NULL, NULL);
INSERT INTO ix VALUES (1, 7, NULL), (2, 1999, 'scan me'), (3, 5001, 'x'), (4, 5001, 'y');
SELECT data::json->'new'->>'id' AS id, data::json->>'op' AS op
  FROM pg_logical_slot_get_changes('ix', NULL, NULL, 'include-transaction', '0');
-- (the filter's false positives depend on the table's OID, which earlier tests move)
SELECT changes_seen, filter_passes >= mphf_hits AS filter_passed_slot_hits, mphf_hits AS slot_hits,
       gate_evaluations AS program_runs, exact_hits, records_emitted
  FROM shape_router.decoding_stats();

-- 3. an UPDATE that moves a row between keys reaches both shapes: move out of k = 7, into k = 8
UPDATE ix SET k = 8 WHERE id = 1;
SELECT data::json->>'op' AS op, data::json->>'move' AS move, data::json->'new'->>'k' AS new_k, data::json->'old'->>'k' AS old_k
  FROM pg_logical_slot_get_changes('ix', NULL, NULL, 'include-transaction', '0');

-- 4. registrations and drops while decoding go to the overlay and tombstones: exact at once
SELECT shape_router.register_shape('ix', 'k = 424242') AS late \gset
SELECT shape_router.drop_shape(s.shape_id) FROM shape_router.shapes s
 WHERE s.relation = 'ix'::regclass AND s.where_clause = '(k = 8)';
INSERT INTO ix VALUES (5, 424242, NULL), (6, 8, NULL);
SELECT data::json->'new'->>'id' AS id FROM pg_logical_slot_get_changes('ix', NULL, NULL, 'include-transaction', '0');
SELECT index_overlay_keys FROM shape_router.decoding_stats();

-- 5. explain names the key
SELECT line FROM shape_router.explain_shape(:late) AS line WHERE (line LIKE 'routing:%' OR line LIKE '  alternative%');
SELECT 'stop' FROM pg_drop_replication_slot('ix');
DROP TABLE ix;
