import Foundation
import XCTest
@testable import Faces

/// Writes small RAF-DB-layout folders of real JPEG files for the tests.
struct DatasetFixture {
    let root: URL

    init(_ name: String = #function) throws {
        root = FileManager.default.temporaryDirectory
            .appendingPathComponent("lab-faces-\(name.filter(\.isLetter))-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(at: root) }

    /// A 100x100 image whose colour encodes (code, k) so tests can tell images apart.
    static func image(code: Int, k: Int, size: Int = 100) -> RGBImage {
        var px = [UInt8](repeating: 0, count: size * size * 3)
        for y in 0..<size { for x in 0..<size {
            let p = (y * size + x) * 3
            px[p] = UInt8(code * 30); px[p + 1] = UInt8((k * 17 + x) % 256); px[p + 2] = UInt8(y * 2)
        } }
        return RGBImage(width: size, height: size, pixels: px)
    }

    func write(_ rel: String, _ bytes: [UInt8]) throws {
        let url = root.appendingPathComponent(rel)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: url)
    }

    func write(_ rel: String, text: String) throws { try write(rel, Array(text.utf8)) }

    /// Official layout: `perCode[code]` train images and one test image per code.
    /// Returns the label lines written.
    @discardableResult
    func writeOfficial(trainPerCode: [Int: Int], testPerCode: Int = 1, distribution: Bool = true,
                       labelFile: String = "list_patition_label.txt") throws -> [String] {
        var lines = [String](), dist = [String]()
        var n = 0
        for split in ["train", "test"] {
            var i = 0
            for code in 1...7 {
                for _ in 0..<(split == "train" ? trainPerCode[code, default: 0] : testPerCode) {
                    i += 1; n += 1
                    let name = String(format: "%@_%05d.jpg", split, i)
                    lines.append("\(name) \(code)")
                    try write("Image/aligned/\(String(format: "%@_%05d", split, i))_aligned.jpg",
                              JPEG.encode(Self.image(code: code, k: n), quality: 90))
                    // 40 votes: 28 for the label, the rest spread (neutral gets 4).
                    var votes = [Float](repeating: 2, count: 7)
                    votes[code - 1] = 28; if code != 7 { votes[6] = 4 }
                    let s = votes.reduce(0, +)
                    dist.append(name + " " + votes.map { String($0 / s) }.joined(separator: " "))
                }
            }
        }
        try write("EmoLabel/\(labelFile)", text: lines.joined(separator: "\n") + "\n")
        if distribution { try write("EmoLabel/distribution.txt", text: dist.joined(separator: "\n") + "\n") }
        return lines
    }
}
