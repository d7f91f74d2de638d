import XCTest
import Faces
@testable import Explain

final class OverlayTests: XCTestCase {
    /// A face normalized by a dataset's own mean/std is drawn in its own
    /// colours, not tinted by a fixed [-1, 1] inverse.
    func testFaceUndoesTheRunsNormalization() {
        let S = 8
        // Bytes spread over 0...255, neighbours far apart.
        let pixels: [UInt8] = (0..<(S * S * 3)).map { (i: Int) -> UInt8 in UInt8(truncatingIfNeeded: i * 37 + i / 3 * 11) }
        let set = FaceSet.inMemory([RGBImage(width: S, height: S, pixels: pixels)], classes: [0], imageSize: S)
        let n = Normalization(mean: [0.55, 0.42, 0.31], std: [0.21, 0.18, 0.27])
        var x = [Float](repeating: 0, count: S * S * 3), t = [Float](repeating: 0, count: Emotion.count)
        Augmenter.assemble(x: &x, targets: &t, set: set, indices: [0], augmentation: nil, labelMode: .hard(smoothing: 0),
                           normalization: n, seed: 0)

        let face = Overlay.face(x[...], S: S, normalization: n)
        XCTAssertEqual(face.width, S)
        for p in 0..<pixels.count {
            XCTAssertEqual(Int(face.pixels[p]), Int(set.pixels[p]), accuracy: 1, "byte \(p)")
        }
        // The fixed inverse this replaces gets these colours wrong.
        let fixed = x.map { UInt8(max(0, min(255, ($0 + 1) * 127.5))) }
        XCTAssertGreaterThan(zip(fixed, set.pixels).filter { abs(Int($0) - Int($1)) > 1 }.count, pixels.count / 2)
    }

    /// The default normalization draws exactly the bytes the old fixed
    /// inverse drew, so overlays of [-1, 1] runs are unchanged.
    func testDefaultNormalizationKeepsTheOldBytes() {
        let x: [Float] = (0..<(16 * 16 * 3)).map { Float($0 % 256) / 127.5 - 1 + Float($0 % 7) * 1e-4 }
        let face = Overlay.face(x[...], S: 16, normalization: Normalization())
        XCTAssertEqual(face.pixels, x.map { UInt8(max(0, min(255, ($0 + 1) * 127.5))) })
    }
}
