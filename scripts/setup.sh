#!/usr/bin/env bash
# Installs what swref and its tests need on a bare Debian machine with the Swift toolchain:
# elfutils' libraries (libdw, libelf), zlib, Go (for `go tool pprof`), gdb (for gcore), and the
# allocators the tests run their programs under (jemalloc, mimalloc, tcmalloc), wrk for load,
# Prometheus (the fleet tests scrape `swref serve` with a real one), and
# libc's separate debug symbols (stack frames inside libc are named by them).
set -euo pipefail
packages=(libdw-dev libelf-dev zlib1g-dev golang-go gdb elfutils binutils
          libjemalloc-dev libmimalloc-dev libtcmalloc-minimal4 wrk libc6-dbg prometheus)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
