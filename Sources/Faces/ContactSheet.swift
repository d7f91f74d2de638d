import Foundation
import LabRandom

/// A grid of images with thin gutters, for looking at data as the network sees it.
public enum ContactSheet {
    /// Augmented versions of `indices` (one row per image, `perRow` draws per row).
    public static func augmented(_ set: FaceSet, indices: [Int], perRow: Int, augmentation: Augmentation, seed: UInt64) -> RGBImage {
        let S = set.imageSize, gap = 2
        let cols = perRow + 1
        guard !indices.isEmpty else {
            let w = cols * S + (cols + 1) * gap
            return RGBImage(width: w, height: gap, pixels: [UInt8](repeating: 255, count: w * gap * 3))
        }
        var buf = [Float](repeating: 0, count: S * S * 3), t = [Float](repeating: 0, count: Emotion.count)
        let normalization = Normalization()
        var tiles = [[RGBImage]]()
        for (row, i) in indices.enumerated() {
            for col in 0..<cols {
                // Column 0 is the unaugmented image.
                Augmenter.assemble(x: &buf, targets: &t, set: set, indices: [i], augmentation: col == 0 ? nil : augmentation,
                                   labelMode: .hard(smoothing: 0), normalization: normalization,
                                   seed: seed &+ UInt64(row * 1000 + col))
                tiles.append([normalization.image(buf[...], S: S)])
            }
        }
        return Grid.sheet(tiles, perRow: cols, gap: gap)
    }
}
