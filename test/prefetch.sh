#!/usr/bin/env bash
# The prefetches the load and the routing path rely on are in the built library:
# g++ 12 dropped a function made only of __builtin_prefetch calls (the shape
# directory's prefetch before a catalog row is parsed compiled to a bare `ret`
# for a week of measurements), which no functional test can see.
# Checks the installed shape_router.so's code of each function below for a
# prefetch instruction (x86-64: prefetcht0; aarch64: prfm). Prints "ok"/"not ok".
set -euo pipefail
pg_config=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
lib="$("$pg_config" --pkglibdir)/shape_router.so"
case "$(uname -m)" in
  x86_64) insn='prefetch' ;;
  aarch64) insn='prfm' ;;
  *) echo "ok - prefetch check skipped on $(uname -m) # skip"; exit 0 ;;
esac
if ! command -v objdump >/dev/null; then
  echo "not ok - objdump (binutils) is needed to read $lib"; exit 1
fi
dis=$(objdump -d --no-show-raw-insn -C "$lib")
status=0
# The index's prefetch (ShapeIndex::prefetch) is inline: it is checked where it
# runs, reading the next change's filter words and the route-time keys' words.
for fn in 'sr_router_prefetch_shape' \
          'shape_router::Router::prefetch_rows(unsigned int, sr_row_view const*, sr_row_view const*, unsigned long, bool)' \
          'shape_router::Router::route(unsigned int, sr_row_view const*, sr_row_view const*, bool, unsigned long)'; do
  body=$(awk -v fn="<$fn>:" 'index($0, fn) { on = 1; next } on && /^$/ { exit } on' <<<"$dis")
  if [ -z "$body" ]; then
    echo "not ok - $fn not found in $lib"; status=1
  elif grep -q "[[:space:]]$insn" <<<"$body"; then
    echo "ok - $fn prefetches"
  else
    echo "not ok - $fn has no $insn instruction"; status=1
  fi
done
exit $status
