import Crypto
import Foundation
import GRDB

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
        let hash = Registry.sha256(Data(specJSON.utf8))
        let id = Registry.experimentID(specJSON: specJSON)
        try write { db in
            try db.execute(sql: """
                INSERT INTO experiments (id, name, parent, spec_json, spec_hash, description, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING
                """, arguments: [id, name, parent, specJSON, hash, description, Registry.timestamp()])
        }
        return id
    }

    public struct RunStart {
        public var experimentID: String
        public var seed: Int
        public var fields: [String: DatabaseValueConvertible?]
        public init(experimentID: String, seed: Int, fields: [String: DatabaseValueConvertible?]) {
            self.experimentID = experimentID; self.seed = seed; self.fields = fields
        }
    }

    /// Inserts a run in status 'running' and returns its id.
    public func startRun(_ s: RunStart) throws -> String {
        let id = Registry.newRunID()
        let now = Registry.timestamp()
        var cols = ["id", "experiment_id", "status", "seed", "started_at", "heartbeat_at"]
        var vals: [DatabaseValueConvertible?] = [id, s.experimentID, "running", s.seed, now, now]
        for (k, v) in s.fields.sorted(by: { $0.key < $1.key }) { cols.append(k); vals.append(v) }
        try write { db in
            try db.execute(sql: "INSERT INTO runs (\(cols.joined(separator: ", "))) VALUES (\(cols.map { _ in "?" }.joined(separator: ", ")))",
                           arguments: StatementArguments(vals))
        }
        return id
    }

    /// Updates columns of a run (and its heartbeat).
    public func updateRun(_ id: String, _ fields: [String: DatabaseValueConvertible?]) throws {
        let keys = fields.keys.sorted()
        var vals: [DatabaseValueConvertible?] = keys.map { fields[$0]! }
        vals.append(Registry.timestamp()); vals.append(id)
        try write { db in
            try db.execute(sql: "UPDATE runs SET \(keys.map { "\($0) = ?" }.joined(separator: ", "))\(keys.isEmpty ? "" : ", ")heartbeat_at = ? WHERE id = ?",
                           arguments: StatementArguments(vals))
        }
    }

    public func heartbeat(_ id: String) throws { try updateRun(id, [:]) }

    /// Makes this process the owner of a run (status running, its pid and
    /// host, a fresh heartbeat) unless the run's heartbeat changed since it
    /// read `seenHeartbeat`: of two `lab resume`s racing for one crashed
    /// run, exactly one gets it. False when another process got there first.
    public func claimRun(_ id: String, seenHeartbeat: String, pid: Int, host: String) throws -> Bool {
        try write { db in
            try Table("runs").filter(Column("id") == id && Column("heartbeat_at") == seenHeartbeat).updateAll(db, [
                Column("status").set(to: "running"), Column("error").set(to: nil), Column("finished_at").set(to: nil),
                Column("pid").set(to: pid), Column("host").set(to: host), Column("heartbeat_at").set(to: Registry.timestamp()),
            ]) == 1
        }
    }

    public struct EpochRow: Sendable {
        public var epoch: Int
        public var trainLoss, trainAccuracy, valLoss, valAccuracy, valMacroF1, lr, seconds, imagesPerSecond: Double
        public init(epoch: Int, trainLoss: Double, trainAccuracy: Double, valLoss: Double, valAccuracy: Double,
                    valMacroF1: Double, lr: Double, seconds: Double, imagesPerSecond: Double) {
            self.epoch = epoch; self.trainLoss = trainLoss; self.trainAccuracy = trainAccuracy; self.valLoss = valLoss
            self.valAccuracy = valAccuracy; self.valMacroF1 = valMacroF1; self.lr = lr; self.seconds = seconds
            self.imagesPerSecond = imagesPerSecond
        }
    }

    /// One epoch's metrics and the checkpoints that go with it, atomically:
    /// after a crash the epochs table never runs ahead of the last checkpoint.
    public func recordEpoch(run: String, _ e: EpochRow, runFields: [String: DatabaseValueConvertible?],
                            last: Checkpoint, best: Checkpoint?) throws {
        try write { db in
            try db.execute(sql: """
                INSERT OR REPLACE INTO epochs (run_id, epoch, train_loss, train_accuracy, val_loss, val_accuracy, val_macro_f1, lr, seconds, images_per_second)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [run, e.epoch, e.trainLoss, e.trainAccuracy, e.valLoss, e.valAccuracy, e.valMacroF1, e.lr, e.seconds, e.imagesPerSecond])
            try saveCheckpoint(db, run: run, last)
            if let best { try saveCheckpoint(db, run: run, best) }
            let keys = runFields.keys.sorted()
            var vals: [DatabaseValueConvertible?] = keys.map { runFields[$0]! }
            vals.append(Registry.timestamp()); vals.append(run)
            try db.execute(sql: "UPDATE runs SET \(keys.map { "\($0) = ?, " }.joined())heartbeat_at = ? WHERE id = ?",
                           arguments: StatementArguments(vals))
        }
    }

    public struct Checkpoint: Sendable {
        public var kind: String        // "best" | "last"
        public var epoch: Int
        public var isBest: Bool
        public var data: [UInt8]
        public var optimizer: [UInt8]?
        public var stateJSON: String?
        public init(kind: String, epoch: Int, isBest: Bool, data: [UInt8], optimizer: [UInt8]? = nil, stateJSON: String? = nil) {
            self.kind = kind; self.epoch = epoch; self.isBest = isBest; self.data = data
            self.optimizer = optimizer; self.stateJSON = stateJSON
        }
        public var sha256: String { Registry.sha256(Data(data)) }
    }

    func saveCheckpoint(_ db: Database, run: String, _ c: Checkpoint) throws {
        try db.execute(sql: """
            INSERT OR REPLACE INTO checkpoints (run_id, kind, epoch, is_best, sha256, bytes, data, optimizer, state_json, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [run, c.kind, c.epoch, c.isBest, c.sha256, c.data.count, Data(c.data),
                             c.optimizer.map { Data($0) }, c.stateJSON, Registry.timestamp()])
    }

    public func checkpoint(run: String, kind: String) throws -> Checkpoint? {
        try read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM checkpoints WHERE run_id = ? AND kind = ?", arguments: [run, kind]) else { return nil }
            let data: Data = row["data"]
            let opt: Data? = row["optimizer"]
            return Checkpoint(kind: kind, epoch: row["epoch"], isBest: row["is_best"], data: [UInt8](data),
                              optimizer: opt.map { [UInt8]($0) }, stateJSON: row["state_json"])
        }
    }

    public struct Prediction: Sendable {
        public var image: String, trueClass: String, predictedClass: String, probabilities: [Float]
        public init(image: String, trueClass: String, predictedClass: String, probabilities: [Float]) {
            self.image = image; self.trueClass = trueClass; self.predictedClass = predictedClass; self.probabilities = probabilities
        }
    }

    public struct ClassMetric: Sendable {
        public var name: String, precision: Double?, recall: Double?, f1: Double?, support: Int
        public init(name: String, precision: Double?, recall: Double?, f1: Double?, support: Int) {
            self.name = name; self.precision = precision; self.recall = recall; self.f1 = f1; self.support = support
        }
    }

    /// Confusion matrix, per-class metrics and per-image predictions of one
    /// split, replacing any earlier ones for (run, split).
    public func recordEvaluation(run: String, split: String, classes: [String], confusion: [[Int]],
                                 metrics: [ClassMetric], predictions: [Prediction]) throws {
        try write { db in
            for t in ["confusion", "predictions", "class_metrics"] {
                try db.execute(sql: "DELETE FROM \(t) WHERE run_id = ? AND split = ?", arguments: [run, split])
            }
            for (i, row) in confusion.enumerated() {
                for (j, n) in row.enumerated() {
                    try db.execute(sql: "INSERT INTO confusion VALUES (?, ?, ?, ?, ?)", arguments: [run, split, classes[i], classes[j], n])
                }
            }
            for m in metrics {
                try db.execute(sql: "INSERT INTO class_metrics VALUES (?, ?, ?, ?, ?, ?, ?)",
                               arguments: [run, split, m.name, m.precision, m.recall, m.f1, m.support])
            }
            let stmt = try db.makeStatement(sql: "INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?)")
            for p in predictions {
                let probs = "[" + p.probabilities.map { String(format: "%.6f", $0) }.joined(separator: ",") + "]"
                try stmt.execute(arguments: [run, split, p.image, p.trueClass, p.predictedClass,
                                             Double(p.probabilities.max() ?? 0), probs])
            }
        }
    }

    /// Records one look at the test split; returns how many looks the
    /// run's experiment has had, this one included.
    @discardableResult
    public func recordTestEvaluation(run: String, accuracy: Double, macroF1: Double, nll: Double, ece: Double,
                                     checkpointSHA256: String, trigger: String) throws -> Int {
        try write { db in
            try db.execute(sql: """
                INSERT INTO test_evaluations (run_id, evaluated_at, accuracy, macro_f1, nll, ece, checkpoint_sha256, trigger)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [run, Registry.timestamp(), accuracy, macroF1, nll, ece, checkpointSHA256, trigger])
            try db.execute(sql: "UPDATE runs SET test_accuracy = ?, test_macro_f1 = ? WHERE id = ?", arguments: [accuracy, macroF1, run])
            return try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM test_evaluations t JOIN runs r ON r.id = t.run_id
                WHERE r.experiment_id = (SELECT experiment_id FROM runs WHERE id = ?)
                """, arguments: [run]) ?? 1
        }
    }
}
