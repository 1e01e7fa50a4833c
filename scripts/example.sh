#!/usr/bin/env bash
# Sets up, builds swref, starts an example Swift program and takes its heap census.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product swref
work=$(mktemp -d)
swiftc -O -module-name census -import-objc-header testdata/mallinfo.h testdata/census/main.swift -o "$work/census"
"$work/census" 100000 5000 > "$work/census.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
until grep -q READY "$work/census.log"; do sleep 0.1; done
.build/release/swref attach "$pid" --format text --limit 15
.build/release/swref attach "$pid" -o swref.out
go tool pprof -top -sample_index=inuse_space swref.out | head -20
echo "View it in a browser: go tool pprof -http=: swref.out"
