import Engine
import Foundation
import LabRandom

/// Does the model's confidence depend on the pixels the map ranks first?
/// Deletion and insertion AUC (Petsiuk et al., RISE 2018) against a blurred
/// copy of the image, and the confidence drop when only the top of the map is kept.
public struct Faithfulness {
    public let model: Model
    public let steps: Int
    public let keepFraction: Float

    public init(model: Model, steps: Int = 16, keepFraction: Float = 0.2) {
        self.model = model; self.steps = steps; self.keepFraction = keepFraction
    }

    public struct Scores: Sendable {
        public var deletionAUC: Float     // lower is more faithful
        public var insertionAUC: Float    // higher is more faithful
        public var confidenceDrop: Float  // relative drop keeping only the top `keepFraction`; lower is better
    }

    /// Box blur (radius S/12, three passes: close to a Gaussian).
    public static func blurred(_ x: [Float], S: Int) -> [Float] {
        let r = max(1, S / 12)
        var a = x, b = x
        for _ in 0..<3 {
            for y in 0..<S { for xx in 0..<S { for c in 0..<3 {
                var s: Float = 0, n: Float = 0
                for k in max(0, xx - r)...min(S - 1, xx + r) { s += a[(y * S + k) * 3 + c]; n += 1 }
                b[(y * S + xx) * 3 + c] = s / n
            } } }
            for y in 0..<S { for xx in 0..<S { for c in 0..<3 {
                var s: Float = 0, n: Float = 0
                for k in max(0, y - r)...min(S - 1, y + r) { s += b[(k * S + xx) * 3 + c]; n += 1 }
                a[(y * S + xx) * 3 + c] = s / n
            } } }
        }
        return a
    }

    /// Scores for one image x [S, S, 3] (normalized as the model expects)
    /// against its `baseline` (`blurred(x)`, computed once per image by the
    /// caller: every map of that image is scored against the same one).
    public func scores(image x: [Float], baseline base: [Float], map: [Float], target: Int) -> Scores {
        let S = model.imageSize, P = S * S, L = model.config.classes
        let order = map.indices.sorted { map[$0] > map[$1] || (map[$0] == map[$1] && $0 < $1) }
        // Batch: deletion curve (steps+1), insertion curve (steps+1), top-k kept.
        let n = 2 * (steps + 1) + 1
        var batch = [Float](repeating: 0, count: n * P * 3)
        for k in 0...steps {
            let cut = P * k / steps
            var del = x, ins = base
            for j in 0..<cut {
                let p = order[j]
                for c in 0..<3 { del[p * 3 + c] = base[p * 3 + c]; ins[p * 3 + c] = x[p * 3 + c] }
            }
            for i in 0..<(P * 3) { batch[k * P * 3 + i] = del[i]; batch[(steps + 1 + k) * P * 3 + i] = ins[i] }
        }
        var kept = base
        for j in 0..<Int(Float(P) * keepFraction) { let p = order[j]; for c in 0..<3 { kept[p * 3 + c] = x[p * 3 + c] } }
        for i in 0..<(P * 3) { batch[(n - 1) * P * 3 + i] = kept[i] }
        var rng = RNG(seed: 0)
        var probs = [Float]()
        var start = 0
        while start < n {   // at most 16 images per forward keeps activations small
            let m = min(16, n - start)
            _ = batch.withUnsafeBufferPointer { model.forward($0.baseAddress! + start * P * 3, N: m, training: false, rng: &rng) }
            model.softmax(N: m)
            for i in 0..<m { probs.append(model.probs[i * L + target]) }
            start += m
        }
        func auc(_ v: ArraySlice<Float>) -> Float {
            let a = Array(v)
            var s: Float = 0
            for i in 1..<a.count { s += (a[i] + a[i - 1]) / 2 }
            return s / Float(a.count - 1)
        }
        let original = probs[0]
        return Scores(deletionAUC: auc(probs[0...steps]), insertionAUC: auc(probs[(steps + 1)...(2 * steps + 1)]),
                      confidenceDrop: original > 0 ? max(0, original - probs[n - 1]) / original : 0)
    }
}
