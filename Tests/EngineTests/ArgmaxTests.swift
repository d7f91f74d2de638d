import XCTest
@testable import Engine

final class ArgmaxTests: XCTestCase {
    func testFirstOfTiedMaximaWins() {
        let p: [Float] = [0.1, 0.4, 0.4, 0.1]
        XCTAssertEqual(p.withUnsafeBufferPointer { argmax($0.baseAddress!, count: 4) }, 1)
    }

    func testNaNIsSkippedUnlessFirst() {
        XCTAssertEqual(argmax([0.2, Float.nan, 0.7, .nan][...]), 2)
        XCTAssertEqual(argmax([Float.nan, 0.2, 0.7][...]), 0)
    }

    func testSliceIndexIsFromItsStart() {
        let probs: [Float] = [0.9, 0.1, 0.0,  0.2, 0.3, 0.5]
        XCTAssertEqual(argmax(probs[3..<6]), 2)
        XCTAssertEqual(argmax(probs[0..<3]), 0)
    }
}
