import Engine
import Foundation
import GRDB
import XCTest
@testable import Analysis
@testable import Specs
@testable import Training
@testable import Registry

final class RunnerTests: XCTestCase {
    override func setUp() { Interrupt.reset() }

    func epochs(_ reg: Registry, _ run: String) throws -> [[Double]] {
        try reg.read { db in
            try Row.fetchAll(db, sql: "SELECT train_loss, train_accuracy, val_loss, val_accuracy, val_macro_f1 FROM epochs WHERE run_id = ? ORDER BY epoch", arguments: [run])
                .map { r in (0..<5).map { r[$0] as Double } }
        }
    }

    func testRunRecordsEverythingAndIsDeterministic() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let reg = try ws.registry()
        let spec = try SpecLoader.load(ws.spec(test: true))
        let runner = Runner(registry: reg, reporter: .silent)
        let a = try runner.run(spec, seed: 7, options: RunOptions(threads: 1))
        let b = try runner.run(spec, seed: 7, options: RunOptions(threads: 1))
        XCTAssertEqual(try epochs(reg, a), try epochs(reg, b), "same spec, seed and threads: identical epochs")
        XCTAssertEqual(try epochs(reg, a).count, 3)
        let summary = try reg.read { try Row.fetchOne($0, sql: "SELECT * FROM run_summary WHERE run_id = ?", arguments: [a])! }
        XCTAssertEqual(summary["status"] as String, "completed")
        XCTAssertNotNil(summary["val_accuracy"] as Double?)
        XCTAssertNotNil(summary["test_accuracy"] as Double?)
        XCTAssertEqual(summary["test_looks"] as Int, 1)
        let nVal: Int = summary["n_val"], nTest: Int = summary["n_test"]
        let counts = try reg.read { db in
            (try Int.fetchOne(db, sql: "SELECT SUM(count) FROM confusion WHERE run_id = ? AND split = 'val'", arguments: [a])!,
             try Int.fetchOne(db, sql: "SELECT SUM(count) FROM confusion WHERE run_id = ? AND split = 'test'", arguments: [a])!,
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM predictions WHERE run_id = ? AND split = 'val'", arguments: [a])!,
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM checkpoints WHERE run_id = ?", arguments: [a])!)
        }
        XCTAssertEqual(counts.0, nVal); XCTAssertEqual(counts.1, nTest); XCTAssertEqual(counts.2, nVal); XCTAssertEqual(counts.3, 2)
        // The stored checkpoint hashes to its recorded sha256 and loads.
        let best = try XCTUnwrap(try reg.checkpoint(run: a, kind: .best))
        let sha = try reg.read { try String.fetchOne($0, sql: "SELECT sha256 FROM checkpoints WHERE run_id = ? AND kind = 'best'", arguments: [a]) }
        XCTAssertEqual(best.sha256, sha)
    }

    func testValidationOnlyRunThenLabTestAddsOneLook() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let reg = try ws.registry()
        let spec = try SpecLoader.load(ws.spec(epochs: 2))
        let run = try Runner(registry: reg, reporter: .silent).run(spec, seed: 1, options: RunOptions(threads: 1))
        func looks() throws -> Int { try reg.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM test_evaluations WHERE run_id = ?", arguments: [run])! } }
        XCTAssertEqual(try looks(), 0, "ablations never touch the test split")
        XCTAssertNil(try RunRow.one(reg, run).testAccuracy)
        try TestSplit.evaluate(reg, try RunRow.one(reg, run), data: nil, threads: 1)
        XCTAssertEqual(try looks(), 1)
        XCTAssertNotNil(try RunRow.one(reg, run).testAccuracy)
        XCTAssertEqual(try TestSplit.targets(reg, "tiny").map(\.id), [run])
    }

    func testInterruptedRunResumesToTheUninterruptedResult() throws { try interruptThenResume(extra: "").2.remove() }

    /// With a weight average the checkpoint holds the average and the optimizer
    /// state the live weights and the update count: resuming restores all three.
    func testInterruptedRunWithWeightAverageResumesToTheUninterruptedResult() throws {
        let (reg, run, ws) = try interruptThenResume(extra: #", "ema_decay": 0.9"#)
        defer { ws.remove() }
        // The average is what was validated and kept: not the weights of a run without it.
        let plain = try Runner(registry: reg, reporter: .silent).run(try SpecLoader.load(ws.spec("plain", epochs: 4)), seed: 5,
                                                                       options: RunOptions(threads: 1))
        XCTAssertNotEqual(try reg.checkpoint(run: run, kind: .last)!.data, try reg.checkpoint(run: plain, kind: .last)!.data)
        XCTAssertNotEqual(try epochs(reg, run), try epochs(reg, plain))
        let opt = try Safetensors.decode([UInt8](try reg.checkpoint(run: run, kind: .last)!.optimizer!))
        let batches = (try reg.read { try Int.fetchOne($0, sql: "SELECT n_train FROM runs WHERE id = ?", arguments: [run]) }! + 15) / 16
        XCTAssertEqual(opt.metadata["ema_updates"], String(4 * batches), "one update per batch, 4 epochs")
        XCTAssertNotNil(opt.tensors["weights.block1.conv1.weight"])
        XCTAssertNotNil(opt.tensors["weights.block1.bn1.running_mean"])
    }

    @discardableResult
    func interruptThenResume(extra: String) throws -> (Registry, String, Workspace) {
        let ws = try Workspace()
        let reg = try ws.registry()
        let spec = try SpecLoader.load(ws.spec(extra: extra, epochs: 4))
        let full = try Runner(registry: reg, reporter: .silent).run(spec, seed: 5, options: RunOptions(threads: 1))

        // Ctrl-C in the middle of epoch 3.
        final class Counter: @unchecked Sendable { var n = 0 }   // safe: the runner reports from this thread only
        let c = Counter()
        let stopper = Reporter(status: { line in
            if line.contains("epoch 3/4 batch 3/") { c.n += 1; Interrupt.request() }
        }, log: { _ in })
        var interrupted = ""
        XCTAssertThrowsError(try Runner(registry: reg, reporter: stopper).run(spec, seed: 5, options: RunOptions(threads: 1))) {
            interrupted = ($0 as? Interrupted)?.runID ?? ""
        }
        Interrupt.reset()
        XCTAssertEqual(c.n, 1)
        let row = try RunRow.one(reg, interrupted)
        XCTAssertEqual(row.status, .interrupted)
        XCTAssertEqual(row.epochsRun, 2)
        XCTAssertNotNil(try reg.checkpoint(run: interrupted, kind: .last))

        try Runner(registry: reg, reporter: .silent).resume(String(interrupted.prefix(12)), options: RunOptions(threads: 1))
        XCTAssertEqual(try RunRow.one(reg, interrupted).status, .completed)
        XCTAssertEqual(try epochs(reg, interrupted), try epochs(reg, full), "resumed run ends as the uninterrupted one")
        func weights(_ run: String) throws -> [String: [Float]] {
            try Safetensors.decode([UInt8](try reg.checkpoint(run: run, kind: .best)!.data)).tensors.mapValues(\.floats)
        }
        XCTAssertTrue(try weights(interrupted) == weights(full), "the same best weights")
        return (reg, interrupted, ws)
    }

    /// A real child process stands in for the run's trainer.
    func spawnSleep() throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sleep")
        p.arguments = ["60"]
        try p.run()
        return p
    }

    func testOwnerOnThisHostIsGoneOnlyWhenItsPidIsFreeOrReused() throws {
        let host = Provenance.host
        let sleeper = try spawnSleep()
        let pid = Int(sleeper.processIdentifier)
        let now = Registry.timestamp()
        XCTAssertFalse(RunOwner.isGone(host: host, pid: pid, heartbeat: now), "alive, started before the heartbeat")
        XCTAssertFalse(RunOwner.isGone(host: "elsewhere", pid: pid, heartbeat: now))
        // A heartbeat older than the process: the pid now belongs to someone else.
        XCTAssertTrue(RunOwner.isGone(host: host, pid: pid, heartbeat: Registry.timestamp(Date().addingTimeInterval(-30))))
        sleeper.terminate(); sleeper.waitUntilExit()
        XCTAssertTrue(RunOwner.isGone(host: host, pid: pid, heartbeat: now), "exited")
        XCTAssertFalse(RunOwner.isGone(host: "elsewhere", pid: pid, heartbeat: now), "another host's pid says nothing here")
        XCTAssertFalse(RunOwner.isGone(host: host, pid: nil, heartbeat: now))
    }

    func testResumeAfterKill9OnThisHostStartsAtOnce() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let reg = try ws.registry()
        let spec = try SpecLoader.load(ws.spec(epochs: 3))
        let reference = try epochs(reg, try Runner(registry: reg, reporter: .silent).run(spec, seed: 3, options: RunOptions(threads: 1)))
        // Stopped in epoch 2, then made to look like kill -9 hit a trainer (the child) with a fresh heartbeat.
        let stopper = Reporter(status: { if $0.contains("epoch 2/3 batch 2/") { Interrupt.request() } }, log: { _ in })
        var run = ""
        XCTAssertThrowsError(try Runner(registry: reg, reporter: stopper).run(spec, seed: 3, options: RunOptions(threads: 1))) {
            run = ($0 as? Interrupted)?.runID ?? ""
        }
        Interrupt.reset()
        let owner = try spawnSleep()
        defer { if owner.isRunning { owner.terminate() } }
        try reg.updateRun(run, ["status": "running", "pid": Int(owner.processIdentifier)])
        XCTAssertEqual(try RunRow.one(reg, run).status, .running)
        XCTAssertThrowsError(try Runner(registry: reg, reporter: .silent).resume(run, options: RunOptions(threads: 1))) {
            XCTAssertEqual("\($0)", "run \(run) is still running (pid \(owner.processIdentifier) on \(Provenance.host)); stop it first (Ctrl-C marks it interrupted), or wait two minutes after a crash")
        }
        // Another host's run keeps the heartbeat rule even when the pid means nothing here.
        try reg.updateRun(run, ["host": "elsewhere"])
        kill(owner.processIdentifier, SIGKILL); owner.waitUntilExit()
        XCTAssertEqual(try RunRow.one(reg, run).status, .running)
        _ = try reg.write { try $0.execute(sql: "UPDATE runs SET heartbeat_at = '2000-01-01T00:00:00.000Z' WHERE id = ?", arguments: [run]) }
        XCTAssertEqual(try RunRow.one(reg, run).status, .interrupted, "stale heartbeat")
        try reg.updateRun(run, ["host": Provenance.host])   // a fresh heartbeat again
        XCTAssertEqual(try RunRow.one(reg, run).status, .interrupted, "its pid is gone: no two-minute wait")
        XCTAssertEqual(try RunRow.one(reg, run).epochsRun, 1)
        try Runner(registry: reg, reporter: .silent).resume(run, options: RunOptions(threads: 1))
        XCTAssertEqual(try RunRow.one(reg, run).status, .completed)
        XCTAssertEqual(try epochs(reg, run), reference)
    }

    func testDivergenceIsOneLineAndTheRunIsMarkedFailed() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let reg = try ws.registry()
        var spec = try SpecLoader.load(ws.spec(epochs: 2))
        spec.train.lr = .infinity   // beyond the schema: the first update makes every weight infinite
        XCTAssertThrowsError(try Runner(registry: reg, reporter: .silent).run(spec, seed: 1, options: RunOptions(threads: 1))) {
            XCTAssertTrue("\($0)".hasPrefix("training diverged (loss "), "\($0)")
        }
        XCTAssertEqual(try RunRow.all(reg).first?.status, .failed)
    }

    func testRAFDBMissingSaysWhereItLookedAndHowToUseSynthetic() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let spec = try SpecLoader.load(ws.spec())
        let reg = try ws.registry()
        XCTAssertThrowsError(try Runner(registry: reg, reporter: .silent).run(spec, seed: 1, options: RunOptions(source: .rafdb, threads: 1))) {
            let s = "\($0)"
            XCTAssertTrue(s.hasPrefix("RAF-DB not found (looked in "), s)
            XCTAssertTrue(s.contains("data/RAF-DB/basic"), s)
            XCTAssertTrue(s.hasSuffix("lab run \(spec.file) --dataset synthetic"), s)
        }
        XCTAssertEqual(try RunRow.all(reg).count, 0, "nothing recorded for a run that never started")
    }
}

final class ExplainRunTests: XCTestCase {
    /// A spec's explain section makes the run end with its scores recorded.
    func testSpecExplainSectionRecordsScores() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let reg = try ws.registry()
        var s = try SpecLoader.load(ws.spec(epochs: 2))
        s.explain.enabled = true; s.explain.images = 6
        let run = try Runner(registry: reg, reporter: .silent).run(s, seed: 1, options: RunOptions(threads: 1))
        let methods = try reg.read { try String.fetchAll($0, sql: "SELECT method FROM explanation_summaries WHERE run_id = ? ORDER BY method", arguments: [run]) }
        XCTAssertEqual(methods, ["center_prior", "gradcam", "gradcam untrained", "gradcam++", "gradcam++ untrained", "random"])
        let perImage = try reg.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM explanations WHERE run_id = ?", arguments: [run])! }
        XCTAssertEqual(perImage, 6 * 6)
        // fc2, fc1, then the three convolutions, for each CAM method.
        let stages = try reg.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM randomization_checks WHERE run_id = ?", arguments: [run])! }
        XCTAssertEqual(stages, 2 * (2 + 3))
        let energy = try reg.read { try Double.fetchAll($0, sql: "SELECT energy_in_mask FROM explanations WHERE run_id = ?", arguments: [run]) }
        XCTAssertTrue(energy.allSatisfy { $0 >= 0 && $0 <= 1 })
        XCTAssertEqual(try RunRow.one(reg, run).status, .completed)
    }

    /// lab explain states the paired verdict against the centre prior, and
    /// the report's explanation table carries the same one.
    func testExplainAndReportStateTheVerdictAgainstTheCentrePrior() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let reg = try ws.registry()
        let run = try Runner(registry: reg, reporter: .silent).run(try SpecLoader.load(ws.spec(epochs: 1)), seed: 1, options: RunOptions(threads: 1))
        var o = ExplainOptions()
        o.images = 8; o.threads = 1; o.writeImages = false; o.methods = [.gradCAM]; o.randomizationImages = 0
        let text = try ExplainRunner.run(reg, run: run, options: o, reporter: .silent).text
        let rows = try reg.read { db in
            try Row.fetchAll(db, sql: """
                SELECT m.energy_in_mask - c.energy_in_mask AS d, m.pointing_hit AS h, c.pointing_hit AS ch FROM explanations m
                JOIN explanations c ON c.run_id = m.run_id AND c.image = m.image AND c.method = 'center_prior'
                WHERE m.run_id = ? AND m.method = 'gradcam'
                """, arguments: [run])
        }
        XCTAssertEqual(rows.count, 8)
        let p = Statistics.wilcoxonSignedRank(rows.map { $0["d"] as Double })
        let verdict = try XCTUnwrap(Report.priorVerdict(reg, experiment: "tiny", layer: "block2.conv2", method: .gradCAM))
        XCTAssertEqual(verdict.energy.p, p, accuracy: 1e-12)
        XCTAssertEqual(verdict.pointing.p, Statistics.mcnemarExact(b: rows.filter { ($0["h"] as Bool) && !($0["ch"] as Bool) }.count,
                                                                   c: rows.filter { !($0["h"] as Bool) && ($0["ch"] as Bool) }.count), accuracy: 1e-12)
        XCTAssertTrue(text.contains("verdict, gradcam vs centre prior over 8 faces (paired):"), text)
        XCTAssertTrue(text.contains(verdict.energyText) && text.contains(verdict.pointingText), text)
        XCTAssertTrue(text.contains("Wilcoxon p") && text.contains("McNemar p"), text)
        let md = try String(contentsOf: Report.markdown(reg, to: ws.dir.appendingPathComponent("r/report.md"), pictures: GradCAMPictures.pairs), encoding: .utf8)
        XCTAssertTrue(md.contains("| energy vs centre prior | pointing vs centre prior |"), md)
        XCTAssertTrue(md.contains("| tiny | block2.conv2 | gradcam | 8 |"), md)
        XCTAssertTrue(md.contains("| \(verdict.energyCell) | \(verdict.pointingCell) |"), md)
        XCTAssertTrue(md.contains("| tiny | block2.conv2 | center_prior | 8 |") , md)
    }
}
