import Faces
import Foundation
import GRDB
import Registry

/// A run as the CLI shows it.
public struct RunRow: Sendable {
    public var id: String
    public var experiment: String
    public var experimentID: String
    public var parent: String?
    public var status: String           // with stale 'running', or a dead owner on this host, shown as 'interrupted'
    public var seed: Int
    public var epochsRun: Int
    public var bestEpoch: Int?
    public var bestValAccuracy: Double?
    public var bestValMacroF1: Double?
    public var testAccuracy: Double?
    public var trainSeconds: Double?
    public var startedAt: String
    public var finishedAt: String?
    public var specJSON: String
    public var specFile: String?
    public var datasetSource: String?
    public var datasetRoot: String?
    public var fingerprint: String
    public var threads: Int?
    public var error: String?
    public var pid: Int?
    public var host: String?
    public var heartbeatAt: String
    /// Per-class recall on validation at the best epoch, in class order; empty until the run completes.
    public var valRecall: [Double?] = []
    /// Mean recall over classes with validation images.
    public var valBalancedAccuracy: Double? {
        let r = valRecall.compactMap { $0 }
        return r.isEmpty ? nil : r.reduce(0, +) / Double(r.count)
    }

    static let select = """
        SELECT r.*, e.name AS experiment, e.parent AS parent, e.spec_json AS spec_json, s.status AS shown_status
        FROM runs r JOIN experiments e ON e.id = r.experiment_id JOIN run_summary s ON s.run_id = r.id
        """

    init(_ row: Row) {
        id = row["id"]; experiment = row["experiment"]; experimentID = row["experiment_id"]; parent = row["parent"]; status = row["shown_status"]
        seed = row["seed"]; epochsRun = row["epochs_run"]; bestEpoch = row["best_epoch"]
        bestValAccuracy = row["best_val_accuracy"]; bestValMacroF1 = row["best_val_macro_f1"]
        testAccuracy = row["test_accuracy"]; trainSeconds = row["train_seconds"]
        startedAt = row["started_at"]; finishedAt = row["finished_at"]; specJSON = row["spec_json"]
        specFile = nil; datasetSource = row["dataset_source"]; datasetRoot = row["dataset_root"]
        fingerprint = row["dataset_fingerprint"] ?? ""; threads = row["threads"]; error = row["error"]; pid = row["pid"]; host = row["host"]
        heartbeatAt = row["heartbeat_at"]
        if status == "running" && RunOwner.isGone(host: host, pid: pid, heartbeat: heartbeatAt) { status = "interrupted" }
    }

    static func fetch(_ db: Database, _ id: String) throws -> RunRow {
        guard let row = try Row.fetchOne(db, sql: select + " WHERE r.id = ?", arguments: [id]) else {
            throw RegistryError("no run \(id)")
        }
        var r = RunRow(row)
        r.valRecall = try validationRecall(db, run: id)[id] ?? []
        return r
    }

    public static func all(_ registry: Registry) throws -> [RunRow] {
        try registry.read { db in
            let recall = try validationRecall(db, run: nil)
            return try Row.fetchAll(db, sql: select + " ORDER BY r.id").map {
                var r = RunRow($0)
                r.valRecall = recall[r.id] ?? []
                return r
            }
        }
    }

    /// Validation recall per class of one run (or of every run), by run id.
    static func validationRecall(_ db: Database, run: String?) throws -> [String: [Double?]] {
        let names = Emotion.allCases.map(\.name)
        var out = [String: [Double?]]()
        let rows = try Row.fetchAll(db, sql: "SELECT run_id, class, recall FROM class_metrics WHERE split = 'val'"
                                    + (run == nil ? "" : " AND run_id = ?"), arguments: StatementArguments(run.map { [$0] } ?? []))
        for row in rows {
            guard let k = names.firstIndex(of: row["class"]) else { continue }
            let id: String = row["run_id"]
            out[id, default: [Double?](repeating: nil, count: names.count)][k] = row["recall"]
        }
        return out
    }

    public static func one(_ registry: Registry, _ prefix: String) throws -> RunRow {
        let id = try registry.resolveRun(prefix)
        return try registry.read { try fetch($0, id) }
    }
}

extension RunRow {
    /// The spec the run was trained with, as stored in the registry.
    func resolvedSpec() throws -> ExperimentSpec {
        let stored = try JSONValue(parsing: Data(specJSON.utf8))
        return try SpecLoader.resolve(RunRow.asTrained(stored), file: "runs.db:\(id)")
    }

    /// A stored spec as its run was trained. A stored "balanced" predates
    /// per-face weighting (specs resolve it to "balanced_per_face" now) and
    /// meant per-class weights inside the loss; a resumed run must keep doing
    /// what it started with.
    static func asTrained(_ stored: JSONValue) -> JSONValue {
        guard stored["train"]?["class_weights"] == .string("balanced") else { return stored }
        var out = stored
        out["train"]?["class_weights"] = .string(TrainSpec.ClassWeights.balancedPerClass.rawValue)
        return out
    }

    /// The run's data again (RAF-DB from `data` if it moved), refusing data
    /// whose fingerprint differs from what the run was trained on.
    func prepareData(spec: ExperimentSpec, data: String?, threads: Int, reporter: Reporter) throws -> PreparedData {
        let prepared = try DataSource.prepare(spec: spec, source: datasetSource.flatMap(DatasetSpec.Source.init(rawValue:)), data: datasetSource == "rafdb" ? (data ?? datasetRoot) : nil,
                                              threads: threads, log: reporter.log, status: reporter.status)
        if prepared.set.fingerprint != fingerprint {
            throw RegistryError("run \(id) was trained on data with fingerprint \(fingerprint.prefix(12)), but \(prepared.set.root.path) has \(prepared.set.fingerprint.prefix(12))")
        }
        return prepared
    }
}
