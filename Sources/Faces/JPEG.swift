import CJPEG
import Failures
import Foundation

/// Packed 8-bit RGB, row-major.
public struct RGBImage: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]   // [height, width, 3]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3)
        self.width = width; self.height = height; self.pixels = pixels
    }
}

/// libjpeg-turbo through the CJPEG shim (its error handling needs setjmp).
public enum JPEG {
    public static func decode(_ data: [UInt8]) throws -> RGBImage {
        var rgb: UnsafeMutablePointer<UInt8>?
        var w: Int32 = 0, h: Int32 = 0
        var err = [CChar](repeating: 0, count: 256)
        let rc = data.withUnsafeBufferPointer { buf in
            lab_jpeg_decode(buf.baseAddress, buf.count, &rgb, &w, &h, &err, err.count)
        }
        guard rc == 0, let rgb else {
            throw Failure(.data, cMessage(err).lowercasedFirst)
        }
        defer { lab_jpeg_free(rgb) }
        return RGBImage(width: Int(w), height: Int(h), pixels: Array(UnsafeBufferPointer(start: rgb, count: Int(w) * Int(h) * 3)))
    }

    public static func encode(_ image: RGBImage, quality: Int = 92) -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        var err = [CChar](repeating: 0, count: 256)
        let rc = image.pixels.withUnsafeBufferPointer { buf in
            lab_jpeg_encode(buf.baseAddress, Int32(image.width), Int32(image.height), Int32(quality), &out, &size, &err, err.count)
        }
        precondition(rc == 0, "JPEG encoding failed: \(cMessage(err))")
        defer { lab_jpeg_free(out) }
        return Array(UnsafeBufferPointer(start: out, count: Int(size)))
    }
}

extension String {
    var lowercasedFirst: String { prefix(1).lowercased() + dropFirst() }
}

/// The C shim's NUL-terminated error text.
private func cMessage(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
