import Foundation

/// Classification metrics from probabilities and true classes.
public struct Metrics: Sendable {
    public let classes: Int
    public let count: Int
    public let confusion: [[Int]]          // [true][predicted]
    public let accuracy: Double
    public let precision: [Double?]        // nil where nothing was predicted as the class
    public let recall: [Double?]           // nil where the class has no images
    public let f1: [Double?]
    public let macroF1: Double             // over classes with support; a class never predicted counts 0
    public let nll: Double                 // mean -log p(true class)
    public let ece: Double                 // expected calibration error, 15 equal-width confidence bins
    public let predicted: [Int]

    /// probs: [n * classes], rows sum to 1; truth: [n].
    public init(probs: [Float], truth: [Int], classes: Int) {
        let n = truth.count
        self.classes = classes; count = n
        var conf = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        var pred = [Int](repeating: 0, count: n)
        var nll = 0.0, correct = 0
        let bins = 15
        var binCount = [Int](repeating: 0, count: bins), binConf = [Double](repeating: 0, count: bins), binAcc = binConf
        for i in 0..<n {
            let row = probs[(i * classes)..<((i + 1) * classes)]
            var best = 0
            for k in 1..<classes where row[row.startIndex + k] > row[row.startIndex + best] { best = k }
            pred[i] = best
            conf[truth[i]][best] += 1
            if best == truth[i] { correct += 1 }
            nll -= log(max(Double(row[row.startIndex + truth[i]]), 1e-12))
            let c = Double(row[row.startIndex + best]).isFinite ? Double(row[row.startIndex + best]) : 0
            let b = min(bins - 1, Int(c * Double(bins)))
            binCount[b] += 1; binConf[b] += c; binAcc[b] += best == truth[i] ? 1 : 0
        }
        confusion = conf; predicted = pred
        accuracy = n > 0 ? Double(correct) / Double(n) : 0
        self.nll = n > 0 ? nll / Double(n) : 0
        var e = 0.0
        for b in 0..<bins where binCount[b] > 0 { e += abs(binAcc[b] - binConf[b]) / Double(n) }
        ece = e
        var p = [Double?](), r = [Double?](), f = [Double?]()
        for k in 0..<classes {
            let tp = Double(conf[k][k])
            let predictedK = Double((0..<classes).reduce(0) { $0 + conf[$1][k] })
            let support = Double(conf[k].reduce(0, +))
            let pk = predictedK > 0 ? tp / predictedK : nil
            let rk = support > 0 ? tp / support : nil
            p.append(pk); r.append(rk)
            if support > 0 { f.append((pk ?? 0) + (rk ?? 0) > 0 ? 2 * (pk ?? 0) * (rk ?? 0) / ((pk ?? 0) + (rk ?? 0)) : 0) } else { f.append(nil) }
        }
        precision = p; recall = r; f1 = f
        let present = f.compactMap { $0 }
        macroF1 = present.isEmpty ? 0 : present.reduce(0, +) / Double(present.count)
    }
}
