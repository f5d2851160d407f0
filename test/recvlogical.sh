#!/usr/bin/env bash
# pg_recvlogical consumes a shape_router slot through the walsender (streaming
# replication protocol): the records it writes equal those of the SQL interface,
# options given as -o k=v and as bare -o k (bool true) work, and a bad option
# ends the stream with an error naming it. Runs as the postgres user against a
# throwaway cluster; prints "N passed, N failed".
set -euo pipefail
source "$(dirname "$0")/lib.sh"
init_cluster recv "${RECV_TEST_PORT:-54329}" "pgoutput, test_decoding, shape_router"
trap '"$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
"$bindir/pg_ctl" -D "$work/data" -l "$work/server.log" -w start >/dev/null

psql -o /dev/null <<'SQL'
CREATE EXTENSION shape_router;
CREATE TABLE todos (id bigserial PRIMARY KEY, user_id int NOT NULL, status text, title text);
ALTER TABLE todos REPLICA IDENTITY FULL;
SELECT shape_router.register_shape('todos', 'user_id = 5');
SELECT shape_router.register_shape('todos', 'status = ''open''', ARRAY['title']);
SELECT 'init' FROM pg_create_logical_replication_slot('recv', 'shape_router');
SELECT 'init' FROM pg_create_logical_replication_slot('sql', 'shape_router');
INSERT INTO todos (user_id, status, title) SELECT g % 10, CASE WHEN g % 3 = 0 THEN 'open' ELSE 'done' END, 't' || g
  FROM generate_series(1, 300) g;
UPDATE todos SET status = 'open' WHERE id % 7 = 0;
DELETE FROM todos WHERE id % 11 = 0;
SQL
end_lsn=$(psql -At -c "SELECT pg_current_wal_insert_lsn()")

recv() { "$bindir/pg_recvlogical" -h "$work" -p "$port" -U postgres -d postgres --slot "$@"; }
recv recv --start --endpos="$end_lsn" --no-loop -o include-xids -o include-lsn=1 -f "$work/stream.json"
psql -At -c "SELECT data FROM pg_logical_slot_get_changes('sql', '$end_lsn', NULL, 'include-xids', 'on', 'include-lsn', 'true')" > "$work/sql.json"

check "pg_recvlogical received records" test "$(grep -c '"shape"' "$work/stream.json")" -gt 100
check "walsender stream equals the SQL interface's" cmp -s "$work/stream.json" "$work/sql.json"
check "bare -o include-xids means true" grep -q '"op":"begin","xid":' "$work/stream.json"
check "every line is JSON" psql -c "CREATE TEMP TABLE lines (l text); COPY lines FROM '$work/stream.json' WITH (FORMAT text, DELIMITER E'\x01'); SELECT l::json FROM lines" -o /dev/null

# the slot's confirmed position moved: a second run from the slot gets nothing new
: > "$work/again.json"
recv recv --start --endpos="$end_lsn" --no-loop -f "$work/again.json" || true
check "confirmed position persisted" test ! -s "$work/again.json"

# a bad option ends the stream with an error naming it
psql -c "INSERT INTO todos (user_id, status, title) VALUES (5, 'open', 'x')"
end_lsn=$(psql -At -c "SELECT pg_current_wal_insert_lsn()")
if recv recv --start --endpos="$end_lsn" --no-loop -o colour=blue -f /dev/null 2> "$work/bad.err"; then bad_rc=0; else bad_rc=$?; fi
check "bad option fails" test "$bad_rc" -ne 0
check "error names the option" grep -q 'unrecognized shape_router option "colour"' "$work/bad.err"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
