import Foundation
import LabRandom

public enum Statistics {
    public static func mean(_ v: [Double]) -> Double { v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count) }

    /// Sample variance (n - 1); 0 for a single value.
    public static func variance(_ v: [Double]) -> Double {
        guard v.count > 1 else { return 0 }
        let m = mean(v)
        return v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(v.count - 1)
    }

    /// Sample standard deviation (n - 1); 0 for a single value.
    public static func std(_ v: [Double]) -> Double { variance(v).squareRoot() }

    /// The smallest value whose cumulative weight reaches q (weights summing
    /// to 1; the 1e-12 absorbs the rounding of that sum).
    public static func weightedQuantile(_ draws: [(value: Double, weight: Double)], _ q: Double) -> Double {
        let sorted = draws.sorted { $0.value < $1.value }
        var cumulative = 0.0
        for d in sorted {
            cumulative += d.weight
            if cumulative >= q - 1e-12 { return d.value }
        }
        return sorted.last?.value ?? .nan
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

    /// Two-sided Wilcoxon signed-rank test on paired differences: zeros
    /// dropped, tied |d| share their mean rank. Up to `exactUpTo`
    /// differences the null distribution is exact (all 2^n sign flips,
    /// counted over doubled ranks so ties stay integers); above, the normal
    /// approximation with tie and continuity corrections (as scipy's "approx").
    public static func wilcoxonSignedRank(_ diffs: [Double], exactUpTo: Int = 200) -> Double {
        let d = diffs.filter { $0 != 0 && $0.isFinite }
        let n = d.count
        guard n > 0 else { return 1 }
        let order = d.indices.sorted { abs(d[$0]) < abs(d[$1]) }
        var rank2 = [Int](repeating: 0, count: n), ties = [Int]()
        var i = 0
        while i < n {
            var j = i
            while j + 1 < n && abs(d[order[j + 1]]) == abs(d[order[i]]) { j += 1 }
            for k in i...j { rank2[order[k]] = i + j + 2 }   // twice the mean of ranks i+1 ... j+1
            ties.append(j - i + 1)
            i = j + 1
        }
        let total2 = n * (n + 1)
        let plus2 = d.indices.filter { d[$0] > 0 }.reduce(0) { $0 + rank2[$1] }
        let low2 = min(plus2, total2 - plus2)
        if n <= exactUpTo {
            var count = [Double](repeating: 0, count: total2 + 1)   // sign patterns by doubled W+
            count[0] = 1
            var reach = 0
            for r in rank2 {
                reach += r
                for s in stride(from: reach, through: r, by: -1) { count[s] += count[s - r] }
            }
            return min(1, 2 * count[0...low2].reduce(0, +) / pow(2, Double(n)))
        }
        let mean = Double(total2) / 4
        let variance = Double(total2 * (2 * n + 1)) / 24 - ties.reduce(0.0) { $0 + Double($1 * $1 * $1 - $1) } / 48
        guard variance > 0 else { return 1 }
        let z = (Double(low2) / 2 - mean + 0.5) / variance.squareRoot()
        return min(1, erfc(-z / 2.0.squareRoot()))   // 2 * Phi(z)
    }

    static func logChoose(_ n: Int, _ k: Int) -> Double { lgamma(Double(n + 1)) - lgamma(Double(k + 1)) - lgamma(Double(n - k + 1)) }
}

extension Sequence where Element: Hashable {
    /// The elements in first-seen order, each once.
    public func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
