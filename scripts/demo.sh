#!/usr/bin/env bash
# The shape_router demo, as root on Debian bookworm: installs what is missing,
# builds and installs the extension, starts a throwaway cluster as postgres,
# registers shapes, writes rows, prints the routed stream through
# pg_recvlogical, then stops and removes the cluster. PG_CONFIG picks the server
# (default: PostgreSQL 15, the one scripts/install-deps.sh installs).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bash scripts/install-deps.sh
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
make -s -j"$(nproc)" >/dev/null && make -s install >/dev/null

bindir=$("$PG_CONFIG" --bindir)
work=$(mktemp -d /tmp/shape_router_demo.XXXXXX)
chown postgres "$work"
port=${DEMO_PORT:-54331}
as_pg() { runuser -u postgres -- "$@"; }
cleanup() { as_pg "$bindir/pg_ctl" -D "$work/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

as_pg "$bindir/initdb" -D "$work/data" -A trust -U postgres >/dev/null
{
  echo "wal_level = logical"
  echo "port = $port"
  echo "unix_socket_directories = '$work'"
  echo "listen_addresses = ''"
  # PostgreSQL 15.19+ decodes only with output plugins listed here.
  if "$bindir/postgres" --describe-config 2>/dev/null | grep '^output_plugin_libraries' >/dev/null; then
    echo "output_plugin_libraries = 'pgoutput, test_decoding, shape_router'"
  fi
} >> "$work/data/postgresql.conf"
as_pg "$bindir/pg_ctl" -D "$work/data" -l "$work/server.log" -w start >/dev/null
psql() { as_pg "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$work" -p "$port" -U postgres -d postgres "$@"; }

echo "== setup: a table, three shapes, one slot"
psql -e <<'SQL'
CREATE EXTENSION shape_router;
CREATE TABLE todos (id bigserial PRIMARY KEY, user_id int NOT NULL, status text NOT NULL, title text);
ALTER TABLE todos REPLICA IDENTITY FULL;
SELECT shape_router.register_shape('todos', 'user_id = 5') AS user_5;
SELECT shape_router.register_shape('todos', 'user_id = 5 AND status = ''open''', ARRAY['title']) AS user_5_open;
SELECT * FROM shape_router.register_shapes('todos', ARRAY['status = ''urgent''']) AS urgent;
SELECT shape_id, relation, where_clause, columns FROM shape_router.shapes ORDER BY shape_id;
SELECT slot_name FROM pg_create_logical_replication_slot('demo', 'shape_router');
SQL

echo "== writes"
psql -e <<'SQL'
INSERT INTO todos (user_id, status, title) VALUES (5, 'open', 'write the demo'), (6, 'open', 'urgent later');
UPDATE todos SET status = 'done' WHERE id = 1;
UPDATE todos SET status = 'urgent' WHERE id = 2;
DELETE FROM todos WHERE id = 1;
SQL
end_lsn=$(psql -At -c "SELECT pg_current_wal_insert_lsn()")

echo "== the routed stream, through pg_recvlogical"
as_pg "$bindir/pg_recvlogical" -h "$work" -p "$port" -U postgres -d postgres --slot demo \
  --start --endpos="$end_lsn" --no-loop -o include-xids=false -f -
echo "== the same slot type through SQL, format=text, and the funnel counters of that decoding session"
psql -c "SELECT 'init' FROM pg_create_logical_replication_slot('demo_text', 'shape_router')" -o /dev/null
psql -c "INSERT INTO todos (user_id, status, title) VALUES (5, 'urgent', 'two shapes want this'), (7, 'open', 'no shape wants this')"
psql <<'SQL'
SELECT data FROM pg_logical_slot_get_changes('demo_text', NULL, NULL, 'format', 'text');
SELECT changes_seen, relation_gate_passes, gate_evaluations, records_emitted FROM shape_router.decoding_stats();
SQL
echo "== done: cluster stopped and removed"
