import Foundation
import LabRandom

/// A grid of images with thin gutters, for looking at data as the network sees it.
public enum ContactSheet {
    /// Augmented versions of `indices` (one row per image, `perRow` draws per row).
    public static func augmented(_ set: FaceSet, indices: [Int], perRow: Int, augmentation: Augmentation, seed: UInt64) -> RGBImage {
        let S = set.imageSize, gap = 2
        let cols = perRow + 1
        let w = cols * S + (cols + 1) * gap, h = indices.count * S + (indices.count + 1) * gap
        var px = [UInt8](repeating: 255, count: w * h * 3)
        var buf = [Float](repeating: 0, count: S * S * 3), t = [Float](repeating: 0, count: Emotion.count)
        let normalization = Normalization()
        for (row, i) in indices.enumerated() {
            for col in 0..<cols {
                // Column 0 is the unaugmented image.
                Augmenter.assemble(x: &buf, targets: &t, set: set, indices: [i], augmentation: col == 0 ? nil : augmentation,
                                   labelMode: .hard(smoothing: 0), normalization: normalization,
                                   seed: seed &+ UInt64(row * 1000 + col))
                let x0 = gap + col * (S + gap), y0 = gap + row * (S + gap)
                for y in 0..<S { for x in 0..<S { for c in 0..<3 {
                    px[((y0 + y) * w + x0 + x) * 3 + c] = normalization.byte(buf[(y * S + x) * 3 + c], channel: c)
                } } }
            }
        }
        return RGBImage(width: w, height: h, pixels: px)
    }
}
