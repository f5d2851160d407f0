#!/usr/bin/env bash
# CPU (user + system) of a slot's start alone, for several builds of the library:
# a single-user server peeks one change of SLOT with the `shapes` option listing
# the ids FIRST .. FIRST + COUNT - 1 (10 digits, as bench/mix.py writes them), once
# per library directory given (each holds a shape_router.so), interleaved, RUNS
# rounds; prints each directory's times and their median. Ids the catalog does not
# hold give the memory baseline's start (the catalog read, no shape loaded).
# Run as root on a cluster kept by bench/mix.py --keep, its server stopped.
# Usage: bench/start_ab.sh DATA_DIR SLOT FIRST COUNT RUNS LIBDIR...
set -euo pipefail
[ $# -ge 6 ] || { sed -n '2,10p' "$0"; exit 2; }
data=$1 slot=$2 first=$3 count=$4 runs=$5; shift 5
bindir=$("${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}" --bindir)
peek=$(mktemp); chmod 644 "$peek"
trap 'rm -f "$peek"' EXIT
python3 - "$slot" "$first" "$count" > "$peek" <<'PY'
import sys
slot, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ids = ",".join(f"{k:010d}" for k in range(first, first + count))
print(f"SELECT count(*) FROM pg_logical_slot_peek_changes('{slot}', NULL, 1, 'shapes', '{ids}');")
PY
for _ in $(seq "$runs"); do
  for lib in "$@"; do
    t=$( { runuser -u postgres -- /usr/bin/time -f "%U %S" "$bindir/postgres" --single -D "$data" \
           -c dynamic_library_path="$lib:\$libdir" postgres < "$peek" > /dev/null; } 2>&1 | tail -1 )
    echo "$lib $t"
  done
done | python3 -c '
import statistics, sys
times = {}
for line in sys.stdin:
    lib, user, system = line.split()
    times.setdefault(lib, []).append(float(user) + float(system))
for lib, t in times.items():
    print(lib, " ".join(f"{x:.2f}" for x in t), "median", f"{statistics.median(t):.3f}")
'
