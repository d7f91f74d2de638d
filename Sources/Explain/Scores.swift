import Engine
import LabRandom

/// Localization scores of a map against a region mask, and the maps that
/// say what chance gives.
public enum Localization {
    /// Share of the map's mass inside the mask (0 for an all-zero map).
    public static func energyInMask(_ map: [Float], _ mask: [UInt8]) -> Float {
        var inside: Float = 0, total: Float = 0
        for i in 0..<map.count { total += map[i]; if mask[i] >= 128 { inside += map[i] } }
        return total > 0 ? inside / total : 0
    }

    /// Pointing game: is the map's maximum inside the mask? An all-zero map points nowhere.
    public static func pointingHit(_ map: [Float], _ mask: [UInt8]) -> Bool {
        guard !map.isEmpty else { return false }
        let i = argmax(map[...])
        return map[i] > 0 && mask[i] >= 128
    }

    /// A centred isotropic Gaussian (sigma = S/4): where faces are, on average.
    public static func centerPrior(_ S: Int) -> [Float] {
        let c = Float(S - 1) / 2, s2 = 2 * Float(S * S) / 16
        return (0..<(S * S)).map { i in
            let dx = Float(i % S) - c, dy = Float(i / S) - c
            return (-(dx * dx + dy * dy) / s2).exp
        }
    }

    /// Uniform noise in [0, 1).
    public static func randomMap(_ S: Int, rng: inout RNG) -> [Float] { (0..<(S * S)).map { _ in rng.uniform() } }

    /// Expressive regions of an aligned RAF-DB-style crop when no per-image
    /// landmarks are available: brows and eyes, nose bridge and wrinkle
    /// zone, mouth. RAF-DB's aligned crops place eyes and mouth by a
    /// similarity transform, so fixed fractions of the side hold well.
    public static func templateMask(_ S: Int) -> [UInt8] {
        let f = Float(S)
        // (centre x, centre y, radius x, radius y) as fractions of the side.
        let regions: [(Float, Float, Float, Float)] = [
            (0.33, 0.40, 0.13, 0.12), (0.67, 0.40, 0.13, 0.12),   // eyes and brows
            (0.50, 0.50, 0.08, 0.13),                             // nose bridge, wrinkle zone
            (0.50, 0.74, 0.20, 0.10),                             // mouth
        ]
        var m = [UInt8](repeating: 0, count: S * S)
        for y in 0..<S { for x in 0..<S {
            let px = (Float(x) + 0.5) / f, py = (Float(y) + 0.5) / f
            for (cx, cy, rx, ry) in regions where ((px - cx) / rx) * ((px - cx) / rx) + ((py - cy) / ry) * ((py - cy) / ry) <= 1 {
                m[y * S + x] = 255
            }
        } }
        return m
    }

    /// Spearman rank correlation (ties broken by position).
    public static func spearman(_ a: [Float], _ b: [Float]) -> Float {
        func ranks(_ v: [Float]) -> [Float] {
            var r = [Float](repeating: 0, count: v.count)
            for (rank, i) in v.indices.sorted(by: { v[$0] < v[$1] || (v[$0] == v[$1] && $0 < $1) }).enumerated() { r[i] = Float(rank) }
            return r
        }
        let ra = ranks(a), rb = ranks(b)
        let n = Float(a.count), mean = (n - 1) / 2
        var num: Float = 0, da: Float = 0, db: Float = 0
        for i in 0..<a.count { let x = ra[i] - mean, y = rb[i] - mean; num += x * y; da += x * x; db += y * y }
        return da > 0 && db > 0 ? num / (da * db).squareRoot() : 0
    }
}

extension Float {
    var exp: Float { Float(Foundation.exp(Double(self))) }
}

import Foundation
