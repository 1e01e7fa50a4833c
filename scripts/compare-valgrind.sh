#!/usr/bin/env bash
# Runs testdata/leaks (leaky, exiting at once) under valgrind's memcheck and under `swref run`,
# and prints what each finds and how long each takes. Usage: scripts/compare-valgrind.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
swift build -c release --product swref >/dev/null
swiftc -O -g -module-name leaks -import-objc-header testdata/mallinfo.h testdata/leaks/main.swift -o "$work/leaks" 2>/dev/null

now() { date +%s.%N; }
start=$(now); "$work/leaks" leaky exit 0 >/dev/null; plain=$(echo "$(now) - $start" | bc)

start=$(now)
valgrind --leak-check=full --show-leak-kinds=definite,indirect --log-file="$work/valgrind.log" "$work/leaks" leaky exit 0 >/dev/null
valgrind_time=$(echo "$(now) - $start" | bc)

start=$(now)
.build/release/swref run --json "$work/swref.json" -- "$work/leaks" leaky exit 0 >/dev/null 2>"$work/swref.txt"
swref_time=$(echo "$(now) - $start" | bc)

echo "program alone:        ${plain}s"
echo "valgrind memcheck:    ${valgrind_time}s"
grep -E "definitely lost|indirectly lost|possibly lost|still reachable" "$work/valgrind.log" | sed 's/^==[0-9]*==/   /'
echo "swref run:            ${swref_time}s"
sed 's/^/    /' "$work/swref.txt"
