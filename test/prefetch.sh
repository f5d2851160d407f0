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
# A site names its function, then (after |) where link-time optimisation puts
# its prefetch when it inlines it (the entry point it is inlined into, or the
# directory's prefetch it calls); the first found is checked.
for site in 'sr_router_prefetch_shape|shape_router::HandleSet::prefetch(unsigned long) const' \
            'shape_router::Router::prefetch_rows(unsigned int, sr_row_view const*, sr_row_view const*, unsigned long, bool)|sr_router_prefetch_rows' \
            'shape_router::Router::route(unsigned int, sr_row_view const*, sr_row_view const*, bool, unsigned long)|sr_status shape_router::guarded<sr_router_route::{lambda()#1}>(sr_router_route::{lambda()#1}&&)'; do
  body=
  IFS='|' read -r -a names <<<"$site"
  for fn in "${names[@]}"; do
    # (a build may suffix the name: ".lto_priv.0", " [clone .lto_priv.0]"; its ".cold" part is not it)
    body=$(awk -v fn="<$fn" '/^[0-9a-f]+ <.*>:$/ && !index($0, ".cold") &&
                             (index($0, fn ">:") || index($0, fn ".") || index($0, fn " [clone")) { on = 1; next }
                             on && /^$/ { exit } on' <<<"$dis")
    [ -n "$body" ] && break
  done
  if [ -z "$body" ]; then
    echo "not ok - none of $site found in $lib"; status=1
  elif grep -q "[[:space:]]$insn" <<<"$body"; then
    echo "ok - $fn prefetches"
  else
    echo "not ok - $fn has no $insn instruction"; status=1
  fi
done
exit $status
