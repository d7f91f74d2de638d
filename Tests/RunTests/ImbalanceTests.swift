import Foundation
import GRDB
import LabRandom
import XCTest
@testable import Analysis
@testable import Specs
@testable import Training
@testable import Registry

final class ImbalanceTests: XCTestCase {
    override func setUp() { Interrupt.reset() }

    func spec(_ train: String) throws -> (ExperimentSpec, Workspace) {
        let ws = try Workspace()
        return (try SpecLoader.load(ws.spec(extra: ", " + train)), ws)
    }

    func testBalancedWeightsTheFaceNotTheClass() throws {
        // 6 happiness, 2 fear, 4 surprise: n / (6 n_k) = 12/36, 12/12, 12/24.
        let classes = [0, 0, 0, 0, 0, 0, 5, 5, 1, 1, 1, 1]
        let (balanced, ws) = try spec(#""class_weights": "balanced""#); defer { ws.remove() }
        let b = Imbalance(balanced, trainClasses: classes)
        XCTAssertNil(b.classWeights)
        XCTAssertEqual(b.faceWeights([0, 5, 1])!, [1.0 / 3, 1, 0.5], accuracy: 1e-6)
        XCTAssertEqual(balanced.train.classWeights, .balancedPerFace, "resolved under its explicit name")
        var perClass = balanced; perClass.train.classWeights = .balancedPerClass
        let p = Imbalance(perClass, trainClasses: classes)
        XCTAssertNil(p.faceWeights([0, 5]))
        XCTAssertEqual(p.classWeights!, [1.0 / 3, 0.5, 0, 0, 0, 1], accuracy: 1e-6)
        var none = balanced; none.train.classWeights = .none
        let n = Imbalance(none, trainClasses: classes)
        XCTAssertNil(n.faceWeights([0])); XCTAssertNil(n.classWeights); XCTAssertNil(n.logitShift)
    }

    /// Deferred re-weighting: the epochs before train.reweight_from_epoch train
    /// on the plain loss, the rest with the spec's weights; a spec that does
    /// not defer keeps its hash, and a deferral without weights is refused.
    func testReweightingWaitsForItsEpoch() throws {
        let classes = [0, 0, 0, 0, 0, 0, 5, 5, 1, 1, 1, 1]
        let (deferred, ws) = try spec(#""class_weights": "balanced", "reweight_from_epoch": 3"#); defer { ws.remove() }
        let d = Imbalance(deferred, trainClasses: classes)
        XCTAssertNil(d.at(epoch: 1).faceWeights([0, 5]))
        XCTAssertNil(d.at(epoch: 2).faceWeights([0, 5]))
        XCTAssertEqual(d.at(epoch: 3).faceWeights([0, 5])!, [1.0 / 3, 1], accuracy: 1e-6)
        XCTAssertEqual(d.at(epoch: 9).faceWeights([5])!, [1], accuracy: 1e-6)
        XCTAssertTrue(deferred.resolvedJSON.contains(#""reweight_from_epoch":3"#))
        let plain = try SpecLoader.load(ws.spec("plain", extra: #", "class_weights": "balanced""#))
        XCTAssertFalse(plain.resolvedJSON.contains("reweight_from_epoch"), "at its default the key stays out: older specs keep their hashes")
        XCTAssertEqual(Imbalance(plain, trainClasses: classes).at(epoch: 1).faceWeights([5])!, [1], accuracy: 1e-6)
        func error(_ extra: String) -> String {
            do { _ = try SpecLoader.load(ws.spec("bad", extra: ", " + extra)); return "no error" } catch { return "\(error)" }
        }
        let file = ws.dir.appendingPathComponent("bad.json").path
        XCTAssertEqual(error(#""reweight_from_epoch": 2"#),
                       "\(file): train.reweight_from_epoch: defers train.class_weights, which is none; set it to balanced")
        XCTAssertEqual(error(#""class_weights": "balanced", "reweight_from_epoch": 4"#),
                       "\(file): train.reweight_from_epoch: must be at most train.max_epochs (3)")
        XCTAssertEqual(error(#""reweight_from_epoch": 0"#), "\(file): train.reweight_from_epoch: expected an integer in 1...10000, got 0")
        XCTAssertNil(Imbalance.stackedRemedies(deferred))
        var both = deferred; both.train.sampling = .classBalanced
        XCTAssertEqual(Imbalance.stackedRemedies(both),
                       "note: train.class_weights and train.sampling each rebalance the classes; together they correct the imbalance more than once")
    }

    func testLogitShiftIsTauLogPriorWithAbsentClassesFloored() throws {
        let (s, ws) = try spec(#""logit_adjustment": 1.5"#); defer { ws.remove() }
        let shift = try XCTUnwrap(Imbalance(s, trainClasses: [0, 0, 0, 0, 0, 0, 5, 5]).logitShift)
        // Counts floored to 1: 6, 1, 1, 1, 1, 2 of 12.
        XCTAssertEqual(shift, [6, 1, 1, 1, 1, 2].map { 1.5 * logf(Float($0) / 12) }, accuracy: 1e-5)
        XCTAssertTrue(shift.allSatisfy(\.isFinite))
    }

    func testClassBalancedDrawIsSeededPerEpochAndBalanced() throws {
        let (s, ws) = try spec(#""sampling": "class_balanced""#); defer { ws.remove() }
        // 900 happiness faces, 100 fear faces.
        let classes = [Int](repeating: 0, count: 900) + [Int](repeating: 5, count: 100)
        let train = Array(0..<1000)
        let imb = Imbalance(s, trainClasses: classes)
        let e1 = imb.epochOrder(train, classes: classes, seed: 7, epoch: 1)
        XCTAssertEqual(e1, imb.epochOrder(train, classes: classes, seed: 7, epoch: 1), "a pure function of (seed, epoch)")
        XCTAssertNotEqual(e1, imb.epochOrder(train, classes: classes, seed: 7, epoch: 2))
        XCTAssertEqual(e1.count, 1000)
        let fear = Double(e1.filter { classes[$0] == 5 }.count) / 1000
        XCTAssertEqual(fear, 0.5, accuracy: 0.05, "each class equally likely, not 10% fear")
        XCTAssertLessThan(Set(e1).count, 1000, "drawn with replacement")
        // The default permutes the split, exactly as before the option existed.
        var shuffle = s; shuffle.train.sampling = .shuffle
        let order = Imbalance(shuffle, trainClasses: classes).epochOrder(train, classes: classes, seed: 7, epoch: 1)
        var rng = RNG(seed: RNG.mix(7, 1, 2)); var expected = train; expected.shuffle(using: &rng)
        XCTAssertEqual(order, expected)
    }

    func testRunsStoredBeforeTheChangeKeepPerClassWeights() throws {
        let old: JSONValue = .object(["name": .string("cw"), "train": .object(["class_weights": .string("balanced"), "lr": .number(0.001)])])
        let train = SpecLoader.asTrained(old)["train"]
        XCTAssertEqual(train?["class_weights"], .string("balanced_per_class"))
        XCTAssertEqual(train?["lr"], .number(0.001))
        let resolved = try SpecLoader.resolve(old, file: "x")
        let new = SpecLoader.asTrained(resolved.resolved)["train"]
        XCTAssertEqual(new?["class_weights"], .string("balanced_per_face"), "a spec resolved now names the per-face meaning and is left alone")
    }

    func testSpecRecordsTheRemediesAndRejectsBadValues() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let plain = try SpecLoader.load(ws.spec())
        XCTAssertEqual(plain.train.classWeights, .none); XCTAssertEqual(plain.train.sampling, .shuffle); XCTAssertEqual(plain.train.logitAdjustment, 0)
        let train = try XCTUnwrap(plain.resolved["train"])
        XCTAssertNil(train["sampling"], "at their defaults the new keys stay out: older specs keep their hashes")
        XCTAssertNil(train["logit_adjustment"])
        let used = try SpecLoader.load(ws.spec("used", extra: #", "sampling": "class_balanced", "logit_adjustment": 0.5"#))
        let usedTrain = try XCTUnwrap(used.resolved["train"])
        XCTAssertEqual(usedTrain["sampling"], .string("class_balanced"), "the registry stores the resolved spec, used keys included")
        XCTAssertEqual(usedTrain["logit_adjustment"], .number(0.5))
        func error(_ extra: String) -> String {
            do { _ = try SpecLoader.load(ws.spec("bad", extra: ", " + extra)); return "no error" } catch { return "\(error)" }
        }
        let file = ws.dir.appendingPathComponent("bad.json").path
        XCTAssertEqual(error(#""class_weights": "inverse""#),
                       "\(file): train.class_weights: expected one of none, balanced, balanced_per_face, balanced_per_class, got \"inverse\"")
        XCTAssertEqual(error(#""sampling": "oversample""#), "\(file): train.sampling: expected one of shuffle, class_balanced, got \"oversample\"")
        XCTAssertEqual(error(#""logit_adjustment": -1"#), "\(file): train.logit_adjustment: expected a number in 0.0...10.0, got -1")
    }

    /// Each remedy trains end to end, records its resolved choice, and a
    /// class-balanced run interrupted mid-epoch resumes to the uninterrupted result.
    func testEveryRemedyRunsAndBalancedSamplingResumes() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let reg = try ws.registry()
        for (name, extra, recorded) in [("faces", #""class_weights": "balanced""#, #""class_weights":"balanced_per_face""#),
                                         ("classes", #""class_weights": "balanced_per_class""#, #""class_weights":"balanced_per_class""#),
                                         ("la", #""logit_adjustment": 1"#, #""logit_adjustment":1"#)] {
            let s = try SpecLoader.load(ws.spec(name, extra: ", " + extra, epochs: 2))
            let run = try Runner(registry: reg, reporter: .silent).run(s, seed: 1, options: RunOptions(threads: 1))
            XCTAssertEqual(try RunRow.one(reg, run).status, .completed, name)
            XCTAssertTrue(try RunRow.one(reg, run).specJSON.contains(recorded), name)
        }
        let s = try SpecLoader.load(ws.spec("sampled", extra: #", "sampling": "class_balanced""#, epochs: 3))
        let full = try Runner(registry: reg, reporter: .silent).run(s, seed: 4, options: RunOptions(threads: 1))
        final class Flag: @unchecked Sendable { var fired = false }   // safe: the runner reports from this thread only
        let flag = Flag()
        let stopper = Reporter(status: { line in
            if !flag.fired && line.contains("epoch 2/3 batch 3/") { flag.fired = true; Interrupt.request() }
        }, log: { _ in })
        var interrupted = ""
        XCTAssertThrowsError(try Runner(registry: reg, reporter: stopper).run(s, seed: 4, options: RunOptions(threads: 1))) {
            interrupted = ($0 as? Interrupted)?.runID ?? ""
        }
        Interrupt.reset()
        try Runner(registry: reg, reporter: .silent).resume(interrupted, options: RunOptions(threads: 1))
        let epochs = { (run: String) in
            try reg.read { try Row.fetchAll($0, sql: "SELECT train_loss, val_loss FROM epochs WHERE run_id = ? ORDER BY epoch", arguments: [run])
                .map { [$0[0] as Double, $0[1] as Double] } }
        }
        XCTAssertEqual(try epochs(interrupted), try epochs(full))
        XCTAssertEqual(try epochs(full).count, 3)
    }
}

func XCTAssertEqual(_ a: [Float], _ b: [Float], accuracy: Float, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, "\(a) vs \(b)", file: file, line: line) }
}
