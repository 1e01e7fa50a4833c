import SwrefSupport

/// One line of `/proc/PID/maps` (or one mapping of a core file).
public struct MemoryRegion: Hashable, Sendable {
    public var start: UInt64
    public var end: UInt64
    public var readable: Bool
    public var writable: Bool
    public var executable: Bool
    public var shared: Bool
    public var fileOffset: UInt64
    public var inode: UInt64
    /// The mapped file, a pseudo name such as `[heap]` or `[stack]`, or "" for anonymous memory.
    public var path: String

    public var size: UInt64 { end - start }
    public var isFileBacked: Bool { inode != 0 && path.hasPrefix("/") }
    public var isAnonymous: Bool { path.isEmpty }

    public func contains(_ address: UInt64) -> Bool { address >= start && address < end }

    public init(start: UInt64, end: UInt64, readable: Bool, writable: Bool, executable: Bool,
                shared: Bool = false, fileOffset: UInt64 = 0, inode: UInt64 = 0, path: String = "") {
        self.start = start
        self.end = end
        self.readable = readable
        self.writable = writable
        self.executable = executable
        self.shared = shared
        self.fileOffset = fileOffset
        self.inode = inode
        self.path = path
    }
}

/// The parsed `/proc/PID/maps` of a process.
public struct MemoryMap: Sendable {
    public var regions: [MemoryRegion]

    public init(regions: [MemoryRegion]) { self.regions = regions }

    /// Parses the text of `/proc/PID/maps`; malformed lines are skipped.
    public init(parsing text: String) {
        var result: [MemoryRegion] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if let region = MemoryMap.parseLine(line) { result.append(region) }
        }
        regions = result
    }

    public static func parseLine(_ line: Substring) -> MemoryRegion? {
        // start-end perms offset dev inode [path]
        var fields: [Substring] = []
        var rest = line[...]
        for _ in 0..<5 {
            rest = rest.drop(while: { $0 == " " })
            guard let space = rest.firstIndex(of: " ") else { return nil }
            fields.append(rest[..<space])
            rest = rest[space...]
        }
        let path = String(rest.drop(while: { $0 == " " }))
        let range = fields[0].split(separator: "-")
        guard range.count == 2, let start = UInt64(range[0], radix: 16), let end = UInt64(range[1], radix: 16),
              fields[1].count == 4, let offset = UInt64(fields[2], radix: 16), let inode = UInt64(fields[4])
        else { return nil }
        let perms = Array(fields[1])
        return MemoryRegion(start: start, end: end, readable: perms[0] == "r", writable: perms[1] == "w",
                            executable: perms[2] == "x", shared: perms[3] == "s", fileOffset: offset,
                            inode: inode, path: path)
    }

    /// The region holding `address`, by binary search (regions are sorted and disjoint).
    public func region(containing address: UInt64) -> MemoryRegion? {
        guard let index = MemoryMap.index(in: regions, containing: address) else { return nil }
        return regions[index]
    }

    public static func index(in regions: [MemoryRegion], containing address: UInt64) -> Int? {
        var low = 0
        var high = regions.count
        while low < high {
            let mid = (low + high) / 2
            if regions[mid].end <= address { low = mid + 1 } else { high = mid }
        }
        return low < regions.count && regions[low].contains(address) ? low : nil
    }
}
