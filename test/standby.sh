#!/usr/bin/env bash
# Decoding on a physical standby (PostgreSQL 16+) routes exactly as on the primary.
# A primary (wal_level = logical) and a standby made from it with pg_basebackup (-R,
# a physical slot, hot_standby_feedback = on) share a table with shapes of every kind,
# all registered on the primary: equality, IN, OR across columns, ranges, BETWEEN, a
# composite, a no-WHERE shape, a column list, a scan shape and an executor fallback.
# One shape_router slot is created on the primary, two on the standby (one read through
# SQL, one through the standby's walsender with pg_recvlogical). The primary then
# writes: inserts, updates moving rows in and out of shapes, deletes, a TRUNCATE, a
# transaction that spills to disk, shapes registered and dropped between writes and
# inside writing transactions, a registration rolled back and one rolled back to a
# savepoint. Once the standby has replayed up to the primary's LSN, both SQL slots are
# read up to that LSN (peeked plain, then consumed with include-xids and include-lsn
# in two sessions split mid-stream): the streams must be identical line for line, and
# non-trivial (every shape, every kind of record). The walsender stream must equal
# them too. On a server older than 16 it prints a skip note and exits 0. Runs as the
# postgres user against throwaway clusters; prints "N passed, N failed".
set -euo pipefail
source "$(dirname "$0")/lib.sh"
major=$("$pg_config" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
if [ "$major" -lt 16 ]; then
  note "skip: logical decoding on a standby needs PostgreSQL 16+ (this is $major)"
  exit 0
fi
start_time=$SECONDS

pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  [ -n "$work" ] || return 0
  "$bindir/pg_ctl" -D "$work/standby" -m immediate stop >/dev/null 2>&1 || true
  "$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

init_cluster standby "${STANDBY_TEST_PORT:-54333}" "pgoutput, test_decoding, shape_router"
"$bindir/pg_ctl" -D "$work/data" -l "$work/primary.log" -w start >/dev/null
primary() { psql "$@"; }
sb_port=$((port + 1)); sb_sock=$work/sb; mkdir -p "$sb_sock"
standby() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$sb_sock" -p "$sb_port" -U postgres -d postgres "$@"; }
same() { # file, file: identical, or the start of their diff as notes
  cmp -s "$1" "$2" && return 0
  diff "$1" "$2" | head -n 8 | sed 's/^/# /'
  return 1
}
wait_for() { # seconds, description, command...: polls the command until it succeeds
  local secs=$1 what=$2 deadline=$((SECONDS + $1)); shift 2
  until "$@"; do
    if [ $SECONDS -ge $deadline ]; then note "timed out after $secs s waiting for $what"; return 1; fi
    sleep 0.1
  done
}

# ---- the standby: a base backup with -R and a physical slot ----
"$bindir/pg_basebackup" -h "$work" -p "$port" -U postgres -D "$work/standby" -R -C -S standby_phys \
  -X stream --checkpoint=fast
# Its postgresql.conf is the primary's (wal_level = logical, output_plugin_libraries);
# later lines win. The status interval makes hot standby feedback reach the primary soon.
printf "port = %s\nunix_socket_directories = '%s'\nhot_standby = on\nhot_standby_feedback = on\nwal_receiver_status_interval = 1s\n" \
  "$sb_port" "$sb_sock" >> "$work/standby/postgresql.conf"
"$bindir/pg_ctl" -D "$work/standby" -l "$work/standby.log" -w start >/dev/null
check "the standby is in recovery" test "$(standby -At -c "SELECT pg_is_in_recovery()")" = t

# ---- the schema and the shapes, on the primary ----
primary -o /dev/null <<'SQL'
CREATE EXTENSION shape_router;
CREATE TABLE todos (id bigint PRIMARY KEY, user_id int NOT NULL, prio int, status text, title text, due date);
ALTER TABLE todos REPLICA IDENTITY FULL;
CREATE TABLE other (id bigint PRIMARY KEY, v int);   -- no shapes: its changes route nowhere
CREATE TABLE kinds (kind text PRIMARY KEY, shape_id bigint NOT NULL);
INSERT INTO kinds VALUES
  ('equality',   shape_router.register_shape('todos', 'user_id = 5')),
  ('in',         shape_router.register_shape('todos', 'user_id IN (1, 2, 3)')),
  ('or',         shape_router.register_shape('todos', 'user_id = 7 OR status = ''urgent''')),
  ('range',      shape_router.register_shape('todos', 'prio > 7')),
  ('between',    shape_router.register_shape('todos', 'prio BETWEEN 2 AND 4')),
  ('date range', shape_router.register_shape('todos', 'due < date ''2026-03-01''')),
  ('composite',  shape_router.register_shape('todos', 'user_id = 4 AND prio >= 5')),
  ('no where',   shape_router.register_shape('todos', NULL)),
  ('columns',    shape_router.register_shape('todos', 'status = ''open''', ARRAY['title'])),
  ('scan',       shape_router.register_shape('todos', 'title LIKE ''a1%''')),
  ('fallback',   shape_router.register_shape('todos', 'length(title) % 4 = 0'));
SQL
# Two of them are dropped mid-stream; the mid-stream registrations are added to kinds.
shape() { primary -At -c "SELECT shape_id FROM kinds WHERE kind = '$1'"; }

# ---- the slots: one on the primary, two on the standby ----
primary -o /dev/null -c "SELECT pg_create_logical_replication_slot('on_primary', 'shape_router')"
# On a standby, creating a logical slot reads WAL from the standby's replay position until
# it finds a running-xacts record it can build a snapshot from. The standby cannot log
# one; the primary's bgwriter does only every 15 s, and only when the WAL moved. So the
# creation runs in the background while the primary logs them with
# pg_log_standby_snapshot().
standby -At -c "SELECT pg_create_logical_replication_slot('on_standby', 'shape_router')" \
  -c "SELECT pg_create_logical_replication_slot('on_standby_recv', 'shape_router')" \
  > "$work/create.out" 2> "$work/create.err" &
create_pid=$!; pids+=("$create_pid")
snapshots=0
creating() { # true while the creation runs; each call logs a running-xacts record
  kill -0 "$create_pid" 2>/dev/null || return 1
  primary -o /dev/null -c "SELECT pg_log_standby_snapshot()"; snapshots=$((snapshots + 1))
}
t0=$SECONDS
while creating && [ $((SECONDS - t0)) -lt 30 ]; do sleep 0.1; done
if kill -0 "$create_pid" 2>/dev/null; then
  kill -9 "$create_pid"; create_rc=timeout
elif wait "$create_pid"; then create_rc=0; else create_rc=$?; fi
note "slots on the standby created in $((SECONDS - t0)) s, with $snapshots pg_log_standby_snapshot() calls"
check "logical slots created on the standby" test "$create_rc" = 0
[ "$create_rc" = 0 ] || cat "$work/create.err"
# The standby's catalog_xmin reaches the primary's physical slot through hot standby
# feedback: from then on, the primary keeps the catalog rows the standby's slots need.
fed_back() {
  test "$(primary -At -c "SELECT catalog_xmin IS NOT NULL FROM pg_replication_slots WHERE slot_name = 'standby_phys'")" = t
}
wait_for 30 "hot standby feedback" fed_back && feedback=1 || feedback=0
check "the standby's catalog_xmin reached the primary's physical slot" test "$feedback" = 1

# ---- the writes, on the primary; mid_lsn splits them in two ----
primary -o /dev/null <<'SQL'
-- many rows, every shape some of them
INSERT INTO todos SELECT g, g % 10, g % 11, (ARRAY['open', 'done', 'urgent'])[g % 3 + 1],
  CASE WHEN g % 2 = 0 THEN 'a' ELSE 'b' END || g, date '2026-01-01' + g % 120
  FROM generate_series(1, 400) g;
INSERT INTO other SELECT g, g FROM generate_series(1, 100) g;
-- moves in and out: user_id, prio, status, due
UPDATE todos SET user_id = 5 WHERE id % 13 = 0;
UPDATE todos SET prio = (prio + 3) % 11 WHERE id % 4 = 0;
UPDATE todos SET status = 'urgent' WHERE id % 17 = 0;
UPDATE todos SET due = due + 45 WHERE id % 6 = 0;
UPDATE todos SET title = title || 'x' WHERE id % 9 = 0;    -- no WHERE but two reads title
UPDATE other SET v = v + 1;
-- a shape registered between writes
INSERT INTO kinds VALUES ('between writes', shape_router.register_shape('todos', 'prio <= 1'));
DELETE FROM todos WHERE id % 10 = 3;
-- registered and dropped inside a transaction that writes
BEGIN;
INSERT INTO todos SELECT g, g % 10, g % 11, 'open', 'a' || g, date '2026-02-01' FROM generate_series(401, 450) g;
INSERT INTO kinds VALUES ('in a writing txn', shape_router.register_shape('todos', 'user_id = 9', ARRAY['prio']));
UPDATE todos SET user_id = 9 WHERE id % 7 = 0;
SELECT shape_router.drop_shape((SELECT shape_id FROM kinds WHERE kind = 'in'));
UPDATE todos SET user_id = 2 WHERE id % 8 = 0;
DELETE FROM todos WHERE id % 10 = 4;
COMMIT;
SQL
mid_lsn=$(primary -At -c "SELECT pg_current_wal_flush_lsn()")
rolled_back=$(primary -At <<'SQL'
-- a registration rolled back, and one rolled back to a savepoint: they never route
BEGIN;
SELECT shape_router.register_shape('todos', 'user_id = 8');
UPDATE todos SET user_id = 8 WHERE id % 5 = 0;
ROLLBACK;
BEGIN;
UPDATE todos SET prio = prio + 1 WHERE id % 12 = 0;
SAVEPOINT s;
SELECT shape_router.register_shape('todos', 'user_id = 6');
UPDATE todos SET user_id = 6 WHERE id % 5 = 1;
ROLLBACK TO SAVEPOINT s;
UPDATE todos SET user_id = 6 WHERE id % 5 = 2;
COMMIT;
-- a subtransaction that commits, with a write
BEGIN;
SAVEPOINT t;
UPDATE todos SET status = 'open' WHERE id % 11 = 0;
RELEASE SAVEPOINT t;
COMMIT;
-- a shape dropped between writes
SELECT shape_router.drop_shape((SELECT shape_id FROM kinds WHERE kind = 'scan'));
UPDATE todos SET title = 'a1' || id WHERE id % 3 = 0;
-- TRUNCATE, then rows again; the new rows spill past logical_decoding_work_mem
TRUNCATE todos;
INSERT INTO todos SELECT g, g % 10, g % 11, (ARRAY['open', 'done', 'urgent'])[g % 3 + 1], 'a1' || g,
  date '2026-02-15' + g % 30 FROM generate_series(1, 1500) g;
DELETE FROM todos WHERE id % 3 = 0;
SQL
)
rolled_back=$(echo $(echo "$rolled_back" | grep -E '^[0-9]+$'))   # the ids the two registrations returned
end_lsn=$(primary -At -c "SELECT pg_current_wal_flush_lsn()")
replayed() { test "$(standby -At -c "SELECT pg_last_wal_replay_lsn() >= '$end_lsn'")" = t; }
t0=$SECONDS
wait_for 30 "replay up to $end_lsn" replayed && caught_up=1 || caught_up=0
note "writes done; the standby replayed up to $end_lsn in $((SECONDS - t0)) s"
check "the standby replayed up to the primary's LSN" test "$caught_up" = 1

# ---- both slots, up to the same LSN ----
read_slot() { # server function, slot, sql function, up to LSN, options...
  local server=$1 slot=$2 fn=$3 upto=$4 opts=""; shift 4
  while [ $# -gt 0 ]; do opts="$opts, '$1', '$2'"; shift 2; done
  "$server" -At -c "SELECT data FROM $fn('$slot', '$upto', NULL, 'format', 'json'$opts)"
}
read_slot primary on_primary pg_logical_slot_peek_changes "$end_lsn" > "$work/primary.json"
read_slot standby on_standby pg_logical_slot_peek_changes "$end_lsn" > "$work/standby.json"
# Consumed in two sessions, split at mid_lsn: the second one loads the shapes, the
# mid-stream registration among them, from the catalog as of where it starts.
for upto in "$mid_lsn" "$end_lsn"; do
  read_slot primary on_primary pg_logical_slot_get_changes "$upto" include-xids true include-lsn true >> "$work/primary_lsn.json"
  read_slot standby on_standby pg_logical_slot_get_changes "$upto" include-xids true include-lsn true >> "$work/standby_lsn.json"
done
if timeout 60 "$bindir/pg_recvlogical" -h "$sb_sock" -p "$sb_port" -U postgres -d postgres --slot on_standby_recv \
     --start --no-loop --endpos="$end_lsn" -o format=json -o include-xids=true -o include-lsn=true \
     -f "$work/recv.json" 2> "$work/recv.err"; then recv_rc=0; else recv_rc=$?; fi

records=$(grep -c '"shape":' "$work/primary.json" || true)
note "primary: $records records in $(grep -c '"op":"commit"' "$work/primary.json" || true) transactions"
check "the standby's stream equals the primary's" same "$work/primary.json" "$work/standby.json"
check "with include-xids and include-lsn, in two sessions, too" same "$work/primary_lsn.json" "$work/standby_lsn.json"
check "the streams are not trivial (at least 10000 records)" test "$records" -ge 10000
commits=$(grep -c '"op":"commit"' "$work/standby_lsn.json" || true)
check "every commit carries its xid and LSN ($commits commits)" \
  test "$(grep -cE '^\{"op":"commit","xid":[0-9]+,"lsn":"[0-9A-F]+/[0-9A-F]+"\}$' "$work/standby_lsn.json" || true)" = "$commits" -a "$commits" -gt 10
check "pg_recvlogical on the standby (walsender) stops at the LSN" test "$recv_rc" = 0
[ "$recv_rc" = 0 ] || cat "$work/recv.err"
check "the standby's walsender stream equals the primary's" same "$work/primary_lsn.json" "$work/recv.json"

# Every shape kind routed something (on both streams: they are equal).
missing=()
while IFS='|' read -r kind id; do
  grep -q "\"shape\":$id," "$work/standby.json" || missing+=("$kind")
done < <(primary -At -c "SELECT kind, shape_id FROM kinds ORDER BY shape_id")
check "every shape kind has records" test ${#missing[@]} -eq 0
[ ${#missing[@]} -eq 0 ] || note "no records: ${missing[*]}"
for op in '"op":"insert","table"' '"op":"update"' '"op":"delete","table"' '"move":"in"' '"move":"out"' \
          '"op":"truncate"' '"op":"drop"'; do
  check "the stream has $op records" grep -q "$op" "$work/standby.json"
done
check "two drop records, one per dropped shape" test "$(grep -c '"op":"drop"' "$work/standby.json")" = 2
after_drop() { # shape id: its lines after its drop record (none expected)
  awk -v s="\"shape\":$1," 'index($0, s) && seen { print } index($0, s) && /"op":"drop"/ { seen = 1 }' "$work/standby.json"
}
check "dropped shapes route nothing after their drop record" \
  test -z "$(after_drop "$(shape in)")$(after_drop "$(shape scan)")" -a -n "$(grep "\"shape\":$(shape in),\"op\":\"drop\"" "$work/standby.json")"
check "rolled back registrations (shapes $rolled_back) route nothing" \
  test "$(echo "$rolled_back" | wc -w)" = 2 -a -z "$(for id in $rolled_back; do grep "\"shape\":$id," "$work/standby.json"; done)"
check "the other table routes nothing" test -z "$(grep '"table":"public.other"' "$work/standby.json" || true)"
spilled=$(standby -At -c "SELECT spill_txns FROM pg_stat_replication_slots WHERE slot_name = 'on_standby'")
check "a transaction spilled to disk on the standby" test "${spilled:-0}" -gt 0
check "the standby's slots are not invalidated" \
  test "$(standby -At -c "SELECT count(*) FROM pg_replication_slots WHERE slot_type = 'logical' AND NOT conflicting")" = 2
check "nothing is left before the LSN" test -z "$(read_slot standby on_standby pg_logical_slot_get_changes "$end_lsn")"

note "test/standby.sh: $((SECONDS - start_time)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
