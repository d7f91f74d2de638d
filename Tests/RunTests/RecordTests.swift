import Foundation
import GRDB
import XCTest
@testable import Analysis
@testable import Registry

/// The registry's record types against a real SQLite file: every column
/// written by name and read back unchanged, statuses and kinds as enums.
final class RecordTests: XCTestCase {
    func message(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch { return "\(error)" }
    }

    /// Writes `record`, reopens the file, and reads every row of its table back.
    func roundTrip<T: RegistryRecord & Equatable>(_ reg: Registry, _ record: T, file: StaticString = #filePath, line: UInt = #line) throws {
        try reg.write { try record.insert($0) }
        let back = try Registry(path: reg.path).read { try T.fetchAll($0) }
        XCTAssertEqual(back.last, record, "\(T.databaseTableName)", file: file, line: line)
    }

    func testEveryRecordRoundTripsThroughAFileWithEveryColumnSet() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let reg = try ws.registry()
        let exp = Experiment(id: "e1", name: "base", parent: "root", specJson: #"{"a": 1}"#, specHash: "ab", description: "d", createdAt: "t0")
        try roundTrip(reg, exp)
        var run = Run(experimentId: exp.id, seed: 7)
        run.finishedAt = "t1"; run.gitCommit = "c0ffee"; run.gitDirty = true; run.host = "h"; run.pid = 12; run.threads = 2
        run.blas = "OpenBLAS"; run.swiftVersion = "6.3"; run.build = "debug"; run.datasetSource = "synthetic"; run.datasetRoot = "/d"
        run.datasetFingerprint = "fp"; run.labelMode = "soft"; run.splitSeed = 3; run.nTrain = 10; run.nVal = 4; run.nTest = 5
        run.params = 99; run.epochsRun = 2; run.bestEpoch = 1; run.bestValLoss = 0.5; run.bestValAccuracy = 0.25
        run.bestValMacroF1 = 0.125; run.testAccuracy = 0.75; run.testMacroF1 = 0.625; run.trainSeconds = 1.5; run.error = "e"
        run.classCounts = #"{"train": [1, 2, 3, 4, 5, 6]}"#
        for status in Run.Status.allCases { run.status = status; run.id = Registry.newRunID(); try roundTrip(reg, run) }
        let id = run.id
        try roundTrip(reg, Epoch(runId: id, epoch: 1, trainLoss: 1, trainAccuracy: 0.5, valLoss: 2, valAccuracy: 0.25, valMacroF1: 0.125,
                                 lr: 0.001, seconds: 3, imagesPerSecond: 40))
        try roundTrip(reg, ConfusionCell(runId: id, split: .val, trueClass: .fear, predictedClass: .anger, count: 3))
        try roundTrip(reg, ClassMetric(runId: id, split: .test, emotion: .fear, precision: 0.5, recall: nil, f1: 0.25, support: 4))
        try roundTrip(reg, Prediction(runId: id, split: .val, image: "a.jpg", trueClass: .fear, predictedClass: .anger,
                                      probabilities: [0.1, 0.2, 0.3, 0.4, 0, 0]))
        try roundTrip(reg, TestEvaluation(id: 5, runId: id, evaluatedAt: "t2", accuracy: 0.5, macroF1: 0.25, nll: 1.5, ece: 0.125,
                                          checkpointSha256: "00ff", trigger: .labTest))
        for kind in Checkpoint.Kind.allCases {
            try roundTrip(reg, Checkpoint(runId: id, kind: kind, epoch: 2, isBest: kind == .best, data: [1, 2, 3], optimizer: [4], stateJson: "{}"))
        }
        try roundTrip(reg, Explanation(runId: id, method: .gradCAM, layer: "l", split: .val, image: "a.jpg", targetClass: .fear,
                                       predictedClass: .anger, trueClass: .fear, energyInMask: 0.5, pointingHit: true, deletionAuc: 0.25,
                                       insertionAuc: 0.75, confidenceDrop: 0.125))
        try roundTrip(reg, ExplanationSummary(runId: id, method: .gradCAM, layer: "l", split: .val, maskSource: "masks", images: 4,
                                              energyInMask: 0.5, maskArea: 0.1, pointingHitRate: 0.75, deletionAuc: 0.25, insertionAuc: 0.75,
                                              confidenceDrop: 0.125, createdAt: "t3"))
        try roundTrip(reg, RandomizationCheck(runId: id, method: .gradCAM, layer: "l", split: .val, stage: 1, randomizedDownTo: "fc2",
                                              rankCorrelation: 0.5))
        // Columns by name, as `sqlite3 runs.db` shows them.
        let raw = try reg.read { try Row.fetchOne($0, sql: "SELECT val_macro_f1, images_per_second FROM epochs")! }
        XCTAssertEqual(raw["val_macro_f1"] as Double, 0.125); XCTAssertEqual(raw["images_per_second"] as Double, 40)
        XCTAssertEqual(try reg.read { try String.fetchOne($0, sql: "SELECT probabilities FROM predictions") },
                       "[0.100000,0.200000,0.300000,0.400000,0.000000,0.000000]")
        XCTAssertEqual(try reg.checkpoint(run: id, kind: .last)?.sha256, Registry.sha256(Data([1, 2, 3])))
    }

    func testStatusesAndKindsDecodeAsEnumsFromTheirStoredText() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let reg = try ws.registry()
        let exp = try reg.experiment(name: "e", parent: nil, specJSON: "{}", description: nil)
        let id = try reg.startRun(Run(experimentId: exp, seed: 1))
        XCTAssertEqual(try reg.run(id)?.status, .running)
        XCTAssertEqual(try reg.read { try String.fetchOne($0, sql: "SELECT status FROM runs") }, "running")
        try reg.endRun(id, .interrupted, error: "stopped")
        XCTAssertEqual(try reg.run(id)?.status, .interrupted)
        XCTAssertNil(try reg.run(id)?.finishedAt, "an interrupted run is not over")
        try reg.endRun(id, .failed, error: "boom")
        XCTAssertEqual(try reg.run(id)?.status, .failed)
        XCTAssertEqual(try reg.run(id)?.error, "boom")
        XCTAssertNotNil(try reg.run(id)?.finishedAt)
        try reg.endRun(id, .completed, trainSeconds: 2.5)
        XCTAssertEqual(try RunRow.one(reg, id).status, .completed)
        XCTAssertEqual(try reg.run(id)?.trainSeconds, 2.5)
        try reg.recordEpoch(Epoch(runId: id, epoch: 1, trainLoss: 1, trainAccuracy: 0, valLoss: 1, valAccuracy: 0.5, valMacroF1: 0.25,
                                  lr: 0.1, seconds: 1, imagesPerSecond: 1),
                            progress: EpochProgress(epochsRun: 1, trainSeconds: 1, best: .init(epoch: 1, valLoss: 1, valAccuracy: 0.5, valMacroF1: 0.25)),
                            last: Checkpoint(runId: id, kind: .last, epoch: 1, isBest: true, data: [9]),
                            best: Checkpoint(runId: id, kind: .best, epoch: 1, isBest: true, data: [8]))
        XCTAssertEqual(try reg.read { try String.fetchAll($0, sql: "SELECT kind FROM checkpoints ORDER BY kind") }, ["best", "last"])
        XCTAssertEqual(try reg.checkpoint(run: id, kind: .best)?.data, Data([8]))
        XCTAssertEqual(try reg.checkpointData(run: id, kind: .last), Data([9]))
        XCTAssertEqual(try reg.run(id)?.bestValMacroF1, 0.25)
    }

    /// Another tool (or a newer lab) may have written a status this lab
    /// does not know: every read names the file and the value, in one line.
    func testAnUnknownStatusOrKindInTheFileIsAClearErrorNotACrash() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let reg = try ws.registry()
        let exp = try reg.experiment(name: "e", parent: nil, specJSON: "{}", description: nil)
        let id = try reg.startRun(Run(experimentId: exp, seed: 1))
        try reg.recordEpoch(Epoch(runId: id, epoch: 1, trainLoss: 1, trainAccuracy: 0, valLoss: 1, valAccuracy: 0, valMacroF1: 0,
                                  lr: 0.1, seconds: 1, imagesPerSecond: 1),
                            progress: EpochProgress(epochsRun: 1, trainSeconds: 1, best: nil),
                            last: Checkpoint(runId: id, kind: .last, epoch: 1, isBest: true, data: [9]), best: nil)
        // The schema's CHECK constraints keep lab's own writes honest; a foreign writer may not have them.
        let q = try DatabaseQueue(path: ws.db)
        try q.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA ignore_check_constraints = ON")
            try db.execute(sql: "UPDATE runs SET status = 'paused'; UPDATE checkpoints SET kind = 'middle'")
        }
        try q.close()
        let status = "\(ws.db) holds a run status 'paused' that this lab does not know (it knows running, completed, failed, interrupted); written by a newer lab?"
        XCTAssertEqual(message { _ = try reg.run(id) }, status)
        XCTAssertEqual(message { _ = try RunRow.all(reg) }, status)
        XCTAssertEqual(message { _ = try RunRow.one(reg, id) }, status)
        XCTAssertEqual(message { _ = try reg.read { try Checkpoint.fetchAll($0) } },
                       "\(ws.db) holds a checkpoint kind 'middle' that this lab does not know (it knows best, last); written by a newer lab?")
    }

    /// Classes, splits and test triggers cross the boundary as enums too: a
    /// spelling this lab does not know is the same one-line error.
    func testAnUnknownClassSplitOrTriggerIsAClearErrorToo() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let reg = try ws.registry()
        let exp = try reg.experiment(name: "e", parent: nil, specJSON: "{}", description: nil)
        let id = try reg.startRun(Run(experimentId: exp, seed: 1))
        try reg.recordEvaluation(run: id, split: .val, confusion: [], metrics: [], predictions: [
            Prediction(runId: id, split: .val, image: "a.jpg", trueClass: .fear, predictedClass: .anger, probabilities: [0, 0, 0, 1, 0, 0]),
        ])
        try reg.recordTestEvaluation(run: id, accuracy: 1, macroF1: 1, nll: 0, ece: 0, checkpointSHA256: "00", trigger: .spec)
        let q = try DatabaseQueue(path: ws.db)
        try q.writeWithoutTransaction { db in
            try db.execute(sql: "UPDATE predictions SET true_class = 'neutral'; UPDATE test_evaluations SET trigger = 'cron'")
        }
        try q.close()
        XCTAssertEqual(message { _ = try reg.predictions(run: id, split: .val) },
                       "\(ws.db) holds a class 'neutral' that this lab does not know (it knows happiness, surprise, sadness, anger, disgust, fear); "
                       + "written by a newer lab?")
        XCTAssertEqual(message { _ = try reg.testEvaluations(run: id) },
                       "\(ws.db) holds a test trigger 'cron' that this lab does not know (it knows spec, lab test); written by a newer lab?")
        XCTAssertEqual(try reg.read { try String.fetchOne($0, sql: "SELECT split FROM predictions") }, "val", "stored by its name")
    }
}
