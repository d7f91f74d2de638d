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
