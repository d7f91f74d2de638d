import Faces

/// Heatmap overlays for people to look at.
public enum Overlay {
    /// viridis (perceptually uniform, readable in greyscale), 9 stops.
    static let stops: [(Float, Float, Float)] = [
        (68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
        (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37),
    ]

    static func color(_ v: Float) -> (Float, Float, Float) {
        let t = max(0, min(1, v)) * Float(stops.count - 1)
        let i = min(Int(t), stops.count - 2), a = t - Float(i)
        let p = stops[i], q = stops[i + 1]
        return (p.0 + (q.0 - p.0) * a, p.1 + (q.1 - p.1) * a, p.2 + (q.2 - p.2) * a)
    }

    /// The face (floats [S, S, 3] as the network saw them) as RGB bytes.
    /// The run's own normalization is undone: a fixed [-1, 1] inverse would
    /// tint every face of a run normalized by its training split's statistics.
    public static func face(_ x: ArraySlice<Float>, S: Int, normalization n: Normalization) -> RGBImage {
        n.image(x, S: S)
    }

    /// map in [0, 1] over the face at alpha 0.5.
    public static func blend(_ face: RGBImage, _ map: [Float], alpha: Float = 0.5) -> RGBImage {
        var px = face.pixels
        for p in 0..<map.count {
            let c = color(map[p])
            for (k, v) in [c.0, c.1, c.2].enumerated() {
                px[p * 3 + k] = UInt8(max(0, min(255, (1 - alpha) * Float(px[p * 3 + k]) + alpha * v)))
            }
        }
        return RGBImage(width: face.width, height: face.height, pixels: px)
    }

    /// Faces laid out `perRow` to a row; each face is a group of tiles
    /// (input, then its overlays) framed green (correct) or red (wrong).
    public static func sheet(faces: [[RGBImage]], correct: [Bool], perRow: Int, scale: Int = 2) -> RGBImage {
        Grid.sheet(faces, perRow: perRow, gap: 8, frame: 3, borders: correct.map { $0 ? (40, 160, 60) : (200, 40, 40) }, scale: scale)
    }
}
