#!/usr/bin/env bash
# The private memory (RssAnon) of a single-user server running one statement,
# sampled every ~5 ms: prints the peak and the samples (ms since the start,
# RssAnon MB). Run as root on a cluster kept by bench/mix.py --keep, its server
# stopped; STATEMENT_FILE holds e.g. a pg_logical_slot_peek_changes of one
# change with a `shapes` option (see bench/start_ab.sh for one made from ids).
# Usage: bench/rss_trace.sh DATA_DIR STATEMENT_FILE [LIBDIR]
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,7p' "$0"; exit 2; }
data=$1 statement=$2 lib=${3:-}
bindir=$("${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}" --bindir)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
libopt=()
[ -n "$lib" ] && libopt=(-c "dynamic_library_path=$lib:\$libdir")
runuser -u postgres -- "$bindir/postgres" --single -D "$data" "${libopt[@]}" postgres < "$statement" > /dev/null 2>&1 &
sleep 0.05
pid=$(pgrep -n -f "postgres --single -D $data")
start=$(date +%s%N)
while [ -e "/proc/$pid/status" ]; do
  anon=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  [ -n "$anon" ] && echo "$(( ($(date +%s%N) - start) / 1000000 )) $anon" >> "$out"
  sleep 0.005
done
wait || true
sort -k2 -n "$out" | tail -1 | awk '{printf "peak RssAnon %.1f MB at %d ms\n", $2 / 1024, $1}'
awk '{printf "%d/%.0f ", $1, $2 / 1024} END {print ""}' "$out"
