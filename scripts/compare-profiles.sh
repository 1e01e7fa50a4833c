#!/usr/bin/env bash
# Compares two swref binaries on the same cores: every output (paths and types profiles, census
# text, leaks, top, stacks) must be byte-identical. For refactors that must not change behaviour.
#   scripts/compare-profiles.sh OLD_SWREF NEW_SWREF [WORKDIR]
# The cores are taken once (by OLD) from the test programs under testdata/, run with glibc and
# with jemalloc, mimalloc and tcmalloc preloaded, and kept in WORKDIR for later runs.
set -euo pipefail
old=$(realpath "$1"); new=$(realpath "$2")
work=${3:-/tmp/swref-compare}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$work/bin" "$work/cores"
lib=/usr/lib/x86_64-linux-gnu

build() {  # NAME -> $work/bin/NAME
  local name=$1 out=$work/bin/$1
  [ -x "$out" ] && return 0
  local header=$root/testdata/mallinfo.h
  swiftc -O -g -module-name "$name" -import-objc-header "$header" "$root"/testdata/"$name"/*.swift -o "$out"
}

# name|program|preload|args
cases=(
  "census|census||"
  "paths|paths||"
  "leaks-leaky|leaks||leaky"
  "hierarchy|hierarchy||"
  "atomics|atomics||"
  "datacache|datacache||"
  "tasks|tasks||"
  "dispatch|dispatch||"
  "rawchain|rawchain||"
  "census-jemalloc|census|$lib/libjemalloc.so.2|"
  "census-mimalloc|census|$lib/libmimalloc.so.2|"
  "census-tcmalloc|census|$lib/libtcmalloc_minimal.so.4|"
)

capture() {  # NAME PROGRAM PRELOAD ARGS -> $work/cores/NAME.core
  local name=$1 program=$2 preload=$3 args=$4 core=$work/cores/$1.core
  [ -f "$core" ] && return 0
  build "$program"
  local fifo=$work/$name.out
  rm -f "$fifo"
  # shellcheck disable=SC2086
  LD_PRELOAD=$preload "$work/bin/$program" $args > "$fifo" 2>&1 &
  local pid=$! i
  for i in $(seq 1 300); do grep -q READY "$fifo" 2>/dev/null && break; sleep 0.1; done
  grep -q READY "$fifo" || { echo "$name: never READY"; kill -9 $pid; return 1; }
  "$old" dump "$pid" -o "$core" > /dev/null
  kill -9 $pid; wait $pid 2>/dev/null || true
}

outputs() {  # SWREF NAME DIR
  local swref=$1 name=$2 dir=$3 core=$work/cores/$2.core exe
  exe=$work/bin/${program_of[$name]}
  mkdir -p "$dir"
  # Relative output names: the messages that name them are then the same for both binaries.
  (
    cd "$dir"
    "$swref" core "$exe" "$core" -o paths.pb > attach.txt 2>&1 || echo "exit $?" >> attach.txt
    "$swref" core "$exe" "$core" --view types -o types.pb > /dev/null 2>&1 || true
    "$swref" core "$exe" "$core" --format text > census.txt 2>&1 || true
    "$swref" leaks --core "$exe" "$core" > leaks.txt 2>&1 || echo "exit $?" >> leaks.txt
    "$swref" top paths.pb > top.txt 2>&1 || true
  )
}

declare -A program_of
for c in "${cases[@]}"; do IFS='|' read -r n p _ _ <<< "$c"; program_of[$n]=$p; done

differ=0
for c in "${cases[@]}"; do
  IFS='|' read -r name program preload args <<< "$c"
  capture "$name" "$program" "$preload" "$args"
  outputs "$old" "$name" "$work/old/$name"
  outputs "$new" "$name" "$work/new/$name"
  for f in "$work/old/$name"/*; do
    if cmp -s "$f" "$work/new/$name/$(basename "$f")"; then :; else
      echo "DIFFERS: $name/$(basename "$f")"; differ=1
    fi
  done
  echo "$name: $(ls "$work/old/$name" | wc -l) outputs compared"
done
[ $differ = 0 ] && echo "all outputs identical" || { echo "outputs differ"; exit 1; }
