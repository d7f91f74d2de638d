import Foundation
import LabRandom

/// Does a change make the training procedure better? Two arms, each a set of
/// runs (seeds) of one spec, every run scored on the same images.
///
/// The accuracy of run r of arm a on image i is modelled as
///   y = mu_a + u_r + v_i + w_ai + e_ri
/// u the seed (run) effect, v the image's difficulty (shared by both arms, so
/// it cancels in a paired difference), w the image-by-arm interaction (the
/// images on which one procedure does better than the other), e the rest.
/// Treating runs and images as samples from their populations,
///   Var(delta) = s_A^2/n_A + s_B^2/n_B + sigma_w^2/n_I
/// where s^2 is the variance of per-run accuracies within an arm (which holds
/// e's share, sigma_e^2/n_I, already), and sigma_w^2 is estimated by the
/// method of moments: the variance over images of the per-image difference of
/// the arms' mean correctness, less e's share in it (sigma_e^2/n_A +
/// sigma_e^2/n_B, sigma_e^2 from each arm's runs-by-images residuals), floored
/// at 0. The test is a t-test with Welch-Satterthwaite degrees of freedom.
/// Arms are independent: a seed number pairs nothing across arms.
public struct ProcedureComparison: Equatable, Sendable {
    public var delta: Double            // mean over A's runs of accuracy, minus B's
    public var standardError: Double
    public var df: Double               // Welch-Satterthwaite
    public var runVariance: Double      // s_A^2/n_A + s_B^2/n_B
    public var imageVariance: Double    // sigma_w^2/n_I
    public var ciLow: Double, ciHigh: Double
    public var p: Double                // two-sided
    /// P(a run of A scores above a run of B), ties counted half, with a 95%
    /// interval from the stratified bootstrap over runs (Agarwal et al. 2021).
    public var pImprove: Double
    public var pImproveLow: Double, pImproveHigh: Double
    /// The smallest |delta| this design detects with 80% power at 5% two-sided,
    /// given its measured spread: (t_.975 + t_.80) * standard error.
    public var minDetectable: Double

    public static let alpha = 0.05, power = 0.8

    /// `a`, `b`: per-run correctness, [runs][images], images in one order for
    /// every run. Nil when an arm has fewer than two runs (its seed spread is
    /// unknown) or when nothing varies at all.
    public init?(a: [[Bool]], b: [[Bool]]) {
        guard a.count >= 2, b.count >= 2, let nI = a.first?.count, nI >= 2,
              (a + b).allSatisfy({ $0.count == nI }) else { return nil }
        let A = Arm(a), B = Arm(b)
        let diffs = (0..<nI).map { A.imageMeans[$0] - B.imageMeans[$0] }
        let interaction = max(0, Statistics.variance(diffs) - A.residualVariance / Double(A.runs) - B.residualVariance / Double(B.runs))
        let termA = A.accuracyVariance / Double(A.runs), termB = B.accuracyVariance / Double(B.runs)
        let termImage = interaction / Double(nI)
        let se2 = termA + termB + termImage
        guard se2 > 0 else { return nil }
        delta = A.meanAccuracy - B.meanAccuracy
        standardError = se2.squareRoot()
        runVariance = termA + termB
        imageVariance = termImage
        df = se2 * se2 / (termA * termA / Double(A.runs - 1) + termB * termB / Double(B.runs - 1) + termImage * termImage / Double(nI - 1))
        let q = StudentT.quantile(1 - Self.alpha / 2, df: df)
        ciLow = delta - q * standardError
        ciHigh = delta + q * standardError
        p = StudentT.twoSidedP(delta / standardError, df: df)
        minDetectable = (q + StudentT.quantile(Self.power, df: df)) * standardError
        (pImprove, pImproveLow, pImproveHigh) = Self.probabilityOfImprovement(A.accuracies, B.accuracies)
    }

    /// One arm's runs: accuracies, per-image mean correctness and the
    /// residual variance of the runs-by-images table (both means removed).
    struct Arm {
        var runs: Int
        var accuracies: [Double]
        var imageMeans: [Double]
        var meanAccuracy: Double
        var accuracyVariance: Double
        var residualVariance: Double

        init(_ y: [[Bool]]) {
            let nR = y.count, nI = y[0].count
            runs = nR
            accuracies = y.map { r in Double(r.lazy.filter { $0 }.count) / Double(nI) }
            var sums = [Double](repeating: 0, count: nI)
            for r in y { for i in 0..<nI where r[i] { sums[i] += 1 } }
            imageMeans = sums.map { $0 / Double(nR) }
            meanAccuracy = Statistics.mean(accuracies)
            accuracyVariance = Statistics.variance(accuracies)
            var ss = 0.0
            for (k, r) in y.enumerated() {
                let rowOffset = accuracies[k] - meanAccuracy
                for i in 0..<nI {
                    let e = (r[i] ? 1.0 : 0.0) - imageMeans[i] - rowOffset
                    ss += e * e
                }
            }
            residualVariance = ss / Double((nR - 1) * (nI - 1))
        }
    }

    /// P(A > B) over run pairs and its 95% percentile interval under the
    /// bootstrap that resamples runs within each arm. Small arms (up to
    /// 200,000 pairs of resamples: 6 runs a side) enumerate every resample
    /// with its multinomial weight, so the interval is exact and reproducible;
    /// larger ones draw 4,000 seeded resamples.
    static func probabilityOfImprovement(_ a: [Double], _ b: [Double]) -> (Double, Double, Double) {
        // g[i][j]: run i of A against run j of B.
        let g = a.map { x in b.map { y in x > y ? 1.0 : (x == y ? 0.5 : 0) } }
        func p(_ ca: [Int], _ cb: [Int]) -> Double {
            var s = 0.0
            for i in ca.indices where ca[i] > 0 {
                for j in cb.indices where cb[j] > 0 { s += Double(ca[i] * cb[j]) * g[i][j] }
            }
            return s / Double(ca.reduce(0, +) * cb.reduce(0, +))
        }
        let point = p([Int](repeating: 1, count: a.count), [Int](repeating: 1, count: b.count))
        let ra = Resamples(runs: a.count), rb = Resamples(runs: b.count)
        var draws = [(value: Double, weight: Double)]()
        if ra.count * rb.count <= 200_000 {
            for x in ra.all { for y in rb.all { draws.append((p(x.counts, y.counts), x.weight * y.weight)) } }
        } else {
            var rng = RNG(seed: 20_211_206)
            for _ in 0..<4000 { draws.append((p(ra.draw(&rng), rb.draw(&rng)), 1.0 / 4000)) }
        }
        return (point, Statistics.weightedQuantile(draws, 0.025), Statistics.weightedQuantile(draws, 0.975))
    }

    /// The bootstrap resamples of n runs as count vectors (how often each run
    /// is drawn), each with its probability n! / (prod c_i!) / n^n.
    struct Resamples {
        var runs: Int
        /// Multisets of size n from n items: C(2n - 1, n).
        var count: Int { (0..<runs).reduce(1) { $0 * (runs + $1) / ($1 + 1) } }

        var all: [(counts: [Int], weight: Double)] {
            var out = [(counts: [Int], weight: Double)]()
            var c = [Int](repeating: 0, count: runs)
            let logNorm = lgamma(Double(runs + 1)) - Double(runs) * log(Double(runs))
            func fill(_ i: Int, _ left: Int) {
                if i == runs - 1 {
                    c[i] = left
                    out.append((c, exp(logNorm - c.reduce(0) { $0 + lgamma(Double($1 + 1)) })))
                    return
                }
                for k in stride(from: left, through: 0, by: -1) { c[i] = k; fill(i + 1, left - k) }
            }
            fill(0, runs)
            return out
        }

        func draw(_ rng: inout RNG) -> [Int] {
            var c = [Int](repeating: 0, count: runs)
            for _ in 0..<runs { c[Int(rng.next() % UInt64(runs))] += 1 }
            return c
        }
    }

    /// Runs per arm needed to detect `difference` with 80% power at 5%
    /// two-sided, for arms of equal size whose runs spread with standard
    /// deviation `runSD` (image-by-arm interaction left out: a lower bound).
    public static func runsNeeded(toDetect difference: Double, runSD: Double, upTo limit: Int = 1000) -> Int? {
        guard runSD > 0 else { return 2 }
        for n in 2...limit {
            let df = Double(2 * n - 2)
            let se = runSD * (2 / Double(n)).squareRoot()
            if (StudentT.quantile(1 - alpha / 2, df: df) + StudentT.quantile(power, df: df)) * se <= difference { return n }
        }
        return nil
    }
}
