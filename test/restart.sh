#!/usr/bin/env bash
# Nothing is lost across restarts. Two writers commit a few hundred thousand changes
# (inserts, updates moving rows in and out of shapes, deletes, rollbacks, transactions
# no shape wants, a few that spill) while pg_recvlogical consumes slot1 and is killed
# with SIGKILL, restarted, loses its server to `pg_ctl stop -m immediate`, is restarted
# again, and finally stops at a known end LSN. slot2, a copy of slot1 made before the
# first write, is then consumed in one go up to the same LSN. slot1's records,
# deduplicated by transaction (a transaction whose commit was not confirmed is sent
# again: each is keyed by the commit LSN of its commit record, include-lsn, and the
# first complete copy is kept), must equal slot2's: same transactions, same records,
# same order. Runs as the postgres user against a throwaway cluster; prints
# "N passed, N failed".
set -euo pipefail
source "$(dirname "$0")/lib.sh"
batches=${RESTART_TEST_BATCHES:-24} # of RESTART_TEST_TXNS transactions each, split between two writers
txns=${RESTART_TEST_TXNS:-120}
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  "$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
init_cluster restart "${RESTART_TEST_PORT:-54332}" "pgoutput, test_decoding, shape_router" "max_wal_size = 4GB"
trap cleanup EXIT
trap 'exit 1' INT TERM
start_time=$(date +%s)

server() { "$bindir/pg_ctl" -D "$work/data" -l "$work/server.log" "$@" >/dev/null; }
server -w start
# pg_recvlogical on slot1 in the background, a child of this shell ($! is its pid).
# Status and fsync every second, so that its confirmed position moves between kills.
recv_bg() { # output file, more options
  local out=$1; shift
  "$bindir/pg_recvlogical" -h "$work" -p "$port" -U postgres -d postgres --slot slot1 --start \
    -o format=json -o include-lsn=true --status-interval=1 --fsync-interval=1 -f "$out" "$@" 2>>"$work/recv.err" &
}
lines() { if [ -f "$1" ]; then wc -l < "$1"; else echo 0; fi; }
wait_lines() { # file, count, seconds: until the file has that many lines or time is up
  local deadline=$((SECONDS + $3))
  while [ "$(lines "$1")" -lt "$2" ] && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
}
wait_mid_transaction() { # file: for up to 5 s, until its last line is inside a transaction
  local deadline=$((SECONDS + 5))
  while tail -n 1 "$1" | grep -q '"op":"commit"' && [ $SECONDS -lt $deadline ]; do sleep 0.01; done
}
writing() { ! [ -e "$work/writer0.done" -a -e "$work/writer1.done" ]; }


psql -o /dev/null <<'SQL'
CREATE EXTENSION shape_router;
CREATE TABLE items (id bigserial PRIMARY KEY, user_id int NOT NULL, score int NOT NULL, note text);
ALTER TABLE items REPLICA IDENTITY FULL;
CREATE TABLE other (id bigserial PRIMARY KEY, v int);    -- no shapes: its transactions emit nothing
SELECT shape_router.register_shape('items', 'user_id = 1');
SELECT shape_router.register_shape('items', 'user_id = 2');
SELECT shape_router.register_shape('items', 'user_id IN (3, 4)');
SELECT shape_router.register_shape('items', 'score BETWEEN 100 AND 149');
SELECT shape_router.register_shape('items', NULL);       -- every change: counts what was written
SELECT shape_router.register_shape('items', 'user_id = 5 AND score < 200', ARRAY['score']);

CREATE TABLE batch_shapes (b int, shape_id bigint);    -- no shapes either

-- Writer w (0 or 1) of batch b: txns transactions of varied sizes (mostly small, 1% of
-- 5,000 to 15,000 changes). Writer w updates and deletes only rows with id % 2 = w, so
-- the two never wait for each other; their transactions interleave in the WAL.
-- Halfway through, a transaction registers a shape and drops those of batch b - 4:
-- the catalog changes mid-stream, and the restarts must not change what is routed.
CREATE PROCEDURE churn(w int, b int, txns int) LANGUAGE plpgsql AS $$
DECLARE
  n int; lo bigint; hi bigint; kind float8;
BEGIN
  PERFORM setseed(b / 1000.0);
  FOR t IN 1 .. txns LOOP
    IF t = txns / 2 THEN
      INSERT INTO batch_shapes
        SELECT b, shape_router.register_shape('items', format('user_id = %s AND score >= %s', 6 + b % 6, b * 5 % 200));
      PERFORM shape_router.drop_shape(shape_id) FROM batch_shapes WHERE batch_shapes.b = churn.b - 4;
      COMMIT;
    END IF;
    n := 1 + floor(random() ^ 3 * 300)::int;
    IF random() < 0.01 THEN n := 5000 + floor(random() * 10000)::int; END IF;
    SELECT min(id), max(id) INTO lo, hi FROM items;
    lo := coalesce(lo, 0) + floor(random() * greatest(coalesce(hi - lo, 0) - n, 1))::bigint;
    kind := random();
    IF kind < 0.35 OR hi IS NULL THEN
      INSERT INTO items (user_id, score, note)
        SELECT floor(random() * 12), floor(random() * 300), md5(random()::text) FROM generate_series(1, n);
    ELSIF kind < 0.60 THEN       -- moves rows in and out of shapes
      UPDATE items SET user_id = floor(random() * 12), score = (score + floor(random() * 150)::int) % 300
        WHERE id BETWEEN lo AND lo + 2 * n AND id % 2 = w;
    ELSIF kind < 0.72 THEN
      DELETE FROM items WHERE id BETWEEN lo AND lo + n AND id % 2 = w;
    ELSIF kind < 0.90 THEN       -- a bit of everything, and updates no WHERE reads
      INSERT INTO items (user_id, score, note)
        SELECT floor(random() * 12), floor(random() * 300), 'mixed' FROM generate_series(1, n / 2 + 1);
      UPDATE items SET note = md5(note) WHERE id BETWEEN lo AND lo + n / 2 AND id % 2 = w;
      UPDATE items SET score = (score + 30) % 300 WHERE id BETWEEN lo + n / 2 AND lo + n AND id % 2 = w;
      DELETE FROM items WHERE id BETWEEN lo + n AND lo + 2 * n AND id % 2 = w;
    ELSIF kind < 0.95 THEN
      INSERT INTO other (v) SELECT g FROM generate_series(1, n) g;
    ELSE                         -- never happened
      INSERT INTO items (user_id, score, note) SELECT 1, 120, 'rolled back' FROM generate_series(1, n);
      ROLLBACK;
    END IF;
    COMMIT;
    PERFORM pg_sleep(0.025);     -- about 45 s of writes for the consumer to follow
  END LOOP;
END $$;

SELECT 'init' FROM pg_create_logical_replication_slot('slot1', 'shape_router');
SELECT 'init' FROM pg_copy_logical_replication_slot('slot1', 'slot2');
SQL
created=$(psql -At -c "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'slot1'")

# Writer w runs batches w, w + 2, ...; a batch the crash interrupts is run again
# once the server is back (what it had committed stays committed).
writer() { # w
  local b
  for ((b = $1; b < batches; b += 2)); do
    until psql -o /dev/null -c "CALL churn($1, $b, $txns)" 2>>"$work/writer$1.err"; do sleep 0.3; done
  done
  touch "$work/writer$1.done"
}
writer 0 & pids+=($!)
writer 1 & pids+=($!)

# 1. A consumer killed with SIGKILL mid-stream.
recv_bg "$work/part1.json"; rpid=$!; pids+=("$rpid")
wait_lines "$work/part1.json" 100000 90
wait_mid_transaction "$work/part1.json"
kill -9 "$rpid"; wait "$rpid" 2>/dev/null || true
if writing; then busy=1; else busy=0; fi
note "part 1: $(lines "$work/part1.json") lines when pg_recvlogical was killed (SIGKILL) after $(( $(date +%s) - start_time )) s"
check "pg_recvlogical was killed while the writers were writing" test "$busy" = 1

# 2. Restarted. A checkpoint makes the walsender move slot1's restart_lsn, which saves
#    the slot with its confirmed position (PostgreSQL 15 does not save a slot whose
#    confirmed position alone moved). Then the server stops without a shutdown
#    checkpoint, taking the writers' connections and the consumer's with it.
recv_bg "$work/part2.json" --no-loop; rpid=$!; pids+=("$rpid")
wait_lines "$work/part2.json" 50000 90
slot() { psql -At -c "SELECT $1 FROM pg_replication_slots WHERE slot_name = 'slot1'"; }
restart_before=$(slot restart_lsn)
psql -c "CHECKPOINT"
deadline=$((SECONDS + 60))
while [ "$(slot "restart_lsn > '$restart_before'")" != t ] && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
wait_lines "$work/part2.json" $(( $(lines "$work/part2.json") + 20000 )) 30
wait_mid_transaction "$work/part2.json"
if writing; then busy=1; else busy=0; fi
confirmed=$(slot confirmed_flush_lsn)
server -m immediate stop
wait "$rpid" 2>/dev/null || true
note "part 2: $(lines "$work/part2.json") lines when the server stopped (immediate); slot1 had confirmed $confirmed"
check "the server stopped while the writers were writing" test "$busy" = 1
server -w start
restarts_at=$(slot confirmed_flush_lsn)
note "slot1 restarts at $restarts_at after crash recovery"
check "slot1 restarts past where it was created" test "$(psql -At -c "SELECT '$restarts_at'::pg_lsn > '$created'::pg_lsn")" = t

# 3. Restarted after the crash, while the writers go on; stopped with SIGINT
#    (pg_recvlogical's clean stop). 4. Restarted up to the end LSN, once writes are done.
recv_bg "$work/part3.json"; rpid=$!; pids+=("$rpid")
wait_lines "$work/part3.json" 150000 90
kill -INT "$rpid"; wait "$rpid" 2>/dev/null || true
if writing; then busy=1; else busy=0; fi
note "part 3: $(lines "$work/part3.json") lines when pg_recvlogical was stopped (SIGINT)"
check "pg_recvlogical was stopped while the writers were writing" test "$busy" = 1
deadline=$((SECONDS + 150))
while writing && [ $SECONDS -lt $deadline ]; do sleep 0.5; done
if writing; then finished=0; else finished=1; fi
check "the writers finished" test "$finished" = 1
end_lsn=$(psql -At -c "SELECT pg_current_wal_lsn()")
note "writes done after $(( $(date +%s) - start_time )) s; end LSN $end_lsn"
recv_bg "$work/part4.json" --no-loop --endpos="$end_lsn"; rpid=$!
wait "$rpid" && part4_rc=0 || part4_rc=$?
note "part 4: $(lines "$work/part4.json") lines up to $end_lsn"
check "pg_recvlogical stops at the end LSN" test "$part4_rc" = 0

# The reference: slot2, uninterrupted, up to the same LSN.
t0=$SECONDS
"$bindir/pg_recvlogical" -h "$work" -p "$port" -U postgres -d postgres --slot slot2 --start --no-loop \
  --endpos="$end_lsn" -o format=json -o include-lsn=true -f "$work/reference.json" 2>>"$work/recv.err" \
  && ref_rc=0 || ref_rc=$?
note "reference: $(lines "$work/reference.json") lines from slot2 in $((SECONDS - t0)) s"
check "the reference stream ends at the end LSN" test "$ref_rc" = 0
spilled=$(psql -At -c "SELECT spill_txns FROM pg_stat_replication_slots WHERE slot_name = 'slot2'")
note "reference: $spilled transactions spilled to disk"
check "some transactions spilled" test "${spilled:-0}" -gt 0

# Deduplicate slot1's parts and compare them with the reference.
every=$(psql -At -c "SELECT shape_id FROM shape_router.shapes WHERE where_clause IS NULL")
python3 - "$every" "$work/reference.json" "$work"/part{1,2,3,4}.json >"$work/compare.out" <<'PY' && cmp_rc=0 || cmp_rc=$?
import json, sys

def lsn(text):
    hi, lo = text.split('/')
    return (int(hi, 16) << 32) | int(lo, 16)

def transactions(path):
    """[(commit LSN, [lines])] of the complete transactions of a file, the count of
    incomplete ones (cut off by a kill), and the count of malformed lines."""
    done, current, incomplete, malformed = [], None, 0, 0
    with open(path, 'rb') as f:
        data = f.read().decode()
    for line in data.split('\n'):
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            malformed += 1
            current = None
            continue
        op = record.get('op')
        if op == 'begin':
            if current is not None:
                incomplete += 1          # a new session began in the same file
            current = [line]
        elif current is None:
            malformed += 1               # a record outside any transaction
        elif op == 'commit':
            current.append(line)
            done.append((lsn(record['lsn']), current))
            current = None
        else:
            current.append(line)
    if current is not None:
        incomplete += 1
    return done, incomplete, malformed

every = '{"shape":%d,' % int(sys.argv[1])
reference, ref_incomplete, ref_malformed = transactions(sys.argv[2])
first = {}            # commit LSN -> the lines of its first complete copy
kept, duplicates, differing, incomplete, malformed, out_of_order = [], 0, 0, 0, 0, 0
kept_per_part = []
for path in sys.argv[3:]:
    kept_per_part.append(0)
    done, inc, bad = transactions(path)
    incomplete += inc
    malformed += bad
    for commit, lines in done:
        if commit in first:
            duplicates += 1
            differing += first[commit] != lines
        else:
            if kept and commit < kept[-1][0]:
                out_of_order += 1
            first[commit] = lines
            kept.append((commit, lines))
            kept_per_part[-1] += 1

got = [line for _, lines in kept for line in lines]
want = [line for _, lines in reference for line in lines]
changes = sum(1 for line in want if line.startswith(every))
print(f"changes {changes}")
print(f"reference_records {len(want)}")
print(f"reference_shapes {len({json.loads(line).get('shape') for line in want} - {None})}")
print(f"reference_transactions {len(reference)}")
print(f"reference_bad {ref_incomplete + ref_malformed}")
print(f"received_transactions {len(kept) + duplicates}")
print(f"duplicates {duplicates}")
print(f"differing_duplicates {differing}")
print(f"incomplete {incomplete}")
print(f"malformed {malformed}")
print(f"out_of_order {out_of_order}")
print(f"records {len(got)}")
print(f"kept_per_part {','.join(map(str, kept_per_part))}")
if got != want:
    i = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    print(f"first_difference {i}")
    print(f"# slot1: {got[i] if i < len(got) else '(end)'}")
    print(f"# slot2: {want[i] if i < len(want) else '(end)'}")
    sys.exit(1)
PY
value() { awk -v k="$1" '$1 == k {print $2}' "$work/compare.out"; }
grep '^#' "$work/compare.out" || true
note "changes written (records of the shape without WHERE): $(value changes); reference: $(value reference_records) records of $(value reference_shapes) shapes in $(value reference_transactions) transactions"
note "slot1: $(value received_transactions) complete transactions received, $(value duplicates) duplicates removed, $(value incomplete) incomplete copies dropped; $(value records) records kept"
note "transactions kept from each part: $(value kept_per_part)"
check "enough changes were written" test "$(value changes)" -ge 200000
check "shapes registered while writing route records" test "$(value reference_shapes)" -gt 6
check "the reference is well formed" test "$(value reference_bad)" = 0
check "slot1's parts are well formed" test "$(value malformed)" = 0
check "transactions were sent again after the restarts" test "$(value duplicates)" -gt 0
check "every part holds transactions no later part sent again" \
  bash -c 'IFS=, read -ra k <<<"$1"; [ ${#k[@]} = 4 ] && for n in "${k[@]}"; do [ "$n" -gt 0 ] || exit 1; done' - "$(value kept_per_part)"
check "every copy of a transaction sent again equals the first" test "$(value differing_duplicates)" = 0
check "slot1's transactions come in commit order" test "$(value out_of_order)" = 0
check "slot1 deduplicated equals slot2: same transactions, records and order" test "$cmp_rc" = 0
note "runtime $(( $(date +%s) - start_time )) s"

if [ "$failed" -ne 0 ]; then
  echo "== pg_recvlogical errors (tail)"; tail -n 20 "$work/recv.err"
  echo "== writer errors (tail)"; tail -n 20 "$work"/writer*.err 2>/dev/null || true
  echo "== server log (tail)"; tail -n 50 "$work/server.log"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
