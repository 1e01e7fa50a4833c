import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// Frame names and the labels edges carry. An edge's label is a code: either a finished frame
/// name (a closure's function, `$sub_objects$`, `(T)`) or a field path that still needs the type
/// of the object it reaches (`owner` → `owner. (app.Owner)`). Paths are resolved only for the
/// edges a report shows — one per object — not for every edge of the graph.
public final class FrameNames {
    private var table = StringTable()
    private var paths = StringTable()
    private var resolved: [UInt64: UInt32] = [:]
    private var recent = DirectMappedCache()
    private let objects: ObjectTable

    /// Codes with this bit name a frame; without it, a path.
    public static let frameFlag: UInt32 = 0x8000_0000

    public init(objects: ObjectTable) { self.objects = objects }

    /// Frames that name a framework buffer, with what it pins and what is viewed through it.
    public private(set) var frameworkBuffers: [UInt32: FrameworkBuffer] = [:]

    /// The code of a framework buffer's frame: `cache. (ByteBuffer (NIOCore) 64 KiB pinned, 8 B viewed)`.
    public func code(path: String, buffer: FrameworkBuffer, display: String) -> UInt32 {
        let text = buffer.viewedBytes.map { "\(display) \(formatBytes(buffer.pinnedBytes)) pinned, \(formatBytes($0)) viewed" } ?? display
        let frame = table.intern(path.isEmpty ? text : "\(path). (\(text))")
        frameworkBuffers[frame] = buffer
        return frame | FrameNames.frameFlag
    }

    /// The code of a field path; "" gives 0 (the object sits in its holder's frame).
    public func code(path: String) -> UInt32 { path.isEmpty ? 0 : paths.intern(path) }

    /// The code of a finished frame name.
    public func code(frame: String) -> UInt32 { frame.isEmpty ? 0 : table.intern(frame) | FrameNames.frameFlag }

    /// A frame id (into this table) for a name.
    public func intern(_ frame: String) -> UInt32 { table.intern(frame) }

    /// What `frame(code, target:)` depends on: the code, and for a path the target's type.
    @inline(__always)
    public func resolutionKey(_ code: UInt32, target: Int32) -> UInt64 {
        code & FrameNames.frameFlag != 0 || code == 0 ? UInt64(code) << 32
            : UInt64(code) << 32 | UInt64(UInt32(bitPattern: objects.typeIndices[Int(target)]))
    }

    /// The frame an edge with `code` gives the object `target`; 0 when it adds no frame.
    public func frame(_ code: UInt32, target: Int32) -> UInt32 {
        if code == 0 { return 0 }
        if code & FrameNames.frameFlag != 0 { return code & ~FrameNames.frameFlag }
        let type = objects.typeIndices[Int(target)]
        let key = UInt64(code) << 32 | UInt64(UInt32(bitPattern: type))
        if let frame = recent.value(for: key) { return frame }
        if let frame = resolved[key] { recent.set(frame, for: key); return frame }
        let frame = table.intern("\(paths[code]). (\(SwiftTypeNames.display(objects.types[Int(type)].name)))")
        resolved[key] = frame
        recent.set(frame, for: key)
        return frame
    }

    /// The text of an edge's label toward `target`.
    public func text(_ code: UInt32, target: Int32) -> String {
        let id = frame(code, target: target) // may add to the table: resolve before reading it
        return table[id]
    }

    public subscript(frame: UInt32) -> String { table[frame] }
}
