#!/usr/bin/env bash
# Runs every test of shape_router on this machine, as root: installs what is
# missing, builds with -Werror, installs the extension, then runs
#   1. the core's unit tests (GoogleTest), plain, under ASan + UBSan, and TSan for
#      the background builds,
#   2. the pg_regress suite on a throwaway instance (as the postgres user),
#   3. the script tests, each on a throwaway cluster: test/recvlogical.sh (walsender
#      path), test/restart.sh (nothing lost across consumer kills and a server crash),
#      test/bigtxn.sh (2,000,000-change transactions: exact records, spilling, flat
#      memory, no sender timeout), test/rebuild.sh (a background index rebuild while
#      decoding: exact records), test/prefetch.sh (the built library keeps its
#      prefetch instructions; no cluster),
#   4. the benchmark harnesses at their smallest size,
# all against the server of $PG_CONFIG (default: PostgreSQL 15, which
# scripts/install-deps.sh installs on Debian bookworm); then
#   5. the build, the pg_regress suite and the script tests against PostgreSQL 17 and
#      18, each in a Debian chroot made (once, then reused) by scripts/chroot.sh; there
#      also test/standby.sh (a slot on a physical standby routes as one on the
#      primary: decoding on a standby needs 16+, so the host's 15 does not run it).
#      SHAPE_ROUTER_CHROOT_MAJORS chooses them (default "17 18"; empty: none).
# On failure it prints regression.diffs and the server log. Any failure on any
# version fails the run.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bash scripts/install-deps.sh
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
chroot_majors=${SHAPE_ROUTER_CHROOT_MAJORS-17 18}

make -s -j"$(nproc)" >/dev/null
make -s install >/dev/null
echo "== build and install: ok ($("$("$PG_CONFIG" --bindir)/postgres" --version))"

passed=0; failed=0
unit_log=$(mktemp)
if make -s -j"$(nproc)" unit >"$unit_log" 2>&1; then unit_ok=1; else unit_ok=0; fi
cat "$unit_log"
unit_tests=$({ grep -h '^\[  PASSED  \]' "$unit_log" || true; } | awk '{s += $4} END {print s + 0}')
unit_failed=$({ grep -h '^\[  FAILED  \] [0-9]' "$unit_log" || true; } | awk '{s += $4} END {print s + 0}')
passed=$((passed + unit_tests)); failed=$((failed + unit_failed))
[ "$unit_ok" -eq 1 ] || [ "$unit_failed" -gt 0 ] || failed=$((failed + 1))
rm -f "$unit_log"

# The suite runs as postgres (initdb refuses root); it writes only to $out.
out=$(mktemp -d /tmp/shape_router_regress.XXXXXX)
src=$repo
if ! runuser -u postgres -- test -r "$repo/Makefile" -a -x "$repo/sql"; then
  src="$out/src"; mkdir -p "$src"; cp -r "$repo"/. "$src"/   # tree not readable by postgres
fi
chown -R postgres "$out"
if runuser -u postgres -- make -s -C "$src" installcheck TEST_OUTPUT="$out" >"$out/installcheck.log" 2>&1; then
  regress_ok=1; else regress_ok=0; fi
grep -E '^(test|ok|not ok) ' "$out/installcheck.log" || true
regress_passed=$(grep -cE '^(test .*\.\.\. ok|ok [0-9]+ )' "$out/installcheck.log" || true)
regress_failed=$(grep -cE '^(test .*\.\.\. FAILED|not ok )' "$out/installcheck.log" || true)
passed=$((passed + regress_passed)); failed=$((failed + regress_failed))
if [ "$regress_ok" -ne 1 ]; then
  [ "$regress_failed" -gt 0 ] || failed=$((failed + 1))
  cat "$out/installcheck.log"
  echo "== regression.diffs"; cat "$out/regression.diffs" "$out/isolation/regression.diffs" 2>/dev/null || true
  echo "== postmaster log (tail)"; tail -n 200 "$out/log/postmaster.log" 2>/dev/null || true
fi

for script in recvlogical restart bigtxn rebuild prefetch; do
  script_log=$(mktemp)
  chmod 644 "$script_log"; chown postgres "$script_log"
  echo "== test/$script.sh"
  if runuser -u postgres -- bash "$src/test/$script.sh" >"$script_log" 2>&1; then script_ok=1; else script_ok=0; fi
  grep -E '^(ok|not ok|#) ' "$script_log" || true   # with the scripts' measurements
  passed=$((passed + $(grep -c '^ok ' "$script_log" || true)))
  failed=$((failed + $(grep -c '^not ok ' "$script_log" || true)))
  if [ "$script_ok" -ne 1 ]; then
    cat "$script_log"
    grep -q '^not ok ' "$script_log" || failed=$((failed + 1))
  fi
  rm -f "$script_log"
done
[ "$regress_ok" -eq 1 ] && rm -rf "$out"

# The benchmark harnesses at their small size: they must keep working.
make -s -C "$repo/bench/floor" >/dev/null && make -s -C "$repo/bench/floor" install >/dev/null
for bench in e2e mix "mix --forms ii --opaque 20" poll spread; do
  log="/tmp/shape_router_${bench// /_}_quick.log"
  # shellcheck disable=SC2086 # the options split into words
  if python3 "$repo/bench/${bench%% *}.py" ${bench#"${bench%% *}"} --quick > "$log" 2>&1; then
    passed=$((passed + 1)); echo "ok - bench/${bench%% *}.py${bench#"${bench%% *}"} --quick"
  else
    failed=$((failed + 1)); echo "not ok - bench/${bench%% *}.py${bench#"${bench%% *}"} --quick"; tail -n 30 "$log"
  fi
done

# The other majors, each in its own chroot; its output has one ok/not ok line a test.
for major in $chroot_majors; do
  echo "== PostgreSQL $major (scripts/chroot.sh $major)"
  chroot_log=$(mktemp)
  if bash "$repo/scripts/chroot.sh" "$major" 2>&1 | tee "$chroot_log"; then chroot_ok=1; else chroot_ok=0; fi
  passed=$((passed + $(grep -c '^ok ' "$chroot_log" || true)))
  failed=$((failed + $(grep -c '^not ok ' "$chroot_log" || true)))
  if [ "$chroot_ok" -ne 1 ] && ! grep -q '^not ok ' "$chroot_log"; then
    failed=$((failed + 1)); echo "not ok - pg$major: scripts/chroot.sh $major failed"
  fi
  rm -f "$chroot_log"
done

echo "shape_router: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
