import CSwrefSystem
import Glibc
import SwrefGraph
import SwrefImages
import SwrefMemory
import SwrefRuntimes
import SwrefSupport

/// Reads a pprof profile (gzipped or not) back into a `PprofProfile`: what `diff`, `check` and
/// `top` work on. Only the parts swref writes are kept: sample types, samples with their frame
/// names, values and string labels, comments.
public enum PprofDecoder {
    public static func read(path: String) throws -> PprofProfile {
        guard let bytes = ProcFS.readBytes(path) else { throw SwrefError.system("open", errno: errno, "reading \(path)") }
        return try decode(bytes, name: path)
    }

    public static func decode(_ input: [UInt8], name: String = "profile") throws -> PprofProfile {
        var bytes = input
        if input.starts(with: [0x1f, 0x8b]) {
            var output: UnsafeMutableRawPointer? = nil
            var length = 0
            let rc = input.withUnsafeBytes { swref_gunzip($0.baseAddress, $0.count, &output, &length) }
            guard rc == 0, let output else { throw SwrefError.invalidInput("\(name): not a valid gzip stream") }
            bytes = Array(UnsafeRawBufferPointer(start: output, count: length))
            free(output)
        }
        var reader = Reader(data: bytes[...], name: name)
        var strings: [String] = []
        var sampleTypes: [(Int, Int)] = []
        var rawSamples: [(locations: [UInt64], values: [Int64], labels: [(Int, Int)])] = []
        var locationFunction: [UInt64: UInt64] = [:]
        var functionName: [UInt64: Int] = [:]
        var defaultType = 0
        var comments: [Int] = []
        while let (field, wire) = try reader.key() {
            switch (field, wire) {
            case (1, 2):
                var sub = try reader.message()
                var type = 0, unit = 0
                while let (f, w) = try sub.key() {
                    if f == 1 && w == 0 { type = Int(try sub.varint()) } else if f == 2 && w == 0 { unit = Int(try sub.varint()) } else { try sub.skip(w) }
                }
                sampleTypes.append((type, unit))
            case (2, 2):
                var sub = try reader.message()
                var locations: [UInt64] = [], values: [Int64] = [], labels: [(Int, Int)] = []
                while let (f, w) = try sub.key() {
                    switch (f, w) {
                    case (1, 2): locations += try sub.packed()
                    case (1, 0): locations.append(try sub.varint())
                    case (2, 2): values += try sub.packed().map { Int64(bitPattern: $0) }
                    case (2, 0): values.append(Int64(bitPattern: try sub.varint()))
                    case (3, 2):
                        var label = try sub.message()
                        var key = 0, str = 0
                        while let (lf, lw) = try label.key() {
                            if lf == 1 && lw == 0 { key = Int(try label.varint()) } else if lf == 2 && lw == 0 { str = Int(try label.varint()) } else { try label.skip(lw) }
                        }
                        labels.append((key, str))
                    default: try sub.skip(w)
                    }
                }
                rawSamples.append((locations, values, labels))
            case (4, 2):
                var sub = try reader.message()
                var id: UInt64 = 0, function: UInt64 = 0
                while let (f, w) = try sub.key() {
                    if f == 1 && w == 0 { id = try sub.varint() } else if f == 4 && w == 2 {
                        var line = try sub.message()
                        while let (lf, lw) = try line.key() {
                            if lf == 1 && lw == 0 { let value = try line.varint(); if function == 0 { function = value } } else { try line.skip(lw) }
                        }
                    } else { try sub.skip(w) }
                }
                locationFunction[id] = function
            case (5, 2):
                var sub = try reader.message()
                var id: UInt64 = 0, nameIndex = 0
                while let (f, w) = try sub.key() {
                    if f == 1 && w == 0 { id = try sub.varint() } else if f == 2 && w == 0 { nameIndex = Int(try sub.varint()) } else { try sub.skip(w) }
                }
                functionName[id] = nameIndex
            case (6, 2):
                strings.append(String(decoding: try reader.field(), as: UTF8.self))
            case (13, 0):
                comments.append(Int(try reader.varint()))
            case (13, 2):
                comments += try reader.packed().map { Int($0) }
            case (14, 0):
                defaultType = Int(try reader.varint())
            default:
                try reader.skip(wire)
            }
        }
        func string(_ index: Int) -> String { index >= 0 && index < strings.count ? strings[index] : "" }
        var profile = PprofProfile(sampleTypes: sampleTypes.map { .init(type: string($0.0), unit: string($0.1)) })
        if let index = profile.sampleTypes.firstIndex(where: { $0.type == string(defaultType) }) { profile.defaultSampleType = index }
        // The heap's coverage and the analysis's notes (what `check` must know before passing it).
        profile.comments = comments.map(string)
        for raw in rawSamples {
            let frames = raw.locations.reversed().map { string(functionName[locationFunction[$0] ?? 0] ?? 0) }
            var labels: [String: String] = [:]
            for (key, value) in raw.labels { labels[string(key)] = string(value) }
            profile.samples.append(.init(frames: frames, values: raw.values, labels: labels))
        }
        if let problem = profile.validationError() { throw SwrefError.invalidInput("\(name): not a usable profile (\(problem))") }
        return profile
    }

    private struct Reader {
        var data: ArraySlice<UInt8>
        let name: String

        var damaged: SwrefError { SwrefError.invalidInput("\(name): not a pprof profile (damaged protobuf)") }

        mutating func varint() throws -> UInt64 {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while let byte = data.first {
                data = data.dropFirst()
                result |= UInt64(byte & 0x7f) << shift
                if byte & 0x80 == 0 { return result }
                shift += 7
                if shift > 63 { throw damaged }
            }
            throw damaged
        }

        mutating func key() throws -> (Int, UInt64)? {
            guard !data.isEmpty else { return nil }
            let key = try varint()
            return (Int(key >> 3), key & 7)
        }

        mutating func field() throws -> ArraySlice<UInt8> {
            let length = try varint()
            guard length <= UInt64(data.count) else { throw damaged }
            let result = data.prefix(Int(length))
            data = data.dropFirst(Int(length))
            return result
        }

        mutating func message() throws -> Reader { Reader(data: try field(), name: name) }

        mutating func packed() throws -> [UInt64] {
            var sub = try message()
            var values: [UInt64] = []
            while !sub.data.isEmpty { values.append(try sub.varint()) }
            return values
        }

        mutating func skip(_ wire: UInt64) throws {
            switch wire {
            case 0: _ = try varint()
            case 1: guard data.count >= 8 else { throw damaged }; data = data.dropFirst(8)
            case 2: _ = try field()
            case 5: guard data.count >= 4 else { throw damaged }; data = data.dropFirst(4)
            default: throw damaged
            }
        }
    }
}
