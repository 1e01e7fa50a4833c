import SwrefImages
import SwrefMemory
import SwrefSupport

/// How `swref inspect` shows a layout: one line per slot, offsets from the object's start.
extension ObjectLayout: CustomStringConvertible {
    public var description: String {
        switch self {
        case .fixed(let value, let prefix, let uncovered):
            var lines = ["fields: \(value.size) B, \(value.coveredBytes) B described" + (prefix.isEmpty ? "" : ", paths under \(prefix)")]
            lines += value.slotLines
            if !uncovered.isEmpty {
                lines.append("  read word by word ($sub_objects$): " + uncovered.map { "+\($0.lowerBound)..<+\($0.upperBound)" }.joined(separator: ", "))
            }
            return lines.joined(separator: "\n")
        case .array(let element, let start):
            return (["array: elements of \(element.stride) B from +\(start)"] + element.slotLines).joined(separator: "\n")
        case .deque(let element, let start):
            return (["deque: slots of \(element.stride) B from +\(start), those in use from startSlot"] + element.slotLines).joined(separator: "\n")
        case .dictionary(let key, let value):
            return (["dictionary: keys of \(key.stride) B"] + key.slotLines + ["values of \(value.stride) B"] + value.slotLines)
                .joined(separator: "\n")
        case .set(let element):
            return (["set: elements of \(element.stride) B"] + element.slotLines).joined(separator: "\n")
        case .none:
            return "no references"
        case .conservative:
            return "unknown: every word read as a possible reference ($sub_objects$)"
        }
    }
}

extension ValueLayout {
    fileprivate var slotLines: [String] {
        slots.map { "  +\($0.offset) \($0.action) \($0.path.isEmpty ? "(the value itself)" : $0.path)" }
    }
}

extension ValueLayout.Action: CustomStringConvertible {
    public var description: String {
        switch self {
        case .reference: return "reference"
        case .function: return "closure (function, context)"
        case .byteBuffer(let grpc): return grpc ? "GRPCNIOTransportBytes" : "ByteBuffer"
        case .foundationData(let unknownFields): return unknownFields ? "UnknownStorage (Data)" : "Data"
        case .protobufStorage(let message): return "storage of \(message)"
        case .words(let count): return count == 1 ? "word" : "\(count) words"
        }
    }
}
