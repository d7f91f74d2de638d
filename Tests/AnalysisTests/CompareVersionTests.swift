import Foundation
import XCTest
@testable import Analysis
import Specs

/// `lab compare` and a spec changed between runs (by an edit or `--set`).
final class CompareVersionTests: XCTestCase {
    func testCompareTreatsAnOverriddenSpecAsANewVersion() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lab-compare-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("base.json").path
        _ = FileManager.default.createFile(atPath: path, contents: Data(#"{"name": "base"}"#.utf8))
        func run(_ id: String, _ spec: ExperimentSpec) -> Compare.RunData {
            .init(id: id, experiment: spec.name, parent: nil, seed: 1, fingerprint: "f", specJSON: spec.resolvedJSON, params: 1,
                  bestEpoch: 1, trainSeconds: 1, flops: 1e6, correct: ["a": true],
                  confusion: (0..<6).map { i in (0..<6).map { $0 == i ? 1 : 0 } })
        }
        let lr = try XCTUnwrap(SpecOverride("train.lr=0.001"))
        let runs = [run("01A", try SpecLoader.load(path)), run("01B", try SpecLoader.load(path, overrides: [lr]))]
        let row = try XCTUnwrap(try Compare.rows(["base": runs]).first)
        XCTAssertEqual(row.runs, 1)
        XCTAssertEqual(row.note, "1 run of an earlier spec with this name left out")
    }
}
