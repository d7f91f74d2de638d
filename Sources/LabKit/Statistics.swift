import Foundation
import LabRandom

public enum Statistics {
    public static func mean(_ v: [Double]) -> Double { v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count) }

    /// Sample standard deviation (n - 1); 0 for a single value.
    public static func std(_ v: [Double]) -> Double {
        guard v.count > 1 else { return 0 }
        let m = mean(v)
        return (v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(v.count - 1)).squareRoot()
    }

    /// Exact two-sided McNemar test: b = pairs only the first got right,
    /// c = pairs only the second got right. p = P(X <= min(b, c)) * 2 under
    /// X ~ Binomial(b + c, 1/2), capped at 1.
    public static func mcnemarExact(b: Int, c: Int) -> Double {
        let n = b + c
        guard n > 0 else { return 1 }
        let k = min(b, c)
        // log-space binomial terms for large n
        var cdf = 0.0
        for i in 0...k { cdf += exp(logChoose(n, i) - Double(n) * log(2)) }
        return min(1, 2 * cdf)
    }

    /// Holm's step-down adjustment, in the input's order: the i-th smallest
    /// of m p-values is multiplied by m - i (i from 0), capped at 1, and made
    /// non-decreasing along the sorted order, so that rejecting every
    /// adjusted p < alpha keeps the family-wise error rate at alpha.
    public static func holm(_ p: [Double]) -> [Double] {
        let order = p.indices.sorted { p[$0] != p[$1] ? p[$0] < p[$1] : $0 < $1 }
        var out = p, running = 0.0
        for (rank, i) in order.enumerated() {
            running = max(running, min(1, Double(p.count - rank) * p[i]))
            out[i] = running
        }
        return out
    }

    static func logChoose(_ n: Int, _ k: Int) -> Double { lgamma(Double(n + 1)) - lgamma(Double(k + 1)) - lgamma(Double(n - k + 1)) }

    /// Percentile bootstrap 95% interval of mean(diffs), resampling items
    /// (images) with replacement; seeded, so reports are reproducible.
    public static func bootstrapCI(_ diffs: [Double], resamples: Int = 2000, seed: UInt64 = 12345) -> (low: Double, high: Double) {
        guard !diffs.isEmpty else { return (.nan, .nan) }
        var rng = RNG(seed: seed)
        let n = diffs.count
        var means = [Double]()
        means.reserveCapacity(resamples)
        for _ in 0..<resamples {
            var s = 0.0
            for _ in 0..<n { s += diffs[Int(rng.next() % UInt64(n))] }
            means.append(s / Double(n))
        }
        means.sort()
        let lo = means[Int(0.025 * Double(resamples))], hi = means[min(resamples - 1, Int(0.975 * Double(resamples)))]
        return (lo, hi)
    }
}
