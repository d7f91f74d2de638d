import Crypto
import Foundation
import GRDB

/// A run's progress after an epoch: what `recordEpoch` writes into its row.
public struct EpochProgress: Sendable {
    public var epochsRun: Int
    public var trainSeconds: Double
    /// Set when this epoch is the new best on validation.
    public var best: Best?
    public struct Best: Sendable {
        public var epoch: Int, valLoss: Double, valAccuracy: Double, valMacroF1: Double
        public init(epoch: Int, valLoss: Double, valAccuracy: Double, valMacroF1: Double) {
            self.epoch = epoch; self.valLoss = valLoss; self.valAccuracy = valAccuracy; self.valMacroF1 = valMacroF1
        }
    }
    public init(epochsRun: Int, trainSeconds: Double, best: Best?) {
        self.epochsRun = epochsRun; self.trainSeconds = trainSeconds; self.best = best
    }
}

/// Writes the runner makes, each one short transaction.
extension Registry {
    /// Lower-case hex SHA-256: spec hashes and checkpoint digests.
    public static func sha256(_ data: Data) -> String { SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined() }

    /// An experiment's id: the first 16 hex digits of its resolved spec's sha256.
    public static func experimentID(specJSON: String) -> String { String(sha256(Data(specJSON.utf8)).prefix(16)) }

    /// Mean wall and CPU (wall x threads) seconds per recorded epoch of an experiment.
    public func epochSeconds(experiment: String) throws -> (wall: Double, cpu: Double)? {
        try read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT AVG(e.seconds) AS wall, AVG(e.seconds * COALESCE(r.threads, 1)) AS cpu
                FROM epochs e JOIN runs r ON r.id = e.run_id WHERE r.experiment_id = ?
                """, arguments: [experiment])
            guard let row, let wall = row["wall"] as Double?, let cpu = row["cpu"] as Double? else { return nil }
            return (wall, cpu)
        }
    }

    /// The experiment row for a resolved spec (same name and hash: same row).
    @discardableResult
    public func experiment(name: String, parent: String?, specJSON: String, description: String?) throws -> String {
        let e = Experiment(id: Registry.experimentID(specJSON: specJSON), name: name, parent: parent, specJson: specJSON,
                           specHash: Registry.sha256(Data(specJSON.utf8)), description: description, createdAt: Registry.timestamp())
        try write { db in
            if try !Experiment.exists(db, key: e.id) { try e.insert(db) }
        }
        return e.id
    }

    /// Inserts a new run (see `Run.init(experimentId:seed:)`) and returns its id.
    @discardableResult
    public func startRun(_ run: Run) throws -> String {
        try write { db in try run.insert(db) }
        return run.id
    }

    /// Changes a run's row (and its heartbeat); nothing when there is no such run.
    func updateRun(_ db: Database, _ id: String, _ change: (inout Run) -> Void) throws {
        guard var run = try Run.fetchOne(db, key: id) else { return }
        try run.updateChanges(db) {
            change(&$0)
            $0.heartbeatAt = Registry.timestamp()
        }
    }

    public func heartbeat(_ id: String) throws {
        try write { db in try updateRun(db, id) { _ in } }
    }

    /// A run's end (or its pause, for `interrupted`): its status, a note
    /// when given, its training time when given, and for a run that is
    /// over, its finishing time.
    public func endRun(_ id: String, _ status: Run.Status, error: String? = nil, trainSeconds: Double? = nil) throws {
        try write { db in
            try updateRun(db, id) { r in
                r.status = status
                if status != .interrupted { r.finishedAt = Registry.timestamp() }
                if let error { r.error = error }
                if let trainSeconds { r.trainSeconds = trainSeconds }
            }
        }
    }

    /// Makes this process the owner of a run (status running, its pid and
    /// host, a fresh heartbeat) unless the run's heartbeat changed since it
    /// read `seenHeartbeat`: of two `lab resume`s racing for one crashed
    /// run, exactly one gets it. False when another process got there first.
    public func claimRun(_ id: String, seenHeartbeat: String, pid: Int, host: String) throws -> Bool {
        try write { db in
            typealias C = Run.Columns
            return try Run.filter(key: id).filter(C.heartbeatAt == seenHeartbeat).updateAll(db, [
                C.status.set(to: Run.Status.running), C.error.set(to: nil), C.finishedAt.set(to: nil),
                C.pid.set(to: pid), C.host.set(to: host), C.heartbeatAt.set(to: Registry.timestamp()),
            ]) == 1
        }
    }

    /// One epoch's metrics and the checkpoints that go with it, atomically:
    /// after a crash the epochs table never runs ahead of the last checkpoint.
    public func recordEpoch(_ e: Epoch, progress: EpochProgress, last: Checkpoint, best: Checkpoint?) throws {
        try write { db in
            try e.insert(db, onConflict: .replace)
            try last.insert(db, onConflict: .replace)
            try best?.insert(db, onConflict: .replace)
            try updateRun(db, e.runId) { r in
                r.epochsRun = progress.epochsRun
                r.trainSeconds = progress.trainSeconds
                if let b = progress.best {
                    r.bestEpoch = b.epoch; r.bestValLoss = b.valLoss; r.bestValAccuracy = b.valAccuracy; r.bestValMacroF1 = b.valMacroF1
                }
            }
        }
    }

    public func checkpoint(run: String, kind: Checkpoint.Kind) throws -> Checkpoint? {
        try read { try Checkpoint.fetchOne($0, key: ["run_id": run, "kind": kind.rawValue]) }
    }

    /// Confusion matrix, per-class metrics and per-image predictions of one
    /// split, replacing any earlier ones for (run, split).
    public func recordEvaluation(run: String, split: EvalSplit, confusion: [ConfusionCell], metrics: [ClassMetric],
                                 predictions: [Prediction]) throws {
        try write { db in
            try ConfusionCell.filter(ConfusionCell.Columns.runId == run && ConfusionCell.Columns.split == split).deleteAll(db)
            try Prediction.filter(Prediction.Columns.runId == run && Prediction.Columns.split == split).deleteAll(db)
            try ClassMetric.filter(ClassMetric.Columns.runId == run && ClassMetric.Columns.split == split).deleteAll(db)
            for c in confusion { try c.insert(db) }
            for m in metrics { try m.insert(db) }
            for p in predictions { try p.insert(db) }
        }
    }

    /// Records one look at the test split and the run's test scores; returns
    /// how many looks the run's experiment has had, this one included.
    @discardableResult
    public func recordTestEvaluation(run: String, accuracy: Double, macroF1: Double, nll: Double, ece: Double,
                                     checkpointSHA256: String, trigger: TestTrigger) throws -> Int {
        try write { db in
            try TestEvaluation(id: nil, runId: run, evaluatedAt: Registry.timestamp(), accuracy: accuracy, macroF1: macroF1, nll: nll,
                               ece: ece,
                               checkpointSha256: checkpointSHA256, trigger: trigger).insert(db)
            try Run.filter(key: run).updateAll(db, [Run.Columns.testAccuracy.set(to: accuracy), Run.Columns.testMacroF1.set(to: macroF1)])
            return try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM test_evaluations t JOIN runs r ON r.id = t.run_id
                WHERE r.experiment_id = (SELECT experiment_id FROM runs WHERE id = ?)
                """, arguments: [run]) ?? 1
        }
    }
}
