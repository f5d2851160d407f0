#!/usr/bin/env bash
# A routing-index rebuild in the background while decoding goes on:
#  (a) the slot starts with 300,000 shapes `user_id = k` (loaded and built at start);
#  (b) one decoded transaction registers 150,000 more: the overlay passes a quarter
#      of the index, so that commit starts a 450,000-key rebuild on the builder thread;
#  (c) while it runs, a small transaction registers 1,000 more and drops every 997th
#      shape (of the static part and of the overlay), and a big one every 23rd; then
#      200,000 rows are inserted and 50,000 deleted in 250 transactions;
#  (d) the routed records are exactly those PostgreSQL computes: each row joined to the
#      shapes whose stored WHERE deparses to `(user_id = <its user_id>)`;
#  (e) decoding_stats shows the background build started and a later commit installed
#      it; the longest pause index maintenance caused on the decoding thread is printed.
# Runs as the postgres user against a throwaway cluster; prints "N passed, N failed".
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cleanup() {
  "$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

init_cluster rebuild "${REBUILD_TEST_PORT:-54332}" "shape_router" "fsync = off"
"$bindir/pg_ctl" -D "$work/data" -l "$work/server.log" -w start >/dev/null

psql -o /dev/null <<'SQL'
CREATE EXTENSION shape_router;
CREATE TABLE t (id bigint PRIMARY KEY, user_id int NOT NULL, v int);
ALTER TABLE t REPLICA IDENTITY FULL;
SELECT count(*) FROM shape_router.register_shapes('t',
  (SELECT array_agg(format('user_id = %s', g)) FROM generate_series(1, 300000) g));
SELECT 'init' FROM pg_create_logical_replication_slot('rebuild', 'shape_router');
-- (b) the rebuild's trigger
SELECT count(*) FROM shape_router.register_shapes('t',
  (SELECT array_agg(format('user_id = %s', g)) FROM generate_series(300001, 450000) g));
-- (c) while the build runs: a small transaction (decoded long before the build ends)
-- registers 1,000 shapes and drops shapes of the static part and of the overlay; then
-- a big one drops every 23rd shape
CREATE TABLE dropped (n bigint);
BEGIN;
SELECT count(*) FROM shape_router.register_shapes('t',
  (SELECT array_agg(format('user_id = %s', g)) FROM generate_series(450001, 451000) g));
INSERT INTO dropped SELECT count(*) FILTER (WHERE shape_router.drop_shape(shape_id))
  FROM shape_router.shapes WHERE shape_id % 997 = 0;
COMMIT;
INSERT INTO dropped SELECT count(*) FILTER (WHERE shape_router.drop_shape(shape_id))
  FROM shape_router.shapes WHERE shape_id % 23 = 0;
SQL
# Rows in separate transactions, so that the build's install has commits to come at.
for batch in $(seq 0 199); do
  echo "INSERT INTO t SELECT g, 1 + (hashint8(g) & 2147483647) % 500000, g FROM generate_series($((batch * 1000 + 1)), $((batch * 1000 + 1000))) g;"
done | psql -o /dev/null
for batch in $(seq 0 49); do
  echo "DELETE FROM t WHERE id BETWEEN $((batch * 4000 + 1)) AND $((batch * 4000 + 1000));"
done | psql -o /dev/null

started=$(date +%s.%N)
psql -o /dev/null <<'SQL'
CREATE TABLE records AS
SELECT (l->>'shape')::bigint AS shape, l->>'op' AS op, (coalesce(l->'new', l->'old')->>'id')::bigint AS id
  FROM (SELECT data::json AS l
          FROM pg_logical_slot_get_changes('rebuild', NULL, NULL, 'include-transaction', '0')) x;
CREATE TABLE stats AS SELECT * FROM shape_router.decoding_stats();
SQL
note "decoded in $(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"

# The oracle: PostgreSQL's deparse of each stored WHERE, joined to the rows. Inserted
# rows are generated again from their ids; deleted rows are the inserted ones in the bands.
psql -o /dev/null <<'SQL'
CREATE TABLE expected AS
WITH rows AS (SELECT g AS id, 1 + (hashint8(g) & 2147483647) % 500000 AS user_id FROM generate_series(1, 200000) g)
SELECT s.shape_id AS shape, 'insert' AS op, r.id FROM rows r
  JOIN shape_router.shapes s ON s.where_clause = format('(user_id = %s)', r.user_id)
UNION ALL
SELECT s.shape_id, 'delete', r.id FROM rows r
  JOIN shape_router.shapes s ON s.where_clause = format('(user_id = %s)', r.user_id)
 WHERE (r.id - 1) % 4000 < 1000;
SQL
note "$(psql -At -c "SELECT format('%s records, %s expected, %s shapes', (SELECT count(*) FROM records), (SELECT count(*) FROM expected), (SELECT count(*) FROM shape_router.shapes))")"
check "shapes at the end: 300,000 + 150,000 + 1,000 - the dropped" \
  test "$(psql -At -c "SELECT count(*) = 451000 - (SELECT sum(n) FROM dropped) FROM shape_router.shapes")" = t
check "one drop record per dropped shape" \
  test "$(psql -At -c "SELECT count(*) FILTER (WHERE op = 'drop') = (SELECT sum(n) FROM dropped) AND count(DISTINCT shape) FILTER (WHERE op = 'drop') = (SELECT sum(n) FROM dropped) FROM records")" = t
psql -c "DELETE FROM records WHERE op = 'drop'"
check "every expected record was routed" \
  test "$(psql -At -c "SELECT count(*) FROM (SELECT * FROM expected EXCEPT ALL SELECT * FROM records) x")" = 0
check "no record was routed that PostgreSQL does not expect" \
  test "$(psql -At -c "SELECT count(*) FROM (SELECT * FROM records EXCEPT ALL SELECT * FROM expected) x")" = 0
check "a good share of the rows matched (the comparison is not vacuous)" \
  test "$(psql -At -c "SELECT count(*) > 150000 FROM expected")" = t
note "$(psql -At -c "SELECT format('decoding_stats: catalog_changes %s, index_keys %s, overlay_keys %s, rebuilds %s, background builds %s, longest pause %s us, filter_passes %s, mphf_hits %s, gate_evaluations %s', catalog_changes, index_keys, index_overlay_keys, index_rebuilds, index_background_builds, index_longest_pause_us, filter_passes, mphf_hits, gate_evaluations) FROM stats")"
check "the commit registering 150,000 shapes started a background build" \
  test "$(psql -At -c "SELECT index_background_builds >= 1 FROM stats")" = t
check "a later commit installed it (the build at start plus at least one)" \
  test "$(psql -At -c "SELECT index_rebuilds >= 2 FROM stats")" = t
check "the installed index holds the registered shapes' keys" \
  test "$(psql -At -c "SELECT index_keys >= 430000 FROM stats")" = t

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
