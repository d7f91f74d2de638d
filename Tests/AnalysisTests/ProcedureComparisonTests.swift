import Foundation
import LabRandom
import XCTest
@testable import Analysis

/// lab's seed-aware comparison against numpy/scipy (python/check_statistics.py
/// wrote the fixture), and its calibration on simulated runs whose seed,
/// image and image-by-arm variances are known.
final class ProcedureComparisonTests: XCTestCase {
    struct Reference: Decodable {
        struct Case: Decodable { var a: [[Int]], b: [[Int]], expected: [String: Double] }
        struct CDF: Decodable { var t: Double, df: Double, cdf: Double }
        struct Quantile: Decodable { var p: Double, df: Double, quantile: Double }
        struct Needed: Decodable { var difference: Double, sd: Double, runs: Int? }
        var cases: [Case]
        var t_cdf: [CDF]
        var t_quantile: [Quantile]
        var runs_needed: [Needed]
    }

    func reference() throws -> Reference {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let url = root.appendingPathComponent("Tests/AnalysisTests/Fixtures/statistics_reference.json")
        return try JSONDecoder().decode(Reference.self, from: Data(contentsOf: url))
    }

    func testStudentTAgainstScipy() throws {
        let ref = try reference()
        for c in ref.t_cdf {
            XCTAssertEqual(StudentT.cdf(c.t, df: c.df), c.cdf, accuracy: 1e-12, "cdf(\(c.t), df \(c.df))")
        }
        for q in ref.t_quantile {
            XCTAssertEqual(StudentT.quantile(q.p, df: q.df), q.quantile, accuracy: 1e-9 * max(1, abs(q.quantile)), "quantile(\(q.p), df \(q.df))")
        }
        XCTAssertEqual(StudentT.twoSidedP(0, df: 3), 1, accuracy: 1e-15)
    }

    func testEveryNumberOfTheComparisonAgainstNumpy() throws {
        for (k, c) in try reference().cases.enumerated() {
            let got = try XCTUnwrap(ProcedureComparison(a: c.a.map { $0.map { $0 == 1 } }, b: c.b.map { $0.map { $0 == 1 } }))
            let e = c.expected
            let values: [(String, Double)] = [
                ("delta", got.delta), ("run_variance", got.runVariance), ("image_variance", got.imageVariance),
                ("standard_error", got.standardError), ("df", got.df), ("ci_low", got.ciLow), ("ci_high", got.ciHigh),
                ("p", got.p), ("min_detectable", got.minDetectable), ("p_improve", got.pImprove),
            ]
            for (name, v) in values {
                XCTAssertEqual(v, e[name]!, accuracy: 1e-9 * max(1, abs(e[name]!)), "case \(k): \(name)")
            }
            let pairs = (0..<c.a.count).reduce(1) { $0 * (c.a.count + $1) / ($1 + 1) } * (0..<c.b.count).reduce(1) { $0 * (c.b.count + $1) / ($1 + 1) }
            // Enumerated resamples give the exact interval; drawn ones (7 vs 7) land within a couple of grid steps of it.
            let tolerance = pairs <= 200_000 ? 1e-12 : 0.05
            XCTAssertEqual(got.pImproveLow, e["p_improve_low"]!, accuracy: tolerance, "case \(k): P(A>B) low")
            XCTAssertEqual(got.pImproveHigh, e["p_improve_high"]!, accuracy: tolerance, "case \(k): P(A>B) high")
        }
    }

    func testRunsNeededAgainstScipy() throws {
        for n in try reference().runs_needed {
            XCTAssertEqual(ProcedureComparison.runsNeeded(toDetect: n.difference, runSD: n.sd), n.runs, "sd \(n.sd)")
        }
    }

    /// By hand: two runs a side, two images; A right on both images in both
    /// runs but one image in one run, B right on one image throughout.
    func testSmallCaseByHand() throws {
        let a = [[true, true], [true, false]], b = [[true, false], [true, false]]
        let c = try XCTUnwrap(ProcedureComparison(a: a, b: b))
        // Accuracies A 1, 0.5 (mean 0.75, var 0.125); B 0.5, 0.5 (var 0): delta 0.25.
        XCTAssertEqual(c.delta, 0.25, accuracy: 1e-15)
        XCTAssertEqual(c.runVariance, 0.125 / 2, accuracy: 1e-15)
        // Per-image differences 0, 0.5 (var 0.125); A's residuals +-0.25 on each cell: ss 0.25, df 1;
        // B's 0: interaction = 0.125 - 0.25 / 2 = 0.
        XCTAssertEqual(c.imageVariance, 0, accuracy: 1e-15)
        // Only A's term has spread: df = 1, t = 0.25 / 0.25 = 1, p = 0.5 (t with 1 df is Cauchy).
        XCTAssertEqual(c.df, 1, accuracy: 1e-12)
        XCTAssertEqual(c.p, 0.5, accuracy: 1e-12)
        // Every A run >= every B run; 1 vs 0.5 wins, 0.5 vs 0.5 ties: P = (1 + 1 + 0.5 + 0.5) / 4.
        XCTAssertEqual(c.pImprove, 0.75, accuracy: 1e-15)
        XCTAssertNil(ProcedureComparison(a: [[true, false]], b: b), "one run in an arm: no seed-aware test")
        XCTAssertNil(ProcedureComparison(a: b, b: b), "nothing varies: nothing to test against")
    }

    /// Simulated studies: runs of a logistic model with a seed effect (sd
    /// seedSD on the logit), image difficulty, and an image-by-arm effect
    /// (sd interactionSD) whose mean over the image population is 0.
    func simulate(_ rng: inout RNG, nA: Int, nB: Int, images: Int, shift: Double, seedSD: Double, interactionSD: Double) -> ([[Bool]], [[Bool]]) {
        let difficulty = (0..<images).map { _ in 0.8 + 1.2 * Double(rng.normal()) }
        let w = (0..<images).map { _ in interactionSD * Double(rng.normal()) }
        func arm(_ n: Int, _ s: Double, _ sign: Double) -> [[Bool]] {
            (0..<n).map { _ in
                let u = seedSD * Double(rng.normal())
                return (0..<images).map { i in
                    Double(rng.uniform(0, 1)) < 1 / (1 + exp(-(difficulty[i] + u + s + sign * w[i])))
                }
            }
        }
        return (arm(nA, shift, 1), arm(nB, 0, -1))
    }

    func accuracy(_ run: [Bool]) -> Double { Double(run.filter { $0 }.count) / Double(run.count) }

    /// The null holds (same procedure), with seed spread like the quickstart's:
    /// a 5% test must reject in about 5% of studies.
    func testAAComparisonsRejectAtTheNominalRate() {
        var rng = RNG(seed: 7)
        var rejected = 0, missed = 0
        let studies = 600
        for _ in 0..<studies {
            let (a, b) = simulate(&rng, nA: 3, nB: 3, images: 300, shift: 0, seedSD: 0.15, interactionSD: 0)
            guard let c = ProcedureComparison(a: a, b: b) else { continue }
            if c.p < 0.05 { rejected += 1 }
            if c.ciLow > 0 || c.ciHigh < 0 { missed += 1 }
        }
        // Binomial(600, 0.05): mean 30, sd 5.3.
        XCTAssertLessThanOrEqual(rejected, 48, "A/A rejections \(rejected) of \(studies)")
        XCTAssertGreaterThanOrEqual(rejected, 12, "a test that never rejects has no power either: \(rejected)")
        XCTAssertEqual(missed, rejected, "the interval and the test are one statement")
    }

    /// Arms that differ only on particular images (the image-by-arm effect
    /// averages to 0 over the population of faces): with the image term the
    /// test stays near 5%; runs alone (Welch on per-run accuracies) cannot
    /// see the interaction and reject far more often.
    func testImageByArmInteractionIsCounted() {
        var rng = RNG(seed: 11)
        var ours = 0, runsOnly = 0
        let studies = 400
        for _ in 0..<studies {
            let (a, b) = simulate(&rng, nA: 3, nB: 3, images: 200, shift: 0, seedSD: 0.02, interactionSD: 1.2)
            guard let c = ProcedureComparison(a: a, b: b) else { continue }
            if c.p < 0.05 { ours += 1 }
            // Welch over per-run accuracies: the same t without the image term.
            let va = Statistics.variance(a.map(accuracy)) / 3, vb = Statistics.variance(b.map(accuracy)) / 3
            let df = (va + vb) * (va + vb) / (va * va / 2 + vb * vb / 2)
            if StudentT.twoSidedP(c.delta / (va + vb).squareRoot(), df: df) < 0.05 { runsOnly += 1 }
        }
        XCTAssertLessThanOrEqual(ours, 36, "with the image term: \(ours) of \(studies)")
        XCTAssertGreaterThan(runsOnly, 2 * ours, "runs alone: \(runsOnly) of \(studies)")
    }

    /// A real difference (a shift of the logit for every image) is found,
    /// and more often the larger it is against the minimum detectable one.
    func testARealDifferenceIsFound() {
        var rng = RNG(seed: 5)
        var found = 0, mde = 0.0, delta = 0.0
        let studies = 200
        for _ in 0..<studies {
            let (a, b) = simulate(&rng, nA: 3, nB: 3, images: 600, shift: 0.45, seedSD: 0.05, interactionSD: 0)
            let c = ProcedureComparison(a: a, b: b)!
            if c.p < 0.05 && c.delta > 0 { found += 1 }
            mde += c.minDetectable / Double(studies); delta += c.delta / Double(studies)
        }
        XCTAssertGreaterThan(delta, mde, "the simulated effect is above the design's MDE")
        XCTAssertGreaterThanOrEqual(found, 160, "power above 80%: \(found) of \(studies)")
    }

    func testCalibrationCountsSplitsAndRefusesTooFewRuns() throws {
        var rng = RNG(seed: 3)
        let (runs, _) = simulate(&rng, nA: 8, nB: 0, images: 150, shift: 0, seedSD: 0.1, interactionSD: 0)
        let cal = try Calibration(experiment: "sim", correct: runs, arm: 3, splits: 5000)
        // 8 runs into two arms of 3: C(8,3) * C(5,3) / 2 = 280 distinct splits, each tried once.
        XCTAssertEqual(cal.splits, 280)
        XCTAssertLessThanOrEqual(cal.rejected, cal.splits / 5)
        XCTAssertEqual(cal.rejected, cal.missedZero)
        XCTAssertTrue(cal.text.contains("8 runs on 150 images, 280 random splits into two arms of 3 runs"), cal.text)
        XCTAssertThrowsError(try Calibration(experiment: "sim", correct: Array(runs.prefix(5)), arm: 3, splits: 10)) { e in
            XCTAssertEqual("\(e)", "sim has 5 completed runs; 3 vs 3 A/A splits need at least 6 (lab run ... --seeds 1,2,...)")
        }
    }
}
