# Sourced by the script tests: a throwaway cluster and TAP-like checks. Runs as the
# postgres user (initdb refuses root). The socket lives in the cluster's own
# directory, so the tests never clash with other servers. The server is the one of
# $PG_CONFIG (default: PostgreSQL 15's pg_config).
pg_config=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
bindir=$("$pg_config" --bindir)
passed=0; failed=0
work=""   # set by init_cluster; cleanup traps may run before it
check() { # name, command...
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok - $name"; else failed=$((failed + 1)); echo "not ok - $name"; fi
}
note() { echo "# $*"; }

# init_cluster NAME PORT PLUGINS [CONF LINE...]: sets $work and $port, writes the
# configuration (logical.conf.in, the plugins PG 15.19+ must list, the lines given).
init_cluster() {
  local name=$1 plugins=$3 line; port=$2; shift 3
  work=$(mktemp -d "/tmp/shape_router_$name.XXXXXX")
  "$bindir/initdb" -D "$work/data" -A trust -U postgres >/dev/null
  cat "$(dirname "${BASH_SOURCE[0]}")/../logical.conf.in" >> "$work/data/postgresql.conf"   # logical_decoding_work_mem = 64kB
  if "$bindir/postgres" --describe-config 2>/dev/null | grep '^output_plugin_libraries' >/dev/null; then
    echo "output_plugin_libraries = '$plugins'" >> "$work/data/postgresql.conf"
  fi
  printf "port = %s\nunix_socket_directories = '%s'\nlisten_addresses = ''\n" "$port" "$work" >> "$work/data/postgresql.conf"
  for line in "$@"; do echo "$line" >> "$work/data/postgresql.conf"; done
}
psql() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$work" -p "$port" -U postgres -d postgres "$@"; }
