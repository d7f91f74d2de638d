import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import GRDB
import XCTest
@testable import Analysis
@testable import Specs
@testable import Training
@testable import Registry

final class ReportTests: XCTestCase {
    /// A baseline and an ablation, two seeds each, on a tiny synthetic set.
    func makeRegistry(_ ws: Workspace) throws -> Registry {
        let reg = try ws.registry()
        let base = ws.spec("base", epochs: 2)
        let ablation = ws.dir.appendingPathComponent("abl.json").path
        _ = FileManager.default.createFile(atPath: ablation, contents: Data(#"{"name": "abl", "extends": "base.json", "model": {"skip": false}}"#.utf8))
        let runner = Runner(registry: reg, reporter: .silent)
        for path in [base, ablation] {
            let spec = try SpecLoader.load(path)
            for seed in [1, 2] { try runner.run(spec, seed: seed, options: RunOptions(threads: 1)) }
        }
        return reg
    }

    func testCompareMatchesSQLAndHandWorkedStatistics() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let reg = try makeRegistry(ws)
        let rows = try Compare.rows(try Compare.load(reg, split: .val))
        XCTAssertEqual(rows.map(\.experiment), ["base", "abl"])
        let abl = rows[1]
        XCTAssertEqual(abl.baseline, "base"); XCTAssertEqual(abl.runs, 2)
        XCTAssertEqual(abl.changes, ["model.skip=false"])
        // Accuracy per run straight from SQL.
        let sqlAcc = try reg.read { db in
            try Double.fetchAll(db, sql: """
                SELECT AVG(p.true_class = p.predicted_class) FROM predictions p JOIN runs r ON r.id = p.run_id
                JOIN experiments e ON e.id = r.experiment_id WHERE e.name = ? AND p.split = 'val' GROUP BY p.run_id ORDER BY p.run_id
                """, arguments: ["abl"])
        }
        XCTAssertEqual(abl.accMean, Statistics.mean(sqlAcc), accuracy: 1e-12)
        XCTAssertEqual(abl.accStd, Statistics.std(sqlAcc), accuracy: 1e-12)
        // The seed-aware test on per-run, per-image correctness read independently in SQL.
        XCTAssertEqual(try XCTUnwrap(abl.pValue), try comparison(reg, "abl", against: "base").p, accuracy: 1e-12)
        XCTAssertNotNil(abl.pImprove); XCTAssertNotNil(abl.minDetectable)
        XCTAssertNil(abl.mcnemarP, "two runs a side: the procedures are compared, not two models")
        XCTAssertEqual(abl.holmP, abl.pValue, "a family of one test is not adjusted")
        XCTAssertNil(rows[0].holmP, "the baseline is not tested")
        XCTAssertNotNil(abl.ciLow); XCTAssertLessThanOrEqual(abl.ciLow!, abl.ciHigh!)
        let text = Compare.text(rows, split: .val)
        XCTAssertTrue(text.hasPrefix("split: validation (best epoch)"))
        // Balanced accuracy beside accuracy, the mean of the per-class recall that class_metrics records.
        let sqlBalanced = try reg.read { db in
            try Double.fetchAll(db, sql: """
                SELECT AVG(m.recall) FROM class_metrics m JOIN runs r ON r.id = m.run_id JOIN experiments e ON e.id = r.experiment_id
                WHERE e.name = 'abl' AND m.split = 'val' GROUP BY m.run_id ORDER BY m.run_id
                """)
        }
        XCTAssertEqual(abl.balancedAccuracy, Statistics.mean(sqlBalanced), accuracy: 1e-12)
        XCTAssertTrue(text.contains("bal acc") && text.contains("most confused (true → predicted"), text)
        XCTAssertTrue(text.contains("  abl: " + Compare.confusedSummary(abl.confusion)), text)
        let runs = try RunRow.all(reg)
        let ablRuns = runs.filter { $0.experiment == "abl" }
        XCTAssertEqual(ablRuns.compactMap(\.valBalancedAccuracy), sqlBalanced)
        XCTAssertEqual(ablRuns.first?.valRecall.count, 6)
        XCTAssertTrue(RunTable.render(runs).contains("val bal acc"))
        let viewed = try reg.read { db in
            try Double.fetchAll(db, sql: "SELECT val_balanced_accuracy FROM run_summary WHERE experiment = 'abl' ORDER BY run_id")
        }
        XCTAssertEqual(viewed, sqlBalanced.map { ($0 * 10000).rounded() / 10000 })
        let board = try reg.read { try Double.fetchOne($0, sql: "SELECT mean_val_balanced_accuracy FROM leaderboard WHERE experiment = 'abl'") }
        XCTAssertEqual(try XCTUnwrap(board), Statistics.mean(sqlBalanced), accuracy: 1e-4)
        XCTAssertTrue(text.split(separator: "\n").allSatisfy { $0.count <= 120 }, text)
        XCTAssertTrue(text.contains("\n* significant at 5% family-wise (Holm over the 1 seed-aware test shown): "
                                    + (abl.pValue! < 0.05 ? "abl vs base" : "none") + "\n"), text)
    }

    /// Per-run correctness of an experiment's validation predictions, straight from SQL, image order by name.
    func correctness(_ reg: Registry, _ experiment: String) throws -> [[Bool]] {
        let rows = try reg.read { db in
            try GRDB.Row.fetchAll(db, sql: """
                SELECT p.run_id, p.true_class = p.predicted_class AS ok FROM predictions p JOIN runs r ON r.id = p.run_id
                JOIN experiments e ON e.id = r.experiment_id WHERE e.name = ? AND p.split = 'val' ORDER BY p.run_id, p.image
                """, arguments: [experiment])
        }
        var runs = [String: [Bool]](), order = [String]()
        for r in rows {
            let id: String = r["run_id"]
            if runs[id] == nil { order.append(id) }
            runs[id, default: []].append(r["ok"])
        }
        return order.map { runs[$0]! }
    }

    func comparison(_ reg: Registry, _ a: String, against b: String) throws -> ProcedureComparison {
        try XCTUnwrap(ProcedureComparison(a: try correctness(reg, a), b: try correctness(reg, b)))
    }

    /// Arms of 3 and 5 runs compare; an arm of one run gets the model-level
    /// McNemar (on the same-seed pair, counted in SQL) and says what it is.
    func testUnequalArmsAndAOneRunArm() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let reg = try ws.registry()
        let runner = Runner(registry: reg, reporter: .silent)
        let base = try SpecLoader.load(ws.spec("base", epochs: 2))
        for seed in 1...5 { try runner.run(base, seed: seed, options: RunOptions(threads: 1)) }
        for (name, seeds) in [("three", [1, 2, 3]), ("one", [2])] {
            let path = ws.dir.appendingPathComponent("\(name).json").path
            _ = FileManager.default.createFile(atPath: path, contents: Data(#"{"name": "\#(name)", "extends": "base.json", "model": {"skip": false}}"#.utf8))
            for seed in seeds { try runner.run(try SpecLoader.load(path), seed: seed, options: RunOptions(threads: 1)) }
        }
        let rows = try Compare.rows(try Compare.load(reg, split: .val))
        XCTAssertEqual(rows.map(\.experiment), ["base", "one", "three"])
        let three = rows[2], one = rows[1]
        XCTAssertEqual(three.runs, 3)
        let expected = try comparison(reg, "three", against: "base")
        XCTAssertEqual(try XCTUnwrap(three.pValue), expected.p, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(three.ciLow), expected.ciLow, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(three.pImprove), expected.pImprove, accuracy: 1e-12)
        XCTAssertEqual(three.holmP, three.pValue, "one seed-aware test in the table: nothing to adjust")
        XCTAssertNil(one.pValue); XCTAssertNil(one.ciLow); XCTAssertNil(one.holmP); XCTAssertNil(one.pImprove)
        let (b, c) = try reg.read { db -> (Int, Int) in
            let r = try GRDB.Row.fetchOne(db, sql: """
                SELECT SUM(pb.true_class = pb.predicted_class AND pa.true_class != pa.predicted_class),
                       SUM(pb.true_class != pb.predicted_class AND pa.true_class = pa.predicted_class)
                FROM predictions pa JOIN runs ra ON ra.id = pa.run_id JOIN experiments ea ON ea.id = ra.experiment_id
                JOIN runs rb ON rb.seed = ra.seed JOIN experiments eb ON eb.id = rb.experiment_id
                JOIN predictions pb ON pb.run_id = rb.id AND pb.image = pa.image AND pb.split = pa.split
                WHERE ea.name = 'one' AND eb.name = 'base' AND pa.split = 'val'
                """)!
            return (r[0] ?? 0, r[1] ?? 0)
        }
        XCTAssertEqual(try XCTUnwrap(one.mcnemarP), Statistics.mcnemarExact(b: b, c: c), accuracy: 1e-12)
        XCTAssertEqual(one.note, "one run in an arm: the change and the seed cannot be told apart; McNemar p = \(Compare.pString(one.mcnemarP)) "
                       + "compares two trained models (seeds 2 and 2) on these images, not the two procedures")
        let text = Compare.text(rows, split: .val)
        XCTAssertTrue(text.contains("one vs base: model.skip=false  [one run in an arm:"), text)
        let csv = Compare.csv(rows, split: .val).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        let column = { (name: String) in csv[0].firstIndex(of: Substring(name))! }
        XCTAssertEqual(csv[1][column("mcnemar_p")], "", "the baseline row")
        XCTAssertEqual(Double(csv[2][column("mcnemar_p")])!, one.mcnemarP!, accuracy: 1e-6)
        XCTAssertEqual(csv[2][column("p_value")], "")
        XCTAssertEqual(Double(csv[3][column("p_value")])!, expected.p, accuracy: 1e-6)
        XCTAssertEqual(Double(csv[3][column("min_detectable")])!, expected.minDetectable, accuracy: 1e-4)
        XCTAssertEqual(csv[3][column("mcnemar_p")], "")
        // lab compare --seeds 1,2,3: arms of three.
        let three3 = try Compare.rows(Compare.restricted(try Compare.load(reg, split: .val), toSeeds: [1, 2, 3]))
        XCTAssertEqual(three3.map(\.runs), [3, 1, 3])
        XCTAssertEqual(Compare.restricted(try Compare.load(reg, split: .val), toSeeds: [4, 5]).keys.sorted(), ["base"])
    }

    /// Four ablations and a baseline, p-values by hand: Holm over the four shown.
    func testHolmAdjustsOverTheComparisonsShownAndMarksSurvivors() {
        func row(_ name: String, _ p: Double?) -> Compare.Row {
            Compare.Row(experiment: name, baseline: p == nil ? nil : "base", runs: 1, accMean: 0.5, accStd: 0, delta: p == nil ? nil : 0.01,
                        ciLow: nil, ciHigh: nil, pValue: p, macroF1: 0.4, recall: Array(repeating: 0.5, count: 6), params: 1,
                        bestEpoch: 1, trainSeconds: 1, changes: [], note: nil)
        }
        let rows = Compare.withHolm([row("base", nil), row("a", 0.01), row("b", 0.04), row("c", 0.03), row("d", 0.005)])
        XCTAssertNil(rows[0].holmP)
        for (r, e) in zip(rows.dropFirst(), [0.03, 0.06, 0.06, 0.02]) { XCTAssertEqual(r.holmP!, e, accuracy: 1e-12, r.experiment) }
        XCTAssertEqual(Compare.holmFootnote(rows, marker: "*"), "* significant at 5% family-wise (Holm over the 4 seed-aware tests shown): a vs base, d vs base")
        XCTAssertNil(Compare.holmFootnote([rows[0]], marker: "*"), "no tests, no footnote")
        let text = Compare.text(rows, split: .val)
        let lines = text[text.range(of: "against the baseline")!.lowerBound...].split(separator: "\n")
        let b = lines.first { $0.hasPrefix("b ") }!, d = lines.first { $0.hasPrefix("d ") }!
        XCTAssertTrue(b.contains("0.040  0.060 "), String(b)); XCTAssertTrue(d.contains("0.005  0.020*"), String(d))
        let csv = Compare.csv(rows, split: .val).split(separator: "\n")
        XCTAssertTrue(csv[0].contains(",delta_accuracy,ci_low,ci_high,p_value,holm_p,p_improve,p_improve_low,p_improve_high,min_detectable,mcnemar_p,macro_f1,"))
        XCTAssertTrue(csv[3].contains(",0.040000,0.060000,"), String(csv[3]))
    }

    func testAnEditedSpecIsComparedByItsLatestRunsOnly() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let reg = try makeRegistry(ws)
        // Edit base.json (a different lr) and run it once more.
        let path = ws.spec("base", extra: #", "lr": 0.001"#, epochs: 2)
        try Runner(registry: reg, reporter: .silent).run(try SpecLoader.load(path), seed: 1, options: RunOptions(threads: 1))
        let rows = try Compare.rows(try Compare.load(reg, split: .val))
        let base = rows.first { $0.experiment == "base" }!
        XCTAssertEqual(base.runs, 1)
        XCTAssertEqual(base.note, "2 runs of an earlier spec with this name left out")
        let board = try reg.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM leaderboard WHERE experiment = 'base'") }
        XCTAssertEqual(board, 2, "one leaderboard row per spec")
    }

    func testDifferentDataIsFlaggedNotPaired() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let reg = try makeRegistry(ws)
        _ = try reg.write { try $0.execute(sql: "UPDATE runs SET dataset_fingerprint = 'other' WHERE experiment_id = (SELECT id FROM experiments WHERE name = 'abl')") }
        let abl = try Compare.rows(try Compare.load(reg, split: .val))[1]
        XCTAssertNil(abl.pValue); XCTAssertNil(abl.ciLow)
        XCTAssertEqual(abl.note, "not paired: trained on different data (fingerprints differ)")
    }

    func testReportAndExportWriteWhatTheyClaim() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let reg = try makeRegistry(ws)
        let md = try Report.markdown(reg, to: ws.dir.appendingPathComponent("r/report.md"), pictures: GradCAMPictures.pairs)
        let text = try String(contentsOf: md, encoding: .utf8)
        XCTAssertTrue(text.contains("## Comparison (validation)"))
        XCTAssertTrue(text.contains("| abl | base | 2 |"))
        XCTAssertTrue(text.contains("| accuracy | balanced accuracy | macro-F1 | Δ accuracy [95% CI] | p | Holm p | P(A>B) [95% CI] | MDE |"), text)
        XCTAssertTrue(text.contains("\n\n\\* significant at 5% family-wise (Holm over the 1 seed-aware test shown): "), text)
        for f in ["base_loss.svg", "base_accuracy.svg", "abl_confusion.svg", "abl_confusion_normalized.svg"] {
            let svg = try String(contentsOf: ws.dir.appendingPathComponent("r/figures/\(f)"), encoding: .utf8)
            XCTAssertTrue(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""), f)
            XCTAssertTrue(XMLParser(data: Data(svg.utf8)).parse(), "\(f) is well-formed XML")
        }
        // Deterministic: a second report is byte-identical.
        let again = try Report.markdown(reg, to: ws.dir.appendingPathComponent("r2/report.md"), pictures: GradCAMPictures.pairs)
        XCTAssertEqual(try Data(contentsOf: md), try Data(contentsOf: again))

        let files = try Export.write(reg, to: ws.dir.appendingPathComponent("nb"))
        XCTAssertEqual(Set(files.map(\.lastPathComponent)), ["runs.csv", "epochs.csv", "confusion.csv", "predictions.csv", "explanations.csv", "test_evaluations.csv", "comparison_val.csv", "analysis.ipynb", "README.md"])
        let comparison = try String(contentsOf: ws.dir.appendingPathComponent("nb/comparison_val.csv"), encoding: .utf8)
        XCTAssertEqual(comparison, Compare.csv(try Compare.rows(try Compare.load(reg, split: .val)), split: .val), "lab compare --csv")
        let epochs = try String(contentsOf: ws.dir.appendingPathComponent("nb/epochs.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(epochs.count, 1 + 4 * 2)
        let nb = try JSONSerialization.jsonObject(with: Data(contentsOf: ws.dir.appendingPathComponent("nb/analysis.ipynb"))) as! [String: Any]
        XCTAssertEqual(nb["nbformat"] as? Int, 4)
        XCTAssertGreaterThan((nb["cells"] as? [Any])?.count ?? 0, 3)
    }
}
