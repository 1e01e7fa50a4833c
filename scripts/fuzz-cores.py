#!/usr/bin/env python3
"""Hostile-core fuzzer: cores of real Swift programs damaged the ways issue #19 lists — the core's
own structure (headers, program headers, notes, NT_FILE names and ranges, values at the limits,
registers, auxv), the allocator's chunk headers, the Swift metadata the reflection library reads
(class metadata words, type and field descriptors, mangled names) and the heap mutations of
scripts/fuzz-heaps.py — each analysed by one swref verb, with a per-core timeout.

    scripts/fuzz-cores.py --swref .build/debug/swref --cores 5000 [--jobs 2] [--core EXE:CORE ...]

Counts per mutation kind: crashes (a signal, swref's "internal error" report, an undocumented exit
status), hangs (the timeout), and empty clean heaps (exit 0 or 1 with no block or no object: a
damaged heap must be read, or refused with 125, never reported empty). Each analysis gets
--memory-limit of address space: a runaway allocation fails and counts as a crash. Failing cores
are kept in --keep for replay; the exit status is 1 when any was found.
"""
import argparse, collections, importlib.util, os, random, re, resource, shutil, struct, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("fuzz_heaps", os.path.join(ROOT, "scripts", "fuzz-heaps.py"))
heaps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(heaps)

PT_LOAD, PT_NOTE = 1, 4
NT_PRSTATUS, NT_AUXV, NT_FILE = 1, 6, 0x46494C45
PR_REG = 112  # offset of pr_reg in elf_prstatus (x86_64)
REG = {"rbp": 4, "rip": 16, "rsp": 19, "fs_base": 21}
TOP = 1 << 64
LIMITS = [0, 1, (1 << 63) - 1, 1 << 63, TOP - 1, TOP - 8, TOP - 0x1000, 0x7FFFFFFFF000, 0xFFFF800000000000]

CORE_KINDS = ["truncate", "elf-header", "program-headers", "notes-flipped",
              "nt-file-shuffle", "nt-file-swap", "nt-file-replace", "nt-file-range-limits",
              "note-offset-limits", "load-offset-limits", "fs-base-top", "registers", "auxv",
              "chunk-header", "class-metadata-words", "type-descriptor-words", "field-descriptor-words",
              "mangled-name-bytes"]
KINDS = CORE_KINDS + heaps.KINDS


class Core:
    """What the mutations need to know about one core, found once."""

    def __init__(self, exe, path):
        self.exe, self.path = exe, path
        self.data = open(path, "rb").read()
        d = self.data
        self.phoff, = struct.unpack_from("<Q", d, 32)
        self.phentsize, self.phnum = struct.unpack_from("<HH", d, 54)
        self.segments = heaps.load_segments(d)
        self.notes_phdr, self.loads = None, []
        for i in range(self.phnum):
            p_type, = struct.unpack_from("<I", d, self.phoff + i * self.phentsize)
            if p_type == PT_NOTE and self.notes_phdr is None:
                self.notes_phdr = self.phoff + i * self.phentsize
            elif p_type == PT_LOAD:
                self.loads.append(self.phoff + i * self.phentsize)
        self.notes = []  # (type, desc position, desc size)
        if self.notes_phdr is not None:
            offset, = struct.unpack_from("<Q", d, self.notes_phdr + 8)
            size, = struct.unpack_from("<Q", d, self.notes_phdr + 32)
            position, end = offset, offset + size
            while position + 12 <= end:
                namesz, descsz, ntype = struct.unpack_from("<III", d, position)
                desc = position + 12 + ((namesz + 3) & ~3)
                self.notes.append((ntype, desc, descsz))
                position = desc + ((descsz + 3) & ~3)
        self.objects, self.heap_metadata = heaps.find_objects(d, self.segments)
        self.file_note = next(((desc, size) for t, desc, size in self.notes if t == NT_FILE), None)
        self.prstatus = [desc for t, desc, _ in self.notes if t == NT_PRSTATUS]
        self.auxv = next(((desc, size) for t, desc, size in self.notes if t == NT_AUXV), None)
        self.classes, self.descriptors, self.field_descriptors, self.names = self.swift_metadata()

    def position(self, address):
        for vaddr, offset, size, _ in self.segments:
            if vaddr <= address < vaddr + size:
                return offset + address - vaddr
        return None

    def word(self, position):
        return struct.unpack_from("<Q", self.data, position)[0]

    def relative(self, position):
        """The target of the relative pointer (i32) at a file position, as a file position."""
        delta, = struct.unpack_from("<i", self.data, position)
        address = heaps.address_of(self.segments, position)
        return self.position(address + delta) if delta and address else None

    def swift_metadata(self):
        """File positions of class metadata the heap's objects use, their type descriptors, field
        descriptors, and the mangled names those point to."""
        classes, descriptors, fields, names = set(), set(), set(), set()
        for header in self.objects[:20000]:
            metadata = self.position(self.word(header))
            if metadata is None or metadata + 64 > len(self.data) or self.word(metadata) != 0:
                continue
            classes.add(metadata)
            descriptor = self.position(self.word(metadata + 40))
            if descriptor is None or descriptor + 24 > len(self.data):
                continue
            descriptors.add(descriptor)
            name = self.relative(descriptor + 8)
            if name is not None:
                names.add(name)
            field = self.relative(descriptor + 16)
            if field is not None and field + 16 <= len(self.data):
                fields.add(field)
                type_name = self.relative(field)
                if type_name is not None:
                    names.add(type_name)
        return sorted(classes), sorted(descriptors), sorted(fields), sorted(names)

    def file_entries(self):
        """NT_FILE: (count, position of the ranges, position and bytes of the names)."""
        desc, size = self.file_note
        count, = struct.unpack_from("<Q", self.data, desc)
        names_at = desc + 16 + 24 * count
        if count > 1 << 16 or names_at > desc + size:
            return None
        names = bytes(self.data[names_at:desc + size]).split(b"\0")[:count]
        return count, desc + 16, names_at, names


def mutate(rng, kind, data, core):
    """Writes one mutation of `kind` into `data` (a bytearray copy of the core); returns the kind
    actually applied (a core without what the kind needs gets flipped bytes instead)."""
    def put(position, value, size=8):
        if 0 <= position <= len(data) - size:
            struct.pack_into("<Q" if size == 8 else "<I", data, position, value & ((1 << (8 * size)) - 1))

    def flip(start, length, times):
        for _ in range(times):
            data[start + rng.randrange(length)] ^= rng.randint(1, 255)

    def interesting():
        return rng.choice(LIMITS + [rng.getrandbits(64), rng.getrandbits(32), rng.getrandbits(16)])

    entries = core.file_entries() if core.file_note else None
    if kind == "truncate":
        del data[rng.randrange(len(data)):]
    elif kind == "elf-header":
        flip(0, 64, rng.randint(1, 4))
    elif kind == "program-headers":
        flip(core.phoff, core.phnum * core.phentsize, rng.randint(1, 8))
    elif kind == "notes-flipped" and core.notes:
        _, desc, size = rng.choice(core.notes)
        flip(desc, max(size, 1), rng.randint(1, 16))
    elif kind in ("nt-file-shuffle", "nt-file-swap", "nt-file-replace") and entries and len(entries[3]) > 1:
        count, _, names_at, names = entries
        names = list(names)
        if kind == "nt-file-shuffle":
            rng.shuffle(names)
        elif kind == "nt-file-swap":
            i, j = rng.sample(range(len(names)), 2)
            names[i], names[j] = names[j], names[i]
        else:
            # Another file, or none, of the same length: slashes in front keep the path the same.
            i = rng.randrange(len(names))
            other = rng.choice([b"/bin/ls", b"/usr/lib/x86_64-linux-gnu/libc.so.6", b"/etc/passwd", b"/dev/zero", b"/proc/self/mem",
                                b"/nonexistent", b"/tmp"] + names)
            names[i] = (b"/" * max(0, len(names[i]) - len(other)) + other)[:max(len(names[i]), 1)]
        blob = b"\0".join(names) + b"\0"
        data[names_at:names_at + len(blob)] = blob
    elif kind == "nt-file-range-limits" and entries:
        count, ranges, _, _ = entries
        for _ in range(rng.randint(1, 3)):
            entry = ranges + 24 * rng.randrange(max(count, 1))
            put(entry + 8 * rng.randint(0, 2), interesting())
        if rng.random() < 0.3:
            put(core.file_note[0], rng.choice([0, 1, count + 1, 1 << 32, TOP - 1]))
    elif kind == "note-offset-limits" and core.notes_phdr is not None:
        put(core.notes_phdr + 8, rng.choice([1 << 63, TOP - 1, TOP - 12, len(data), len(data) - 4]))
        if rng.random() < 0.5:
            put(core.notes_phdr + 32, rng.choice([0, 12, 1 << 63, TOP - 1]))
    elif kind == "load-offset-limits" and core.loads:
        for _ in range(rng.randint(1, 3)):
            phdr = rng.choice(core.loads)
            put(phdr + rng.choice([8, 16, 32, 40]), interesting())
    elif kind == "fs-base-top" and core.prstatus:
        put(rng.choice(core.prstatus) + PR_REG + 8 * REG["fs_base"], rng.choice([TOP - 8, TOP - 0x10, TOP - 0x1000, 1 << 63, TOP - 1]))
    elif kind == "registers" and core.prstatus:
        for _ in range(rng.randint(1, 4)):
            put(rng.choice(core.prstatus) + PR_REG + 8 * rng.choice(list(REG.values()) + list(range(27))), interesting())
    elif kind == "auxv" and core.auxv:
        desc, size = core.auxv
        for _ in range(rng.randint(1, 3)):
            put(desc + 16 * rng.randrange(max(size // 16, 1)) + 8 * rng.randint(0, 1), interesting())
    elif kind == "chunk-header" and core.objects:
        # One glibc chunk size word (the word before an object's header).
        put(rng.choice(core.objects) - 8, rng.choice([0, 1, 0x11, 0x20, 0x21, 0x7FFFFFFF0, TOP - 0x10, rng.getrandbits(20) | 1]))
    elif kind == "class-metadata-words" and core.classes:
        for _ in range(rng.randint(1, 3)):
            metadata = rng.choice(core.classes)
            offset = rng.choice([0, 8, 16, 20, 24, 28, 40, 40, 48, 56, 64, 72, 80, 88, 96])
            if offset in (8, 40) and rng.random() < 0.5:
                # Another class's, another descriptor's, a name's: a pointer to the wrong kind of thing.
                target = rng.choice(core.classes + core.descriptors + core.names + core.field_descriptors)
                put(metadata + offset, heaps.address_of(core.segments, target) + rng.choice([0, 0, 4, 8, 1]))
            elif offset in (16, 20, 24, 28):
                put(metadata + offset, interesting(), 4)
            else:
                put(metadata + offset, interesting())
    elif kind == "type-descriptor-words" and core.descriptors:
        for _ in range(rng.randint(1, 3)):
            descriptor = rng.choice(core.descriptors)
            offset = rng.choice([0, 4, 8, 8, 12, 16, 16, 20, 24, 28, 32, 36, 40])
            value = rng.choice([0, 1, 0x7FFFFFFF, 0x80000000, rng.randint(-64, 64), rng.getrandbits(32), rng.getrandbits(12)])
            old, = struct.unpack_from("<i", data, descriptor + offset) if descriptor + offset + 4 <= len(data) else (0,)
            put(descriptor + offset, value if rng.random() < 0.5 else old + rng.randint(-256, 256), 4)
    elif kind == "field-descriptor-words" and core.field_descriptors:
        for _ in range(rng.randint(1, 3)):
            field = rng.choice(core.field_descriptors)
            offset = rng.choice([0, 4, 8, 10, 12, 16, 20, 24, 28, 32, 36, 40])
            put(field + offset, rng.choice([0, 1, 0xFFFF, 0x7FFFFFFF, 0x80000000, rng.getrandbits(32), rng.getrandbits(8)]), 4)
    elif kind == "mangled-name-bytes" and core.names:
        for _ in range(rng.randint(1, 4)):
            name = rng.choice(core.names)
            at = name + rng.randrange(16)
            if at < len(data):
                data[at] = rng.choice([0, 1, 2, 0x17, 0x18, 0x1f, 0xff, ord("$"), ord("_"), ord("S"), ord("y"), ord("G"), rng.randrange(256)])
    elif kind in heaps.KINDS:
        heaps.mutate(rng, kind, data, core.segments, core.objects, core.heap_metadata)
    else:
        position = rng.randrange(len(data))
        data[position] ^= rng.randint(1, 255)
        return "bytes-flipped (fallback)"
    return kind


EMPTY = re.compile(r"(^|\s)0\s+0\s+TOTAL|: 0 blocks\b|\b0 Swift objects\b")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--swref", default=os.path.join(ROOT, ".build", "debug", "swref"))
    parser.add_argument("--cores", type=int, default=1000, help="mutated cores to analyse")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60, help="seconds per analysis before it counts as a hang")
    parser.add_argument("--memory-limit", type=float, default=8, help="GiB of address space per analysis (a runaway allocation fails there, as a crash)")
    parser.add_argument("--kinds", default="", help="comma-separated mutation kinds (default: all)")
    parser.add_argument("--core", action="append", default=[], help="EXE:CORE to mutate (default: build testdata programs)")
    parser.add_argument("--keep", default="/tmp/swref-fuzz-cores", help="where failing cores are kept")
    args = parser.parse_args()

    kinds = [k for k in args.kinds.split(",") if k] or KINDS
    work = tempfile.mkdtemp(prefix="swref-fuzz-cores-")
    started = time.time()
    cores = [Core(*c.split(":", 1)) for c in args.core] or [Core(exe, core) for exe, core in heaps.build_and_dump(args.swref, work)]
    for core in cores:
        print(f"{os.path.basename(core.path)}: {len(core.data) >> 20} MiB, {len(core.objects)} object headers, "
              f"{len(core.classes)} classes, {len(core.descriptors)} descriptors, {len(core.field_descriptors)} field descriptors, "
              f"{len(core.names)} names", flush=True)

    stats = collections.defaultdict(collections.Counter)
    lock = threading.Lock()
    os.makedirs(args.keep, exist_ok=True)

    def worker(job):
        rng = random.Random(args.seed * 1000 + job)
        path = os.path.join(work, f"job{job}.core")
        for n in range(job, args.cores, args.jobs):
            core = cores[n % len(cores)]
            kind = kinds[n % len(kinds)]
            data = bytearray(core.data)
            applied = mutate(rng, kind, data, core)
            with open(path, "wb") as f:
                f.write(data)
            verb = heaps.verbs(core.exe, path, os.path.join(work, f"job{job}.pb.gz"))[(n // len(kinds)) % 5]
            try:
                limit = int(args.memory_limit * (1 << 30))
                result = subprocess.run([args.swref] + verb, capture_output=True, text=True, timeout=args.timeout,
                                        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
                crashed = result.returncode < 0 or "internal error" in result.stderr or result.returncode not in (0, 1, 2, 125)
                empty = result.returncode in (0, 1) and EMPTY.search(result.stdout + result.stderr)
                outcome = "crash" if crashed else "empty" if empty else f"exit {result.returncode}"
                notes, said = result.stderr, result.stdout[-4000:] + result.stderr
            except subprocess.TimeoutExpired:
                outcome, notes, said = "hang", "", ""
            if n % 500 == 0:
                print(f"{n} cores, {time.time() - started:.0f} s", flush=True)
            if outcome in ("crash", "hang", "empty"):
                kept = os.path.join(args.keep, f"{outcome}-{n}-{applied}.core")
                shutil.copyfile(path, kept)
                print(f"{outcome}: core {n} ({applied}, {' '.join(verb[:1])}, exe {core.exe}) kept as {kept}: "
                      f"{notes.strip().splitlines()[-1:] if notes.strip() else ''}", flush=True)
            with lock:
                stats[kind][outcome] += 1
                stats[kind]["tried"] += 1
                if "libswiftRemoteMirror faulted" in said:
                    stats[kind]["guarded"] += 1
                if "reflection metadata is damaged" in said:
                    stats[kind]["refused"] += 1

    threads = [threading.Thread(target=worker, args=(job,)) for job in range(args.jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    total = collections.Counter()
    print(f"\n{'mutation kind':26} {'tried':>6} {'crash':>6} {'hang':>5} {'empty':>6}  exit statuses")
    for kind in kinds:
        counter = stats[kind]
        total.update(counter)
        exits = ", ".join(f"{k.split()[1]}: {v}" for k, v in sorted(counter.items()) if k.startswith("exit"))
        print(f"{kind:26} {counter['tried']:6} {counter['crash']:6} {counter['hang']:5} {counter['empty']:6}  {exits}")
    print(f"{'all':26} {total['tried']:6} {total['crash']:6} {total['hang']:5} {total['empty']:6}  in {time.time() - started:.0f} s"
          f" ({total['guarded']} runs noted a fault caught inside libswiftRemoteMirror, {total['refused']} an image whose"
          " reflection sections were not handed over)")
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if total["crash"] or total["hang"] or total["empty"] else 0)


if __name__ == "__main__":
    main()
