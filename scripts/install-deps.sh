#!/usr/bin/env bash
# Installs the Debian packages shape_router builds and tests with (as root).
# The server and its headers are installed in one call so their minor versions agree.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "install-deps.sh: run as root (it uses apt-get)" >&2; exit 1; }

packages=(postgresql-15 postgresql-server-dev-15 postgresql-client-15 libxxhash-dev
          googletest libgtest-dev libbenchmark-dev libabsl-dev postgresql-15-wal2json python3 g++ make clang-14 llvm-14-dev libipc-run-perl
          debootstrap)   # debootstrap: scripts/chroot.sh, the PostgreSQL 17 and 18 chroots
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
server=$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null || true)
headers=$(dpkg-query -W -f='${Version}' postgresql-server-dev-15 2>/dev/null || true)
if [ ${#missing[@]} -gt 0 ] || [ "$server" != "$headers" ]; then
  echo "install-deps: installing ${missing[*]:-} (server ${server:-none}, headers ${headers:-none})"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
