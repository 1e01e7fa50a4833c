#!/usr/bin/env python3
"""Renders a pprof profile as an SVG flame graph (roots at the top, as pprof's web view does).

Reads the profile with the real pprof (`go tool pprof -raw`), so it shows exactly what pprof sees.
Usage: scripts/flamegraph.py PROFILE OUT.svg [--sample-index 1] [--title TEXT]
"""
import argparse, html, re, subprocess

def read_profile(path):
    raw = subprocess.run(["go", "tool", "pprof", "-raw", path], capture_output=True, text=True, check=True).stdout
    samples_text, rest = raw.split("Locations", 1)
    locations = {}
    for line in rest.split("Mappings")[0].strip().splitlines():
        m = re.match(r"\s*(\d+): 0x0 M=\d+ (.*) :0 s=0", line)
        if m:
            locations[m.group(1)] = m.group(2)
    samples = []
    for line in samples_text.splitlines():
        m = re.match(r"\s*((?:\d+\s+)+\d+): (.*)", line)
        if m:
            values = [int(v) for v in m.group(1).split()]
            frames = [locations[i] for i in reversed(m.group(2).split())]
            samples.append((values, frames))
    return samples

def build_tree(samples, index):
    root = {"name": "all", "value": 0, "children": {}}
    for values, frames in samples:
        node = root
        node["value"] += values[index]
        for frame in frames:
            node = node["children"].setdefault(frame, {"name": frame, "value": 0, "children": {}})
            node["value"] += values[index]
    return root

def human(value):
    for unit in ["B", "KiB", "MiB", "GiB"]:
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"

def render(root, out, title, width=1200, row=18):
    rects = []
    def depth(node):
        return 1 + max((depth(c) for c in node["children"].values()), default=0)
    rows = depth(root)
    def walk(node, x, w, level):
        if w < 0.5:
            return
        hue = 20 + (hash(node["name"]) % 40)
        y = 30 + level * row
        label = node["name"]
        chars = int(w / 7)
        text = label if len(label) <= chars else (label[:max(chars - 1, 0)] + "…" if chars > 3 else "")
        rects.append(f'<g><title>{html.escape(label)} — {html.escape(human(node["value"]))}</title>'
                     f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 1}" fill="hsl({hue},80%,60%)" rx="2"/>'
                     f'<text x="{x + 3:.1f}" y="{y + row - 5}" font-size="11" font-family="monospace">{html.escape(text)}</text></g>')
        cx = x
        for child in sorted(node["children"].values(), key=lambda c: -c["value"]):
            cw = w * child["value"] / node["value"] if node["value"] else 0
            walk(child, cx, cw, level + 1)
            cx += cw
    walk(root, 0, width, 0)
    height = 40 + rows * row
    with open(out, "w") as f:
        f.write(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
                f'<text x="4" y="18" font-size="14" font-family="sans-serif">{html.escape(title)}</text>'
                + "".join(rects) + "</svg>\n")

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("profile")
    parser.add_argument("out")
    parser.add_argument("--sample-index", type=int, default=1)
    parser.add_argument("--title", default="swref")
    args = parser.parse_args()
    render(build_tree(read_profile(args.profile), args.sample_index), args.out, args.title)
