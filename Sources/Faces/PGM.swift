import Failures
import Foundation

/// Binary PGM (P5), 8-bit: the synthetic set's region masks. Lossless and
/// readable by any image viewer, without a PNG encoder.
public enum PGM {
    public static func encode(width: Int, height: Int, pixels: [UInt8]) -> [UInt8] {
        Array("P5\n\(width) \(height)\n255\n".utf8) + pixels
    }

    public static func decode(_ data: [UInt8]) throws -> (width: Int, height: Int, pixels: [UInt8]) {
        var fields = [String](), i = 0
        while fields.count < 4 && i < data.count {
            while i < data.count, data[i] == 0x20 || data[i] == 0x0A || data[i] == 0x0D || data[i] == 0x09 { i += 1 }
            var s = ""
            while i < data.count, !(data[i] == 0x20 || data[i] == 0x0A || data[i] == 0x0D || data[i] == 0x09) {
                s.append(Character(UnicodeScalar(data[i]))); i += 1
            }
            if !s.isEmpty { fields.append(s) }
        }
        i += 1
        guard fields.count == 4, fields[0] == "P5", let w = Int(fields[1]), let h = Int(fields[2]), fields[3] == "255",
              data.count - i >= w * h else { throw Failure(.data, "not an 8-bit binary PGM") }
        return (w, h, Array(data[i..<(i + w * h)]))
    }
}
