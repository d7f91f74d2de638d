import Foundation

// The safetensors container (huggingface/safetensors): an 8-byte
// little-endian header length, a JSON header mapping names to dtype, shape
// and byte offsets (plus a string-to-string "__metadata__"), then raw
// little-endian data. Bytes in, bytes out: where the bytes live (a file, a
// SQLite BLOB) is the caller's business.

public struct SafeTensor: Equatable, Sendable {
    public enum DType: String, Sendable { case f32 = "F32", i64 = "I64" }
    public var dtype: DType
    public var shape: [Int]
    public var bytes: [UInt8]

    public init(shape: [Int], floats: [Float]) {
        dtype = .f32
        self.shape = shape
        bytes = floats.withUnsafeBytes { Array($0) }
    }

    public init(int64 value: Int64) {
        dtype = .i64
        shape = []
        bytes = withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    public init(dtype: DType, shape: [Int], bytes: [UInt8]) {
        self.dtype = dtype; self.shape = shape; self.bytes = bytes
    }

    public var floats: [Float] {
        precondition(dtype == .f32)
        return bytes.withUnsafeBytes { raw in Array(raw.bindMemory(to: Float.self)) }
    }

    public var int64: Int64 {
        precondition(dtype == .i64 && bytes.count == 8)
        return bytes.withUnsafeBytes { Int64(littleEndian: $0.loadUnaligned(as: Int64.self)) }
    }
}

public enum SafetensorsError: Error, CustomStringConvertible, Equatable {
    case truncated(String)
    case badHeader(String)
    case missing(String)
    case mismatch(String)

    public var description: String {
        switch self {
        case .truncated(let s): return "truncated safetensors data: \(s)"
        case .badHeader(let s): return "malformed safetensors header: \(s)"
        case .missing(let s): return "checkpoint has no tensor \(s)"
        case .mismatch(let s): return "checkpoint does not fit the model: \(s)"
        }
    }
}

public enum Safetensors {
    /// Tensors are laid out in name order so equal contents give equal bytes
    /// (the registry stores a sha256 of them).
    public static func encode(_ tensors: [String: SafeTensor], metadata: [String: String] = [:]) -> [UInt8] {
        var header = [String: Any]()
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let t = tensors[name]!
            header[name] = ["dtype": t.dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + t.bytes.count]] as [String: Any]
            offset += t.bytes.count
        }
        var json = try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad with spaces so the data section starts 8-byte aligned.
        while json.count % 8 != 0 { json.append(0x20) }
        var out = [UInt8]()
        out.reserveCapacity(8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: json)
        for name in names { out.append(contentsOf: tensors[name]!.bytes) }
        return out
    }

    public static func decode(_ bytes: [UInt8]) throws -> (tensors: [String: SafeTensor], metadata: [String: String]) {
        guard bytes.count >= 8 else { throw SafetensorsError.truncated("\(bytes.count) bytes, no header length") }
        let n = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard n <= UInt64(bytes.count - 8) else {
            throw SafetensorsError.truncated("header of \(n) bytes in \(bytes.count) bytes")
        }
        let headerEnd = 8 + Int(n)
        guard let obj = try? JSONSerialization.jsonObject(with: Data(bytes[8..<headerEnd])),
              let header = obj as? [String: Any] else {
            throw SafetensorsError.badHeader("header is not a JSON object")
        }
        var tensors = [String: SafeTensor]()
        var metadata = [String: String]()
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: String] else { throw SafetensorsError.badHeader("__metadata__ is not string to string") }
                metadata = m
                continue
            }
            guard let d = value as? [String: Any], let dt = d["dtype"] as? String,
                  let dtype = SafeTensor.DType(rawValue: dt),
                  let shape = d["shape"] as? [Int], let offs = d["data_offsets"] as? [Int], offs.count == 2
            else { throw SafetensorsError.badHeader("entry \(name) (only F32 and I64 are read)") }
            let begin = headerEnd + offs[0], end = headerEnd + offs[1]
            guard offs[0] >= 0, offs[0] <= offs[1], end <= bytes.count else {
                throw SafetensorsError.truncated("tensor \(name) ends past the data")
            }
            let width = dtype == .f32 ? 4 : 8
            guard offs[1] - offs[0] == shape.reduce(1, *) * width else {
                throw SafetensorsError.badHeader("tensor \(name) has \(offs[1] - offs[0]) bytes for shape \(shape)")
            }
            tensors[name] = SafeTensor(dtype: dtype, shape: shape, bytes: Array(bytes[begin..<end]))
        }
        return (tensors, metadata)
    }
}
