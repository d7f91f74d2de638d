import XCTest
@testable import LabKit

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

    func testBootstrapIntervalByHand() {
        // Constant differences: every resample has the same mean.
        let ci = Statistics.bootstrapCI([0.5, 0.5, 0.5])
        XCTAssertEqual(ci.low, 0.5); XCTAssertEqual(ci.high, 0.5)
        // Two values 0 and 1 equally often: resample means of n = 400 concentrate
        // around 0.5 with sd 0.025, so the 95% interval is about 0.5 +- 0.049.
        let diffs = (0..<400).map { Double($0 % 2) }
        let b = Statistics.bootstrapCI(diffs)
        XCTAssertEqual(b.low, 0.451, accuracy: 0.012)
        XCTAssertEqual(b.high, 0.549, accuracy: 0.012)
        XCTAssertEqual(Statistics.bootstrapCI(diffs).low, b.low, "seeded: reproducible")
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
