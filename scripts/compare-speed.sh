#!/usr/bin/env bash
# Two swref binaries on one benchmark target, turn about: the median of each phase of
# `attach --timings` for each, and new/old. For refactors that must not cost speed.
#   scripts/compare-speed.sh OLD_SWREF NEW_SWREF [RUNS] [OBJECTS] [PAYLOAD]
# Prints medians in ms, and swref-cpu (user + system, from /usr/bin/time: Debian package `time`). Defaults: 4 runs each on 5 M records with 80-byte payloads (10 M blocks, about 1 GiB).
set -euo pipefail
old=$(realpath "$1"); new=$(realpath "$2"); runs=${3:-4}; objects=${4:-5000000}; payload=${5:-80}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/swref-speed.XXXXXX)
trap 'kill $target 2>/dev/null || true; rm -rf "$work"' EXIT
swiftc -O -module-name bench "$root/testdata/bench/main.swift" -o "$work/bench"
"$work/bench" "$objects" "$payload" --no-heartbeat > "$work/target.out" &
target=$!
for _ in $(seq 1 600); do grep -q READY "$work/target.out" && break; sleep 0.5; done
grep -q READY "$work/target.out" || { echo "the target never got ready"; exit 1; }
for run in $(seq 1 "$runs"); do
  for which in old new; do
    binary=$old; [ $which = new ] && binary=$new
    # Wall times per phase from --timings, and swref's CPU time (user + system), which a busy
    # shared machine disturbs less than wall time.
    /usr/bin/time -f "cpu=%U+%S" "$binary" attach "$target" --timings -o "$work/$which.pb" 2> "$work/err" > /dev/null
    echo "$which $(grep '^swref: timings' "$work/err") $(grep '^cpu=' "$work/err")" >> "$work/timings"
  done
done
python3 - "$work/timings" <<'PY'
import sys, statistics, collections
phases = {"old": collections.defaultdict(list), "new": collections.defaultdict(list)}
order = []
for line in open(sys.argv[1]):
    which, _, _, *fields = line.split()
    total = 0.0
    for field in fields:
        name, value = field.split("=")
        if name == "cpu":
            phases[which]["swref-cpu"].append(sum(float(x) for x in value.split("+")) * 1000)
            continue
        ms = float(value.rstrip("ms")) if value.endswith("ms") else float(value.rstrip("s")) * 1000
        phases[which][name].append(ms)
        if name != "capture": total += ms
        if name not in order: order.append(name)
    phases[which]["analysis"].append(total)
order += ["analysis", "swref-cpu"]
print(f"{'phase':<24}{'old ms':>10}{'new ms':>10}{'new/old':>9}")
for name in order:
    o, n = statistics.median(phases["old"][name]), statistics.median(phases["new"][name])
    print(f"{name:<24}{o:>10.1f}{n:>10.1f}{(n / o if o else float('nan')):>8.2f}x")
PY
