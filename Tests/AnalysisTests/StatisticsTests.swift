import XCTest
@testable import Analysis

final class StatisticsTests: XCTestCase {
    func testMcNemarExactByHand() {
        // b = 0, c = 5: p = 2 * (1/2)^5 = 0.0625.
        XCTAssertEqual(Statistics.mcnemarExact(b: 0, c: 5), 0.0625, accuracy: 1e-12)
        // b = 1, c = 9: p = 2 * (1 + 10) / 1024 = 0.021484375.
        XCTAssertEqual(Statistics.mcnemarExact(b: 1, c: 9), 22.0 / 1024.0, accuracy: 1e-12)
        // b = c: p = 1 (capped).
        XCTAssertEqual(Statistics.mcnemarExact(b: 4, c: 4), 1)
        XCTAssertEqual(Statistics.mcnemarExact(b: 0, c: 0), 1)
        // Symmetric in b and c.
        XCTAssertEqual(Statistics.mcnemarExact(b: 12, c: 3), Statistics.mcnemarExact(b: 3, c: 12), accuracy: 1e-12)
        // b = 3, c = 12: 2 * (1 + 15 + 105 + 455) / 32768 = 0.03515625.
        XCTAssertEqual(Statistics.mcnemarExact(b: 3, c: 12), 2 * 576 / 32768.0, accuracy: 1e-12)
    }

    func testHolmByHand() {
        // Sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> raised to 0.06 (monotone).
        let adjusted = Statistics.holm([0.01, 0.04, 0.03, 0.005])
        for (a, e) in zip(adjusted, [0.03, 0.06, 0.06, 0.02]) { XCTAssertEqual(a, e, accuracy: 1e-12) }
        XCTAssertEqual(adjusted.count, 4)
        // Capped at 1; a single test is left as it is; ties keep their order.
        XCTAssertEqual(Statistics.holm([0.6, 0.5]), [1, 1])
        XCTAssertEqual(Statistics.holm([0.03]), [0.03])
        XCTAssertEqual(Statistics.holm([0.02, 0.02]), [0.04, 0.04])
        XCTAssertEqual(Statistics.holm([]), [])
    }

    func testWilcoxonSignedRankAgainstHandAndScipy() {
        // All five positive: only 1 of 32 sign patterns is as extreme, two-sided 2/32.
        XCTAssertEqual(Statistics.wilcoxonSignedRank([1, 2, 3, 4, 5]), 0.0625, accuracy: 1e-12)
        XCTAssertEqual(Statistics.wilcoxonSignedRank([0, 1, 2, 0, 3, 4, 5]), 0.0625, accuracy: 1e-12, "zeros dropped")
        // W- = 2: subsets of 1..5 summing to <= 2 are {}, {1}, {2}: 2 * 3/32.
        XCTAssertEqual(Statistics.wilcoxonSignedRank([1, -2, 3, 4, 5]), 0.1875, accuracy: 1e-12)
        XCTAssertEqual(Statistics.wilcoxonSignedRank([-1, 2, -3, -4, -5]), 0.1875, accuracy: 1e-12, "two-sided")
        // Ties: |d| = 1, 1, 1, 2 rank 2, 2, 2, 4; W- = 2 is reached by {}, and each single 2: 2 * 4/16.
        XCTAssertEqual(Statistics.wilcoxonSignedRank([1, 1, -1, 2]), 0.5, accuracy: 1e-12)
        // scipy.stats.wilcoxon(d, method="exact"), no ties.
        XCTAssertEqual(Statistics.wilcoxonSignedRank([0.3, -0.1, 0.25, 0.4, -0.05, 0.2, 0.15, 0.35, -0.31, 0.12]), 0.10546875, accuracy: 1e-12)
        // With the tie |0.3| = |-0.3|, by brute force over all 1024 sign flips
        // of the mid-ranks (scipy's "exact" ignores ties and says 0.105).
        XCTAssertEqual(Statistics.wilcoxonSignedRank([0.3, -0.1, 0.25, 0.4, -0.05, 0.2, 0.15, 0.35, -0.3, 0.12]), 0.087890625, accuracy: 1e-12)
        // scipy.stats.wilcoxon(d, method="approx", correction=True), with ties and zeros.
        let d = (0..<300).map { Double(($0 * 37) % 101 - 45) / 100 }
        XCTAssertEqual(Statistics.wilcoxonSignedRank(d), 0.005634513322090639, accuracy: 1e-9)
        let d2 = (0..<300).map { Double(($0 * 37) % 101 - 40) / 100 }
        XCTAssertEqual(Statistics.wilcoxonSignedRank(d2), 1.0654509258116039e-07, accuracy: 1e-12)
        let d3 = (0..<120).map { Double(($0 * 37) % 101 - 47) / 100 }
        XCTAssertEqual(Statistics.wilcoxonSignedRank(d3, exactUpTo: 0), 0.3849635842746819, accuracy: 1e-9)
        XCTAssertEqual(Statistics.wilcoxonSignedRank(d3), 0.3849635842746819, accuracy: 0.01, "exact and approximate agree at n = 120")
        XCTAssertEqual(Statistics.wilcoxonSignedRank([]), 1)
    }

    func testPriorVerdictByHand() throws {
        // Ten faces: the map has more energy in the regions on every one
        // (p = 2/1024), but points inside on 5 where the prior does on all 10
        // (McNemar 0 vs 5 discordant: p = 2/32, not significant).
        let pairs = (0..<10).map { k in
            PriorVerdict.Pair(energy: 0.6 + Double(k) / 100, priorEnergy: 0.5, hit: k < 5, priorHit: true)
        }
        let v = try XCTUnwrap(PriorVerdict(method: "gradcam", pairs: pairs))
        XCTAssertEqual(v.energy.p, 2.0 / 1024, accuracy: 1e-12)
        XCTAssertEqual(v.energy.outcome, "beats"); XCTAssertEqual(v.energy.better, 10)
        XCTAssertEqual(v.pointing.map, 0.5); XCTAssertEqual(v.pointing.prior, 1)
        XCTAssertEqual(v.pointing.p, 0.0625, accuracy: 1e-12); XCTAssertEqual(v.pointing.outcome, "no better than")
        XCTAssertEqual(v.energyCell, "beats (p = 0.002)"); XCTAssertEqual(v.pointingCell, "no better (p = 0.062)")
        XCTAssertTrue(v.text.hasPrefix("verdict, gradcam vs centre prior over 10 faces (paired):"), v.text)
        XCTAssertTrue(v.pointingText.hasSuffix("McNemar p = 0.062: no better than the centre prior"), v.pointingText)
        // Missing on all 8 faces the prior hits: worse, p = 2/256.
        let worse = try XCTUnwrap(PriorVerdict(method: "gradcam", pairs: (0..<8).map { _ in .init(energy: 0.4, priorEnergy: 0.4, hit: false, priorHit: true) }))
        XCTAssertEqual(worse.pointing.outcome, "worse than"); XCTAssertEqual(worse.pointing.p, 2.0 / 256, accuracy: 1e-12)
        XCTAssertEqual(worse.energy.p, 1); XCTAssertEqual(worse.energy.outcome, "no better than")
        XCTAssertNil(PriorVerdict(method: "gradcam", pairs: []))
    }

    func testMeanAndStd() {
        XCTAssertEqual(Statistics.mean([1, 2, 3, 4]), 2.5)
        XCTAssertEqual(Statistics.std([2, 4, 4, 4, 5, 5, 7, 9]), 2.138089935299395, accuracy: 1e-12)
        XCTAssertEqual(Statistics.std([3]), 0)
    }
}

final class MetricsTests: XCTestCase {
    func testMetricsFromConfusionByHand() {
        // rows true, columns predicted
        let m = Metrics(confusion: [[3, 1], [0, 2]])
        XCTAssertEqual(m.accuracy, 5.0 / 6.0, accuracy: 1e-12)
        XCTAssertEqual(m.precision[0]!, 1); XCTAssertEqual(m.precision[1]!, 2.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(m.recall[0]!, 0.75); XCTAssertEqual(m.recall[1]!, 1)
        XCTAssertEqual(m.f1[0]!, 2 * 0.75 / 1.75, accuracy: 1e-12); XCTAssertEqual(m.f1[1]!, 0.8, accuracy: 1e-12)
        XCTAssertEqual(m.macroF1, (2 * 0.75 / 1.75 + 0.8) / 2, accuracy: 1e-12)
        // A class with no images is left out of macro-F1; one never predicted scores 0.
        let n = Metrics(confusion: [[2, 0, 0], [1, 0, 0], [0, 0, 0]])
        XCTAssertNil(n.recall[2]); XCTAssertNil(n.precision[1]); XCTAssertEqual(n.f1[1], 0)
        XCTAssertEqual(n.macroF1, (0.8 + 0) / 2, accuracy: 1e-12)
    }

    /// 90 happy faces all right, 10 surprised all called happy: 90% accuracy,
    /// 50% balanced accuracy (recall 1 and 0), the class without images left out.
    func testBalancedAccuracyIsMeanRecallOverClassesWithImages() {
        let m = Metrics(confusion: [[90, 0, 0], [10, 0, 0], [0, 0, 0]])
        XCTAssertEqual(m.accuracy, 0.9, accuracy: 1e-12)
        XCTAssertEqual(m.balancedAccuracy, 0.5, accuracy: 1e-12)
        XCTAssertEqual(Metrics(confusion: [[3, 1], [0, 2]]).balancedAccuracy, (0.75 + 1) / 2, accuracy: 1e-12)
        XCTAssertEqual(Compare.confusedSummary([[90, 0, 0], [10, 0, 2], [0, 1, 0]]), "surprise → happiness 10, surprise → sadness 2, sadness → surprise 1")
        XCTAssertEqual(Compare.confusedSummary([[1, 0], [0, 1]]), "no errors")
    }

    func testProbabilitiesGiveTheSameConfusionPlusNLLAndECE() {
        let probs: [Float] = [0.9, 0.1, 0.9, 0.1, 0.2, 0.8]
        let m = Metrics(probs: probs, truth: [0, 1, 1], classes: 2)
        XCTAssertEqual(m.confusion, [[1, 0], [1, 1]])
        XCTAssertEqual(m.predicted, [0, 0, 1])
        XCTAssertEqual(m.nll, -(log(0.9) + log(Double(Float(0.1))) + log(Double(Float(0.8)))) / 3, accuracy: 1e-6)
        // Confidences 0.9 (right), 0.9 (wrong), 0.8 (right): bin of 0.9 has accuracy 0.5 vs confidence 0.9,
        // bin of 0.8 has 1.0 vs 0.8 -> (2 * 0.4 + 0.2) / 3.
        XCTAssertEqual(m.ece, (2 * 0.4 + 0.2) / 3, accuracy: 1e-6)
        XCTAssertEqual(Metrics.expectedCalibrationError(confidence: [.nan], correct: [false]), 0)
    }
}
