#!/usr/bin/env bash
# Big transactions through the walsender, with logical_decoding_work_mem = 64kB:
#  (a) a 2,000,000-change transaction of which about 1% matches: the routed records
#      are exactly the ones PostgreSQL computes by evaluating each shape's WHERE on
#      the same rows (shape, op, move and row id of every record);
#  (b) that transaction spilled to disk (pg_stat_replication_slots);
#  (c) the walsender's peak RSS (VmHWM) decoding it is about the one decoding a
#      200,000-change transaction: memory does not grow with the transaction;
#  (d) with wal_sender_timeout = 2s, a 2,000,000-change transaction that no shape
#      wants until its last rows does not get pg_recvlogical disconnected: the plugin
#      updates progress while it skips. The timeout is short because decoding the
#      transaction at commit takes 3 to 6 s here: a longer one would be caught by
#      nothing. If sr_bench (bench/floor, a plugin that never updates progress) is
#      installed, it decodes the same transaction as a control; it is expected to be
#      disconnected, which shows the scenario can catch the bug (reported, not checked).
# Runs as the postgres user against a throwaway cluster; prints "N passed, N failed".
set -euo pipefail
source "$(dirname "$0")/lib.sh"
pkglibdir=$("$pg_config" --pkglibdir)
big=${BIGTXN_CHANGES:-2000000}     # changes in the big transactions
small=$((big / 10))                # the transaction the big one's memory is compared with
timeout_s=${BIGTXN_SENDER_TIMEOUT:-2}
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
start_time=$(date +%s)
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }

control=0
plugins="pgoutput, test_decoding, shape_router"
if [ -f "$pkglibdir/sr_bench.so" ]; then control=1; plugins="$plugins, sr_bench"; fi
init_cluster bigtxn "${BIGTXN_TEST_PORT:-54331}" "$plugins" "fsync = off" "max_wal_size = 8GB" "checkpoint_timeout = 30min"
"$bindir/pg_ctl" -D "$work/data" -l "$work/server.log" -w start >/dev/null
# pg_recvlogical in the background, a child of this shell ($! is its pid, for kill).
recv_bg() { "$bindir/pg_recvlogical" -h "$work" -p "$port" -U postgres -d postgres "$@" & }


# The rows of a run are functions of their id, written once here and used both by
# the transaction and by the oracle (the shapes' own WHERE clauses run by PostgreSQL).
psql -o /dev/null <<'SQL'
CREATE EXTENSION shape_router;
CREATE TABLE big (id bigint PRIMARY KEY, user_id int NOT NULL, v int NOT NULL, pad text);
ALTER TABLE big REPLICA IDENTITY FULL;
SELECT shape_router.register_shape('big', 'user_id = 7');
SELECT shape_router.register_shape('big', 'user_id IN (100, 200, 300)');
SELECT shape_router.register_shape('big', 'v BETWEEN 1000 AND 1099');
SELECT shape_router.register_shape('big', 'user_id = 42 AND v < 50000', ARRAY['v']);
CREATE TABLE quiet (id bigint PRIMARY KEY, user_id int NOT NULL, pad text);
ALTER TABLE quiet REPLICA IDENTITY FULL;
SELECT shape_router.register_shape('quiet', 'user_id = 7');

-- A run's transaction, in a band of ids starting after o: i inserts, then u updates of
-- the first inserted rows (moving some in and out of shapes), then d deletes of the last.
CREATE FUNCTION inserted(o bigint, i bigint) RETURNS TABLE (id bigint, user_id int, v int, pad text)
  LANGUAGE sql IMMUTABLE AS $$ SELECT g, (g % 500)::int, (g % 100000)::int, 'row ' || g FROM generate_series(o + 1, o + i) g $$;
CREATE FUNCTION moved_user(id bigint) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT ((id * 7) % 500)::int $$;
CREATE PROCEDURE run(o bigint, i bigint, u bigint, d bigint) LANGUAGE sql AS $$
  INSERT INTO big SELECT * FROM inserted(o, i);
  UPDATE big SET user_id = moved_user(id), v = v + 1 WHERE id BETWEEN o + 1 AND o + u;
  DELETE FROM big WHERE id BETWEEN o + i - d + 1 AND o + i;
$$;

-- Every record the run must route: (shape, op, move, id), computed by PostgreSQL.
CREATE FUNCTION expected(o bigint, i bigint, u bigint, d bigint)
  RETURNS TABLE (shape bigint, op text, move text, id bigint) LANGUAGE plpgsql AS $f$
DECLARE s record;
BEGIN
  FOR s IN SELECT shape_id, coalesce(where_clause, 'true') AS w FROM shape_router.shapes WHERE relation = 'big'::regclass LOOP
    RETURN QUERY EXECUTE format($q$
      WITH ins AS MATERIALIZED (SELECT * FROM inserted($1, $2)),
           old AS (SELECT id, coalesce((%2$s), false) AS m FROM ins WHERE id <= $1 + $3),
           new AS (SELECT id, coalesce((%2$s), false) AS m
                     FROM (SELECT id, moved_user(id) AS user_id, v + 1 AS v, pad FROM ins WHERE id <= $1 + $3) r)
      SELECT %1$s::bigint, 'insert', NULL::text, id FROM ins WHERE %2$s
      UNION ALL
      SELECT %1$s::bigint, CASE WHEN old.m AND new.m THEN 'update' WHEN new.m THEN 'insert' ELSE 'delete' END,
             CASE WHEN old.m AND new.m THEN NULL WHEN new.m THEN 'in' ELSE 'out' END, id
        FROM old JOIN new USING (id) WHERE old.m OR new.m
      UNION ALL
      SELECT %1$s::bigint, 'delete', NULL, id FROM ins WHERE id > $1 + $2 - $4 AND (%2$s)$q$,
      s.shape_id, s.w) USING o, i, u, d;
  END LOOP;
END $f$;

CREATE TABLE received (n bigserial, run text, line text);
CREATE VIEW records AS
  SELECT n, run, (l->>'shape')::bigint AS shape, l->>'op' AS op, l->>'move' AS move,
         coalesce(l->'new'->>'id', l->'old'->>'id')::bigint AS id, l
    FROM (SELECT n, run, line::json AS l FROM received) r;
SQL

declare -A hwm spill args   # per run: walsender VmHWM (kB), "spill_txns spill_bytes", run()'s arguments
slot_pid() { psql -At -c "SELECT active_pid FROM pg_replication_slots WHERE slot_name = '$1'"; }
wait_active() { # slot: prints the pid of the walsender that streams it
  local deadline=$((SECONDS + 30)) p=""
  while [ -z "$p" ] && [ $SECONDS -lt $deadline ]; do p=$(slot_pid "$1"); [ -n "$p" ] || sleep 0.1; done
  echo "$p"
}
wait_commit() { # file, pid of its pg_recvlogical: until a commit record is in the file
  local deadline=$((SECONDS + 120))
  until grep -q '"op":"commit"' "$1" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ] || ! kill -0 "$2" 2>/dev/null; then return 1; fi
    sleep 0.1
  done
}

# One run: a slot, pg_recvlogical streaming from it while the transaction is written
# (the walsender decodes and spills as the WAL comes), and the walsender's VmHWM once
# the transaction's commit record has arrived, before the session ends.
decode_run() { # name, first id - 1, changes
  local name=$1 o=$2 n=$3 i u d t0 rpid wpid
  u=$((n / 20)); d=$((n / 20)); i=$((n - u - d))
  args[$name]="$o, $i, $u, $d"
  psql -o /dev/null -c "SELECT 'init' FROM pg_create_logical_replication_slot('$name', 'shape_router')"
  recv_bg --slot "$name" --start --no-loop -f "$work/$name.json" 2>"$work/$name.err"
  rpid=$!; pids+=("$rpid")
  wpid=$(wait_active "$name")
  t0=$(now)
  psql -c "CALL run(${args[$name]})"
  note "$name: $n changes ($i inserts, $u updates, $d deletes) written in $(since "$t0") s"
  wait_commit "$work/$name.json" "$rpid" || true
  hwm[$name]=$(awk '/^VmHWM:/ {print $2}' "/proc/$wpid/status" 2>/dev/null || true)
  note "$name: decoded $(since "$t0") s after the transaction began; walsender $wpid VmHWM ${hwm[$name]:-?} kB"
  kill -INT "$rpid" 2>/dev/null || true; wait "$rpid" || true
  psql -c "\\copy received (line) FROM '$work/$name.json' WITH (FORMAT text, DELIMITER E'\\x01')" \
       -c "UPDATE received SET run = '$name' WHERE run IS NULL"
  spill[$name]=$(psql -At -c "SELECT spill_txns || ' ' || spill_bytes FROM pg_stat_replication_slots WHERE slot_name = '$name'")
  psql -o /dev/null -c "SELECT pg_drop_replication_slot('$name')"
}

decode_run small 0 "$small"
decode_run large 100000000 "$big"

for run in small large; do
  summary=$(psql -At -F ' ' -c "SELECT shape, op, coalesce(move, '-'), count(*) FROM records WHERE run = '$run' AND shape IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3" | tr '\n' ';')
  note "$run: received (shape op move count): $summary"
  check "$run: every routed record is expected (shape, op, move, id)" \
    test "$(psql -At -c "SELECT count(*) FROM (SELECT shape, op, move, id FROM records WHERE run = '$run' AND shape IS NOT NULL
                                                EXCEPT ALL SELECT * FROM expected(${args[$run]})) x")" = 0
  check "$run: every expected record is routed" \
    test "$(psql -At -c "SELECT count(*) FROM (SELECT * FROM expected(${args[$run]})
                                                EXCEPT ALL SELECT shape, op, move, id FROM records WHERE run = '$run' AND shape IS NOT NULL) x")" = 0
  check "$run: one begin first and one commit last" \
    test "$(psql -At -c "SELECT string_agg(op, ',' ORDER BY n) FILTER (WHERE shape IS NULL) || ' ' || min(n) FILTER (WHERE op = 'begin') || ' ' || max(n) FILTER (WHERE op = 'commit')
                         || ' ' || min(n) || ' ' || max(n) FROM records WHERE run = '$run'" | awk '{print ($1 == "begin,commit" && $2 == $4 && $3 == $5)}')" = 1
done
expected_large=$(psql -At -c "SELECT count(*) FROM expected(${args[large]})")
note "large: $expected_large records expected from $big changes ($(awk -v a="$expected_large" -v b="$big" 'BEGIN {printf "%.2f", 100 * a / b}')%)"
check "large: a shape with a column list projects its columns and the key" \
  test "$(psql -At -c "SELECT string_agg(DISTINCT k, ',' ORDER BY k) FROM records r, json_object_keys(coalesce(l->'new', l->'old')) k
                       WHERE run = 'large' AND shape = (SELECT max(shape_id) FROM shape_router.shapes WHERE relation = 'big'::regclass)")" = "id,v"

read -r spill_txns spill_bytes <<<"${spill[large]:-0 0}"
note "large: spill_txns $spill_txns, spill_bytes $spill_bytes"
check "large: the transaction spilled to disk" test "$spill_txns" -gt 0 -a "$spill_bytes" -gt 0

small_kb=${hwm[small]:-0}; large_kb=${hwm[large]:-0}
note "peak RSS of the walsender: $small_kb kB for $small changes, $large_kb kB for $big changes"
# Flat: at most 1.5x and at most 32 MB more for ten times the changes (under 18 bytes
# per extra change). PostgreSQL's own reorder buffer is bounded by the 64kB here.
check "peak RSS does not grow with the transaction" \
  test "$small_kb" -gt 0 -a "$large_kb" -gt 0 -a $((large_kb * 2)) -le $((small_kb * 3)) -a $((large_kb - small_kb)) -le 32768

# (d) A transaction no shape wants until its last three rows, with a short sender timeout.
psql -o /dev/null -c "ALTER SYSTEM SET wal_sender_timeout = '${timeout_s}s'" -c "SELECT pg_reload_conf()"
timed_out() { grep -q "\\[$1\\].*terminating walsender process due to replication timeout" "$work/server.log"; }
psql -o /dev/null -c "SELECT 'init' FROM pg_create_logical_replication_slot('quiet', 'shape_router')"
[ "$control" -eq 0 ] || psql -o /dev/null -c "SELECT 'init' FROM pg_create_logical_replication_slot('quiet_control', 'sr_bench')"
# --status-interval=0: pg_recvlogical answers the server's keepalives only, so the
# walsender has to ask, which it can do only when the plugin hands it control.
recv_bg --slot quiet --start --no-loop --status-interval=0 -f "$work/quiet.json" 2>"$work/quiet.err"
qpid=$!; pids+=("$qpid")
qwal=$(wait_active quiet)
if [ "$control" -eq 1 ]; then
  recv_bg --slot quiet_control --start --no-loop --status-interval=0 -f "$work/control.out" 2>"$work/control.err"
  cpid=$!; pids+=("$cpid")
  cwal=$(wait_active quiet_control)
fi
t0=$(now)
psql -o /dev/null <<SQL
BEGIN;
INSERT INTO quiet SELECT g, 1000 + g % 1000, 'quiet ' || g FROM generate_series(1, $big - 3) g;
INSERT INTO quiet SELECT g, 7, 'wanted ' || g FROM generate_series($big - 2, $big) g;
COMMIT;
SQL
note "quiet: $big changes written in $(since "$t0") s"
t1=$(now)
wait_commit "$work/quiet.json" "$qpid" || true
note "quiet: the records arrived $(since "$t1") s after the commit (wal_sender_timeout ${timeout_s}s)"
sleep 1   # a walsender that timed out at the end of the transaction has logged it by now
if kill -0 "$qpid" 2>/dev/null; then quiet_alive=1; else quiet_alive=0; fi
check "quiet: pg_recvlogical stays connected" test "$quiet_alive" = 1
if [ -n "$qwal" ] && ! timed_out "$qwal"; then quiet_kept=1; else quiet_kept=0; fi
check "quiet: its walsender did not time out" test "$quiet_kept" = 1
check "quiet: the three wanted rows arrive" test "$(grep -c '"op":"insert"' "$work/quiet.json" 2>/dev/null)" = 3
if [ "$control" -eq 1 ]; then
  # The control decodes the same transaction, with nothing to do per change.
  deadline=$((SECONDS + 30))
  while kill -0 "$cpid" 2>/dev/null && ! timed_out "$cwal" && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
  if timed_out "$cwal"; then control_result="timed out: the scenario catches a plugin that never updates progress"
  else control_result="kept its connection: on this machine the check above proves nothing"; fi
  note "control: sr_bench (no progress updates) on the same transaction $control_result"
fi
kill -INT "$qpid" 2>/dev/null || true; wait "$qpid" 2>/dev/null || true
note "runtime $(( $(date +%s) - start_time )) s"

if [ "$failed" -ne 0 ]; then echo "== server log (tail)"; tail -n 50 "$work/server.log"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
