import Foundation

/// Student's t distribution with real-valued degrees of freedom (a
/// Welch-Satterthwaite df is rarely an integer): the CDF through the
/// regularized incomplete beta function, the quantile by bisection on it.
public enum StudentT {
    /// P(T <= t) for T ~ t(df).
    public static func cdf(_ t: Double, df: Double) -> Double {
        guard t.isFinite else { return t > 0 ? 1 : 0 }
        let tail = 0.5 * incompleteBeta(a: df / 2, b: 0.5, x: df / (df + t * t))   // P(T > |t|)
        return t > 0 ? 1 - tail : tail
    }

    /// Two-sided p-value of an observed t.
    public static func twoSidedP(_ t: Double, df: Double) -> Double {
        guard t.isFinite else { return 0 }
        return min(1, incompleteBeta(a: df / 2, b: 0.5, x: df / (df + t * t)))
    }

    /// The t with cdf(t) = p. Bisection: the CDF is monotone and cheap, and
    /// 200 halvings of [-1e8, 1e8] reach double precision for any df >= 0.1.
    public static func quantile(_ p: Double, df: Double) -> Double {
        precondition(p > 0 && p < 1, "quantile of \(p)")
        if p == 0.5 { return 0 }
        var lo = -1e8, hi = 1e8
        for _ in 0..<200 {
            let mid = (lo + hi) / 2
            if cdf(mid, df: df) < p { lo = mid } else { hi = mid }
            if hi - lo <= 1e-13 * max(1, abs(mid)) { break }
        }
        return (lo + hi) / 2
    }

    /// I_x(a, b), the regularized incomplete beta function, by its continued
    /// fraction (modified Lentz), on the side of x where it converges fast.
    static func incompleteBeta(a: Double, b: Double, x: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let logBeta: Double = lgamma(a) + lgamma(b) - lgamma(a + b)
        let logFront: Double = a * log(x) + b * log(1 - x) - logBeta
        if x < (a + 1) / (a + b + 2) { return exp(logFront) * betaFraction(a: a, b: b, x: x) / a }
        return 1 - exp(logFront) * betaFraction(a: b, b: a, x: 1 - x) / b
    }

    private static func betaFraction(a: Double, b: Double, x: Double) -> Double {
        let tiny = 1e-300
        var c = 1.0, d = 1 - (a + b) * x / (a + 1)
        d = 1 / (abs(d) < tiny ? tiny : d)
        var f = d
        for m in 1...1000 {
            let m = Double(m)
            let even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
            d = 1 + even * d; d = 1 / (abs(d) < tiny ? tiny : d)
            c = 1 + even / c; if abs(c) < tiny { c = tiny }
            f *= c * d
            let odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
            d = 1 + odd * d; d = 1 / (abs(d) < tiny ? tiny : d)
            c = 1 + odd / c; if abs(c) < tiny { c = tiny }
            f *= c * d
            if abs(c * d - 1) < 1e-15 { return f }
        }
        return f
    }
}
