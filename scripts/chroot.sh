#!/usr/bin/env bash
# Builds and tests shape_router against PostgreSQL 17 or 18 in a Debian chroot, as root:
#   bash scripts/chroot.sh 17     # Debian trixie, postgresql-17
#   bash scripts/chroot.sh 18     # Debian sid, postgresql-18
# Neither major is packaged for bookworm, and installing a newer suite's server into
# bookworm would mix C libraries, so each major gets a chroot of the suite that carries it.
#
# The chroot is made once with `debootstrap --variant=minbase` under
# $SHAPE_ROUTER_CHROOTS/<suite> (default /var/cache/shape_router/chroots) and reused
# afterwards; a marker written only after a complete setup tells a finished chroot from a
# half-made one, which is removed and made again. No service starts inside it
# (policy-rc.d exits 101, and no main cluster is created).
#
# Each run copies this source tree into the chroot, builds it with -Werror against that
# major's pg_config, installs it there, then runs the pg_regress suite and the script
# tests test/{recvlogical,restart,bigtxn,rebuild,standby}.sh as the postgres user
# (standby.sh, decoding on a physical standby, needs 16+: the host's 15 does not run
# it). It prints one `ok - pgN ...` / `not ok - pgN ...` line per test (what
# scripts/test.sh counts), `#` lines with timings and measurements, and exits non-zero
# if anything failed.
#
# Mounts (proc, sys, /dev, a new devpts instance, a tmpfs on /dev/shm) live in a private
# mount namespace of this script and are unmounted on exit.
set -euo pipefail

usage() { echo "usage: $0 17|18" >&2; exit 2; }
[ $# -eq 1 ] || usage
major=$1
case "$major" in
  17) suite=trixie ;;
  18) suite=sid ;;
  *) usage ;;
esac
[ "$(id -u)" -eq 0 ] || { echo "chroot.sh: run as root (debootstrap, mount, chroot)" >&2; exit 1; }
repo=$(cd "$(dirname "$0")/.." && pwd)

# Mounts made below must never leak into the host's namespace: run in a private one.
if [ -z "${SHAPE_ROUTER_CHROOT_NS:-}" ]; then
  SHAPE_ROUTER_CHROOT_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
fi

base=${SHAPE_ROUTER_CHROOTS:-/var/cache/shape_router/chroots}
root=$base/$suite
marker=$root/.shape_router_ready
pg_config=/usr/lib/postgresql/$major/bin/pg_config
packages=(postgresql-"$major" postgresql-server-dev-"$major" postgresql-client-"$major"
          libxxhash-dev libicu-dev g++ make python3)
tag="pg$major"
passed=0; failed=0
ok() { passed=$((passed + 1)); echo "ok - $tag: $*"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $tag: $*"; }
note() { echo "# $tag: $*"; }
now() { date +%s; }

# Commands inside the chroot get a clean environment, not the caller's.
in_chroot() {
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive chroot "$root" "$@"
}
as_postgres() { in_chroot runuser -u postgres -- env PG_CONFIG="$pg_config" "$@"; }

mounts=()   # innermost last
mount_all() {
  mount -t proc proc "$root/proc"; mounts+=("$root/proc")
  mount -t sysfs sysfs "$root/sys"; mounts+=("$root/sys")
  mount --bind /dev "$root/dev"; mounts+=("$root/dev")
  mkdir -p "$root/dev/pts" "$root/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$root/dev/pts"; mounts+=("$root/dev/pts")
  mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"; mounts+=("$root/dev/shm")
}
# Processes left inside the chroot (a server of a test that was interrupted) would keep
# its mounts busy; they are this script's own descendants.
kill_leftovers() {
  local p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    [ "$r" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null || true
  done
}
unmount_all() {
  local i
  [ ${#mounts[@]} -gt 0 ] || return 0
  kill_leftovers
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" || true
  done
  mounts=()
}
trap unmount_all EXIT
trap 'exit 1' INT TERM

# Anything mounted under a directory must be gone before it is removed.
remove_tree() {
  local m
  for m in $(awk -v r="$1/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do umount -l "$m"; done
  rm -rf --one-file-system "$1"
}

setup_chroot() {
  note "creating the $suite chroot in $root"
  local attempt
  for attempt in 1 2; do   # a second try after a network failure
    remove_tree "$root"
    debootstrap --variant=minbase "$suite" "$root" ${SHAPE_ROUTER_MIRROR:+"$SHAPE_ROUTER_MIRROR"} \
      > "$base/$suite.debootstrap.log" 2>&1 && break
    tail -n 30 "$base/$suite.debootstrap.log"
    [ "$attempt" -lt 2 ] || return 1
  done
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  mkdir -p "$root/etc/postgresql-common/createcluster.d"
  echo "create_main_cluster = false" > "$root/etc/postgresql-common/createcluster.d/shape_router.conf"
}

install_packages() {
  local apt=(apt-get -o Acquire::Retries=3)
  local update=("${apt[@]}" -qq update)
  # sid's Release file can be past its Valid-Until on the mirror.
  [ "$suite" = sid ] && update=("${apt[@]}" -qq -o Acquire::Check-Valid-Until=false update)
  in_chroot "${update[@]}"
  in_chroot "${apt[@]}" install -y -qq --no-install-recommends "${packages[@]}" > "$base/$suite.apt.log" 2>&1 \
    || { tail -n 30 "$base/$suite.apt.log"; return 1; }
  in_chroot id -u postgres >/dev/null 2>&1 || in_chroot useradd --system --home-dir /var/lib/postgresql postgres
}

packages_missing() {
  local p
  for p in "${packages[@]}"; do
    in_chroot dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || return 0
  done
  return 1
}

# ---- the chroot: reused when complete, made (again) otherwise ----
t0=$(now)
mkdir -p "$base"
exec 9> "$base/$suite.lock"
flock 9   # one run per chroot at a time: a second one waits here
if [ -f "$marker" ]; then
  mount_all
  if packages_missing; then note "installing packages missing from the chroot"; install_packages; fi
  note "chroot $root reused ($(( $(now) - t0 )) s)"
else
  setup_chroot
  mount_all
  install_packages
  date -u +%FT%TZ > "$marker"
  note "chroot $root created ($(( $(now) - t0 )) s)"
fi
note "$(in_chroot "$pg_config" --version), $(in_chroot g++ --version | head -n 1)"

# ---- the source tree, copied without build products ----
src=/srv/shape_router
out=/var/tmp/shape_router_regress
rm -rf --one-file-system "$root$src" "$root$out"
mkdir -p "$root$src"
tar -C "$repo" --exclude=.git --exclude='*.o' --exclude='*.bc' --exclude='*.so' \
  --exclude=./test/unit/bin --exclude=./bench/bin --exclude=./tmp_check --exclude=./results \
  --exclude=./log --exclude='__pycache__' --exclude='regression.*' --exclude=./logical.conf \
  -cf - . | tar -C "$root$src" -xf -
in_chroot chown -R postgres:postgres "$src"

# ---- build and install with -Werror (the Makefile's flags) ----
t0=$(now)
build_log=$root/var/tmp/shape_router_build.log
if in_chroot make -s -C "$src" -j"$(nproc)" PG_CONFIG="$pg_config" > "$build_log" 2>&1 \
   && in_chroot make -s -C "$src" install PG_CONFIG="$pg_config" >> "$build_log" 2>&1; then
  ok "build with -Werror and install"
  note "build and install: $(( $(now) - t0 )) s"
else
  not_ok "build with -Werror and install"
  cat "$build_log"
  echo "# $tag: $passed passed, $failed failed"
  exit 1
fi
in_chroot chown -R postgres:postgres "$src"

# From 16 on, PGXS builds with -fvisibility=hidden: every entry point PostgreSQL looks up
# must still be exported (the module magic, _PG_init, _PG_output_plugin_init, and each
# SQL-callable function with its pg_finfo_ record).
exported=$(in_chroot nm -D --defined-only "$src/shape_router.so" | awk '{print $3}')
hidden=()
for sym in Pg_magic_func _PG_init _PG_output_plugin_init \
           $(grep -o "'MODULE_PATHNAME', *'[a-z_0-9]*'" "$repo/shape_router--0.1.sql" | sed -E "s/.*, *'(.*)'/\1 pg_finfo_\1/"); do
  grep -qx "$sym" <<< "$exported" || hidden+=("$sym")
done
if [ ${#hidden[@]} -eq 0 ]; then ok "every entry point is exported"; else not_ok "entry points not exported: ${hidden[*]}"; fi

# ---- the pg_regress suite (as scripts/test.sh runs it) ----
t0=$(now)
mkdir -p "$root$out"; in_chroot chown postgres:postgres "$out"
if as_postgres make -s -C "$src" installcheck PG_CONFIG="$pg_config" TEST_OUTPUT="$out" \
     > "$root$out/installcheck.log" 2>&1; then regress_ok=1; else regress_ok=0; fi
# pg_regress 15 prints "test NAME ... ok  12 ms"; 16 and later "ok 1  - NAME  12 ms".
while IFS= read -r line; do
  case "$line" in
    "test "*"... ok"*) ok "regress $(echo "$line" | awk '{print $2}')" ;;
    "test "*"... FAILED"*|"test "*"... failed"*) not_ok "regress $(echo "$line" | awk '{print $2}')" ;;
    "ok "*) ok "regress $(echo "$line" | sed -E 's/^ok [0-9]+ +[-+] +([^ ]+).*/\1/')" ;;
    "not ok "*) not_ok "regress $(echo "$line" | sed -E 's/^not ok [0-9]+ +[-+] +([^ ]+).*/\1/')" ;;
  esac
done < "$root$out/installcheck.log"
note "pg_regress: $(( $(now) - t0 )) s"
if [ "$regress_ok" -ne 1 ]; then
  grep -qE '^(not ok |test .*\.\.\. FAILED)' "$root$out/installcheck.log" || not_ok "pg_regress (make installcheck failed)"
  cat "$root$out/installcheck.log"
  echo "== regression.diffs"; cat "$root$out/regression.diffs" "$root$out/isolation/regression.diffs" 2>/dev/null || true
  echo "== postmaster log (tail)"; tail -n 200 "$root$out/log/postmaster.log" 2>/dev/null || true
fi

# ---- the script tests, each on its own throwaway cluster ----
for script in recvlogical restart bigtxn rebuild standby; do
  t0=$(now)
  log=$root/var/tmp/shape_router_$script.log
  if as_postgres bash "$src/test/$script.sh" > "$log" 2>&1; then script_ok=1; else script_ok=0; fi
  while IFS= read -r line; do
    case "$line" in
      "ok - "*) ok "$script: ${line#ok - }" ;;
      "not ok - "*) not_ok "$script: ${line#not ok - }" ;;
      "# "*) note "$script: ${line#\# }" ;;
    esac
  done < "$log"
  note "test/$script.sh: $(( $(now) - t0 )) s"
  if [ "$script_ok" -ne 1 ]; then
    grep -q '^not ok ' "$log" || not_ok "test/$script.sh exited non-zero"
    cat "$log"
  fi
done

echo "# $tag: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
