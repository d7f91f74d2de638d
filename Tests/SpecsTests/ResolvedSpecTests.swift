import Foundation
import XCTest
@testable import Specs
import Engine

/// Experiment ids hash the resolved spec's text, so the text must not drift:
/// Fixtures/resolved_specs.json holds specs as the dictionary-based loader
/// resolved them before specs became Codable, edge cases included.
final class ResolvedSpecTests: XCTestCase {
    var root: URL { URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent() }

    struct Case: Decodable { let file: String; let set: [String]; let resolved: String }

    func testResolvedSpecsAreByteIdenticalToTheFixture() throws {
        let data = try Data(contentsOf: root.appendingPathComponent("Tests/SpecsTests/Fixtures/resolved_specs.json"))
        let cases = try JSONDecoder().decode([Case].self, from: data)
        XCTAssertGreaterThan(cases.count, 20)
        for c in cases {
            let spec = try SpecLoader.load(root.appendingPathComponent(c.file).path, overrides: c.set.map { SpecOverride($0)! })
            XCTAssertEqual(spec.resolvedJSON, c.resolved, "\(c.file) \(c.set)")
        }
    }

    /// The canonical writer against JSONSerialization, the independent reference it replaces.
    func testCanonicalTextMatchesJSONSerialization() throws {
        let text = #"{"b": [1, 2.5, -3, 1e-7, 0.1, 1e21, -0.0, true, false, null], "a": {"z": "q\"u/o\\te\t\n\u0001é☃\u2028", "y": 64.0, "x": 0.0003, "w": {}, "v": []}}"#
        let value = try JSONValue(parsing: Data(text.utf8))
        let reference = try JSONSerialization.data(withJSONObject: JSONSerialization.jsonObject(with: Data(text.utf8)), options: [.sortedKeys])
        XCTAssertEqual(value.canonical, String(decoding: reference, as: UTF8.self))
        let pretty = try JSONSerialization.data(withJSONObject: JSONSerialization.jsonObject(with: Data(text.utf8)), options: [.prettyPrinted, .sortedKeys])
        XCTAssertEqual(value.pretty, String(decoding: pretty, as: UTF8.self), "lab show and the run page print specs this way")
    }

    /// A key given twice: the last one wins, as it did with JSONSerialization (the winner is hashed).
    func testDuplicateKeysKeepTheLast() throws {
        let text = #"{"train": {"lr": 0.1, "lr": 0.2}}"#
        let reference = try JSONSerialization.data(withJSONObject: JSONSerialization.jsonObject(with: Data(text.utf8)), options: [.sortedKeys])
        XCTAssertEqual(try JSONValue(parsing: Data(text.utf8)).canonical, String(decoding: reference, as: UTF8.self))
    }

    func testDefaultsComeFromTheTypedSections() throws {
        XCTAssertEqual(SpecLoader.defaults["model"]?["dropout"], .number(0.5), "ModelConfig's default")
        XCTAssertEqual(SpecLoader.defaults["dataset"]?["root"], .null)
        XCTAssertEqual(SpecLoader.defaults["explain"]?["layer"], .null)
        XCTAssertNil(SpecLoader.defaults["train"]?["seeds"], "absent seeds follow train.seed")
        let s = try SpecLoader.resolve(.object(["name": .string("n"), "train": .object(["seed": .number(5)])]), file: "x")
        XCTAssertEqual(s.train.runSeeds, [5])
        XCTAssertEqual(s.model.config, ModelConfig())
    }
}


