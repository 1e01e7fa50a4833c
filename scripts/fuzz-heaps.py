#!/usr/bin/env python3
"""Hostile-heap fuzzer: cores of real Swift programs, their heaps corrupted in structured ways,
analysed by every swref verb that analyses. Counts crashes (a signal, or swref's own "internal
error" report), hangs (the timeout) and exit statuses per mutation kind.

    scripts/fuzz-heaps.py --swref .build/release/swref --heaps 10000 [--jobs 2] [--core EXE:CORE ...]

Without --core it builds testdata programs (census, paths, leaks, tasks, allocators under glibc and
jemalloc) and dumps a core of each with `swref dump`. Objects are found in each core by their
headers (a metadata pointer into a loaded segment, then a plausible reference count), so the
mutations hit what the analysis reads: metadata pointers, reference counts, array counts and
capacities, dictionary scales and bitmaps, generic metadata on the heap, interior and self pointers.
Crashing cores are kept in --keep for replay.
"""
import argparse, collections, os, random, shutil, struct, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PT_LOAD, PF_W = 1, 2


def load_segments(data):
    """(vaddr, offset, filesz, writable) of every PT_LOAD with bytes in the file."""
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    segments = []
    for i in range(phnum):
        p_type, p_flags, p_offset, p_vaddr, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == PT_LOAD and p_filesz > 0 and p_offset + p_filesz <= len(data):
            segments.append((p_vaddr, p_offset, p_filesz, bool(p_flags & PF_W)))
    return segments


def plausible_refcount(word):
    if word & 0xFFFFFFFF == 0xFFFFFFFF and word >> 63:
        return True  # immortal
    if word >> 62 == 3:
        return True  # side table
    return word >> 63 == 0 and (word >> 1) & 0x7FFFFFFF >= 1 and (word >> 33) & 0x3FFFFFFF < (1 << 20) and not word & (1 << 32)


def find_objects(data, segments, limit=200000):
    """File offsets of words that look like Swift object headers, and of heap metadata they use."""
    def contains(address):
        for vaddr, offset, size, _ in segments:
            if vaddr <= address < vaddr + size:
                return offset + (address - vaddr)
        return None
    objects, heap_metadata = [], set()
    for vaddr, offset, size, writable in segments:
        if not writable:
            continue
        view = memoryview(data)[offset:offset + size - (size % 16)]
        words = view.cast("Q")
        for i in range(0, len(words) - 1, 2):
            metadata, count = words[i], words[i + 1]
            if metadata & 7 or metadata < 0x10000 or not plausible_refcount(count):
                continue
            where = contains(metadata)
            if where is None:
                continue
            objects.append(offset + i * 8)
            if len(objects) >= limit:
                return objects, sorted(heap_metadata)
    # Metadata that lives in writable memory (instantiated generic metadata on the heap).
    for position in objects[:5000]:
        metadata, = struct.unpack_from("<Q", data, position)
        where = contains(metadata)
        if where is not None:
            for vaddr, offset, size, writable in segments:
                if writable and offset <= where < offset + size:
                    heap_metadata.add(where)
    return objects, sorted(heap_metadata)


def address_of(segments, position):
    for vaddr, offset, size, _ in segments:
        if offset <= position < offset + size:
            return vaddr + position - offset
    return 0


KINDS = ["random-words", "metadata-swap", "metadata-garbage", "refcount", "array-count-capacity",
         "dictionary-scale-bitmap", "generic-metadata-fields", "interior-pointer", "self-cycle", "bytes-flipped"]


def mutate(rng, kind, data, segments, objects, heap_metadata):
    """Writes the mutation into `data` (a bytearray); returns the (position, old bytes) to undo."""
    undo = []

    def put(position, value):
        if 0 <= position <= len(data) - 8:
            undo.append((position, bytes(data[position:position + 8])))
            struct.pack_into("<Q", data, position, value & 0xFFFFFFFFFFFFFFFF)

    def word(position):
        return struct.unpack_from("<Q", data, position)[0] if 0 <= position <= len(data) - 8 else 0

    def interesting():
        return rng.choice([0, 1, 0x7FFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF, 1 << 62, 1 << 40, rng.getrandbits(64),
                           rng.getrandbits(32), 0x8000000000000000, 0xFFFFFFFFFFFFFFF0])

    if not objects:
        kind = "bytes-flipped"
    count = rng.randint(1, 8)
    for _ in range(count):
        target = rng.choice(objects) if objects else 0
        if kind == "random-words":
            put(target + 8 * rng.randint(0, 12), rng.getrandbits(64))
        elif kind == "metadata-swap":
            other = rng.choice(objects)
            a, b = word(target), word(other)
            put(target, b)
            put(other, a)
        elif kind == "metadata-garbage":
            segment = rng.choice(segments)
            put(target, segment[0] + (rng.randrange(segment[2]) & ~7))
        elif kind == "refcount":
            put(target + 8, rng.choice([interesting(), word(target + 8) | (1 << 32), (1 << 63) | (1 << 62) | rng.getrandbits(40),
                                        0xFFFFFFFF | (1 << 63)]))
        elif kind == "array-count-capacity":
            put(target + 16 + 8 * rng.randint(0, 1), interesting())
        elif kind == "dictionary-scale-bitmap":
            put(target + 16 + 8 * rng.randint(0, 6), interesting())
        elif kind == "generic-metadata-fields":
            if heap_metadata:
                put(rng.choice(heap_metadata) + 8 * rng.randint(0, 24), interesting())
            else:
                put(target + 8 * rng.randint(2, 8), interesting())
        elif kind == "interior-pointer":
            other = rng.choice(objects)
            put(target + 8 * rng.randint(2, 8), address_of(segments, other) + rng.randint(1, 64))
        elif kind == "self-cycle":
            put(target + 8 * rng.randint(2, 8), address_of(segments, target))
        else:
            position = rng.randrange(len(data))
            undo.append((position, bytes(data[position:position + 1])))
            data[position] ^= rng.randint(1, 255)
    return undo


def verbs(exe, core, out):
    return [
        ["core", exe, core, "--format", "text"],
        ["core", exe, core, "-o", out],
        ["leaks", "--core", exe, core],
        ["top", "--core", exe, core],
        ["core", exe, core, "-o", out, "--attribution", "first-path", "--view", "types"],
    ]


def build_and_dump(swref, work):
    """Cores of testdata programs, each with the executable it came from."""
    header = os.path.join(ROOT, "testdata", "mallinfo.h")
    programs = [("census", ["100", "20"], [], "mallinfo.h"), ("paths", [], [], "mallinfo.h"), ("leaks", ["leaky"], [], "mallinfo.h"),
                ("tasks", [], [], "mallinfo.h"),
                ("allocators", ["300"], [], "allocator_stats.h"), ("allocators", ["300"], ["-Xlinker", "-ljemalloc"], "allocator_stats.h")]
    cores = []
    for index, (name, arguments, flags, header_name) in enumerate(programs):
        directory = os.path.join(ROOT, "testdata", name)
        exe = os.path.join(work, f"{name}-{index}")
        sources = sorted(os.path.join(directory, f) for f in os.listdir(directory) if f.endswith(".swift"))
        header = os.path.join(directory, header_name) if header_name != "mallinfo.h" else os.path.join(ROOT, "testdata", "mallinfo.h")
        subprocess.run(["swiftc", "-O", "-module-name", name, "-import-objc-header", header] + sources + flags + ["-o", exe], check=True)
        process = subprocess.Popen([exe] + arguments, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            deadline = time.time() + 60
            while time.time() < deadline:
                line = process.stdout.readline()
                if not line or line.startswith("READY"):
                    break
            core = os.path.join(work, f"{name}-{index}.core")
            subprocess.run([swref, "dump", str(process.pid), "-o", core], check=True, capture_output=True)
            cores.append((exe, core))
        finally:
            process.kill()
            process.wait()
    return cores


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--swref", default=os.path.join(ROOT, ".build", "release", "swref"))
    parser.add_argument("--heaps", type=int, default=1000, help="mutated heaps to analyse")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--core", action="append", default=[], help="EXE:CORE to mutate (default: build testdata programs)")
    parser.add_argument("--keep", default="/tmp/swref-fuzz-crashes", help="where crashing and hanging cores are kept")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="swref-fuzz-")
    started = time.time()
    cores = [tuple(c.split(":", 1)) for c in args.core] or build_and_dump(args.swref, work)
    sources = []
    for exe, core in cores:
        data = open(core, "rb").read()
        segments = load_segments(data)
        objects, heap_metadata = find_objects(data, segments)
        sources.append((exe, core, data, segments, objects, heap_metadata))
        print(f"{os.path.basename(core)}: {len(data) >> 20} MiB, {len(objects)} object headers, {len(heap_metadata)} heap metadata", flush=True)

    stats = collections.defaultdict(lambda: collections.Counter())
    lock = threading.Lock()
    os.makedirs(args.keep, exist_ok=True)

    def worker(job):
        rng = random.Random(args.seed * 1000 + job)
        copies = {}
        for n in range(job, args.heaps, args.jobs):
            exe, core, data, segments, objects, heap_metadata = sources[n % len(sources)]
            if core not in copies:
                path = os.path.join(work, f"job{job}-{os.path.basename(core)}")
                shutil.copyfile(core, path)
                copies[core] = (path, bytearray(data))
            path, mutable = copies[core]
            kind = KINDS[n % len(KINDS)]
            undo = mutate(rng, kind, mutable, segments, objects, heap_metadata)
            with open(path, "r+b") as f:
                for position, _ in undo:
                    f.seek(position)
                    f.write(mutable[position:position + 8])
            verb = verbs(exe, path, os.path.join(work, f"job{job}.pb.gz"))[(n // len(KINDS)) % 5]
            try:
                result = subprocess.run([args.swref] + verb, capture_output=True, text=True, timeout=args.timeout)
                crashed = result.returncode < 0 or "internal error" in result.stderr or result.returncode not in (0, 1, 2, 125)
                outcome = "crash" if crashed else f"exit {result.returncode}"
            except subprocess.TimeoutExpired:
                outcome = "hang"
            if outcome in ("crash", "hang"):
                kept = os.path.join(args.keep, f"{outcome}-{n}-{kind}.core")
                shutil.copyfile(path, kept)
                print(f"{outcome}: heap {n} ({kind}, {' '.join(verb[:1])}) kept as {kept}", flush=True)
            with lock:
                stats[kind][outcome] += 1
                stats[kind]["tried"] += 1
            for position, old in reversed(undo):
                mutable[position:position + len(old)] = old
            with open(path, "r+b") as f:
                for position, old in reversed(undo):
                    f.seek(position)
                    f.write(old)

    threads = [threading.Thread(target=worker, args=(job,)) for job in range(args.jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    total = collections.Counter()
    print(f"\n{'mutation kind':26} {'tried':>6} {'crash':>6} {'hang':>5}  exit statuses")
    for kind in KINDS:
        counter = stats[kind]
        total.update(counter)
        exits = ", ".join(f"{k.split()[1]}: {v}" for k, v in sorted(counter.items()) if k.startswith("exit"))
        print(f"{kind:26} {counter['tried']:6} {counter['crash']:6} {counter['hang']:5}  {exits}")
    print(f"{'all':26} {total['tried']:6} {total['crash']:6} {total['hang']:5}  in {time.time() - started:.0f} s")
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if total["crash"] or total["hang"] else 0)


if __name__ == "__main__":
    main()
