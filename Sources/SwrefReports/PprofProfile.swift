import CSwrefSystem
import Glibc
import SwrefGraph
import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// A pprof profile (github.com/google/pprof/proto/profile.proto) as swref uses it: each sample
/// is a stack of frame names (root first here; written leaf first as pprof wants), values per
/// sample type, and string or numeric labels. Each distinct frame name is one Function and one
/// Location, as in goref.
public struct PprofProfile {
    public struct SampleType: Equatable { public var type: String; public var unit: String }

    public struct Sample {
        /// Frame names from the root down.
        public var frames: [String]
        public var values: [Int64]
        public var labels: [String: String] = [:]
        public var numericLabels: [String: (value: Int64, unit: String)] = [:]

        public init(frames: [String], values: [Int64], labels: [String: String] = [:],
                    numericLabels: [String: (value: Int64, unit: String)] = [:]) {
            self.frames = frames
            self.values = values
            self.labels = labels
            self.numericLabels = numericLabels
        }
    }

    public static let heapSampleTypes = [SampleType(type: "inuse_objects", unit: "count"),
                                         SampleType(type: "inuse_space", unit: "bytes")]

    public var sampleTypes: [SampleType]
    public var samples: [Sample] = []
    public var comments: [String] = []
    public var timeNanos: Int64 = 0
    public var durationNanos: Int64 = 0
    /// Index into `sampleTypes` that viewers show first.
    public var defaultSampleType: Int = 1
    /// The target's executable, named in the profile's mapping.
    public var mainBinary: String = "target"

    public init(sampleTypes: [SampleType] = PprofProfile.heapSampleTypes) { self.sampleTypes = sampleTypes }

    /// Checks what pprof readers rely on; returns the first problem found.
    public func validationError() -> String? {
        for (index, sample) in samples.enumerated() {
            if sample.values.count != sampleTypes.count { return "sample \(index) has \(sample.values.count) values, want \(sampleTypes.count)" }
            if sample.frames.isEmpty { return "sample \(index) has no frames" }
        }
        return defaultSampleType < sampleTypes.count ? nil : "default sample type out of range"
    }

    /// The profile.proto encoding, uncompressed.
    public func encoded() -> [UInt8] {
        var strings: [String] = [""]
        var stringIndex: [String: Int64] = ["": 0]
        func intern(_ s: String) -> Int64 {
            if let index = stringIndex[s] { return index }
            let index = Int64(strings.count)
            strings.append(s)
            stringIndex[s] = index
            return index
        }
        var functionIDs: [String: UInt64] = [:]
        var functionOrder: [String] = []
        func location(_ frame: String) -> UInt64 {
            if let id = functionIDs[frame] { return id }
            let id = UInt64(functionOrder.count + 1)
            functionIDs[frame] = id
            functionOrder.append(frame)
            return id
        }

        var out = ProtobufWriter()
        for type in sampleTypes {
            let typeIndex = intern(type.type), unitIndex = intern(type.unit)
            out.message(1) { $0.int(1, typeIndex); $0.int(2, unitIndex) }
        }
        for sample in samples {
            let ids = sample.frames.reversed().map(location)
            let labels = sample.labels.sorted { $0.key < $1.key }.map { (intern($0.key), intern($0.value)) }
            let numeric = sample.numericLabels.sorted { $0.key < $1.key }
                .map { (intern($0.key), $0.value.value, intern($0.value.unit)) }
            out.message(2) { s in
                s.packed(1, ids)
                s.packed(2, sample.values.map { UInt64(bitPattern: $0) })
                for (key, value) in labels { s.message(3) { $0.int(1, key); $0.int(2, value) } }
                for (key, value, unit) in numeric { s.message(3) { $0.int(1, key); $0.int(3, value); $0.int(4, unit) } }
            }
        }
        let functionNames = functionOrder.map(intern)
        for (offset, nameIndex) in functionNames.enumerated() {
            let id = UInt64(offset + 1)
            out.message(4) { loc in
                loc.uint(1, id)
                loc.uint(2, 1)
                loc.message(4) { $0.uint(1, id) }
            }
            out.message(5) { fn in
                fn.uint(1, id)
                // No system_name: pprof would "simplify" a name equal to it, dropping generic arguments.
                fn.int(2, nameIndex)
            }
        }
        // One mapping that claims the functions, so pprof neither warns nor tries to symbolize.
        let mappingFile = intern(mainBinary)
        out.message(3) { m in
            m.uint(1, 1)
            m.int(5, mappingFile)
            m.uint(7, 1); m.uint(8, 1); m.uint(9, 1); m.uint(10, 1)
        }
        let commentIndices = comments.map(intern)
        let defaultType = intern(sampleTypes[defaultSampleType].type)
        out.int(9, timeNanos)
        out.int(10, durationNanos)
        out.message(11) { [t = intern("space"), u = intern("bytes")] in $0.int(1, t); $0.int(2, u) }
        for index in commentIndices { out.int(13, index) }
        out.int(14, defaultType)
        // Fields may come in any order; the string table goes last, once every string is interned.
        for s in strings { out.string(6, s) }
        return out.bytes
    }

    /// The gzipped encoding: what `go tool pprof` reads.
    public func gzipped() throws -> [UInt8] {
        let raw = encoded()
        var output: UnsafeMutableRawPointer? = nil
        var length = 0
        let rc = raw.withUnsafeBytes { swref_gzip($0.baseAddress, $0.count, &output, &length) }
        guard rc == 0, let output else { throw SwrefError.invalidInput("compressing the profile failed") }
        defer { free(output) }
        return Array(UnsafeRawBufferPointer(start: output, count: length))
    }
}
