import Engine
import Foundation

/// Classification metrics from a confusion matrix, or from probabilities
/// and true classes (which adds NLL and calibration).
public struct Metrics: Sendable {
    public let classes: Int
    public let count: Int
    public let confusion: [[Int]]          // [true][predicted]
    public let accuracy: Double
    public let precision: [Double?]        // nil where nothing was predicted as the class
    public let recall: [Double?]           // nil where the class has no images
    public let f1: [Double?]
    public let macroF1: Double             // over classes with support; a class never predicted counts 0
    public let balancedAccuracy: Double    // mean recall over classes with support: what imbalance cannot hide
    public let nll: Double                 // mean -log p(true class); NaN without probabilities
    public let ece: Double                 // expected calibration error; NaN without probabilities
    public let predicted: [Int]            // per image; empty without probabilities

    /// confusion: rows true, columns predicted.
    public init(confusion c: [[Int]], nll: Double = .nan, ece: Double = .nan, predicted: [Int] = []) {
        let k = c.count
        classes = k; confusion = c; self.nll = nll; self.ece = ece; self.predicted = predicted
        count = c.reduce(0) { $0 + $1.reduce(0, +) }
        accuracy = count > 0 ? Double((0..<k).reduce(0) { $0 + c[$1][$1] }) / Double(count) : 0
        var p = [Double?](), r = [Double?](), f = [Double?]()
        for j in 0..<k {
            let tp = Double(c[j][j])
            let predictedJ = Double((0..<k).reduce(0) { $0 + c[$1][j] })
            let support = Double(c[j].reduce(0, +))
            let pj = predictedJ > 0 ? tp / predictedJ : nil
            let rj = support > 0 ? tp / support : nil
            p.append(pj); r.append(rj)
            if support > 0 {
                f.append((pj ?? 0) + (rj ?? 0) > 0 ? 2 * (pj ?? 0) * (rj ?? 0) / ((pj ?? 0) + (rj ?? 0)) : 0)
            } else {
                f.append(nil)
            }
        }
        precision = p; recall = r; f1 = f
        let present = f.compactMap { $0 }
        macroF1 = present.isEmpty ? 0 : present.reduce(0, +) / Double(present.count)
        let recalls = r.compactMap { $0 }
        balancedAccuracy = recalls.isEmpty ? 0 : recalls.reduce(0, +) / Double(recalls.count)
    }

    /// probs: [n * classes], rows sum to 1; truth: [n].
    public init(probs: [Float], truth: [Int], classes: Int) {
        let n = truth.count
        var conf = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        var pred = [Int](repeating: 0, count: n), confidence = [Double](repeating: 0, count: n)
        var nll = 0.0
        for i in 0..<n {
            let row = probs[(i * classes)..<((i + 1) * classes)]
            let best = argmax(row)
            pred[i] = best
            conf[truth[i]][best] += 1
            nll -= log(max(Double(row[row.startIndex + truth[i]]), 1e-12))
            confidence[i] = Double(row[row.startIndex + best])
        }
        self.init(confusion: conf, nll: n > 0 ? nll / Double(n) : 0,
                  ece: Metrics.expectedCalibrationError(confidence: confidence, correct: (0..<n).map { pred[$0] == truth[$0] }),
                  predicted: pred)
    }

    /// Expected calibration error over equal-width confidence bins: the
    /// count-weighted mean |accuracy - confidence| per bin. A non-finite
    /// confidence (a diverged model) counts as 0.
    public static func expectedCalibrationError(confidence: [Double], correct: [Bool], bins: Int = 15) -> Double {
        guard !confidence.isEmpty else { return 0 }
        var n = [Int](repeating: 0, count: bins), conf = [Double](repeating: 0, count: bins), acc = conf
        for (c0, ok) in zip(confidence, correct) {
            let c = c0.isFinite ? c0 : 0
            let b = min(bins - 1, max(0, Int(c * Double(bins))))
            n[b] += 1; conf[b] += c; acc[b] += ok ? 1 : 0
        }
        var e = 0.0
        for b in 0..<bins where n[b] > 0 { e += abs(acc[b] - conf[b]) / Double(confidence.count) }
        return e
    }
}
