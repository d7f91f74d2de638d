import Failures
import Foundation
import GRDB

/// A run as listings show it: its experiment beside it, and its status as
/// the run_summary view reads it (a `running` run whose heartbeat is older
/// than two minutes has died and shows as `interrupted`).
public struct RunListing: Sendable {
    public var run: Run
    public var experiment: Experiment
    public var shownStatus: Run.Status
}

/// A row of the run_summary view, as far as listings read it.
struct ShownStatus: Decodable, FetchableRecord {
    var runId: String
    var status: Run.Status
    static var databaseColumnDecodingStrategy: DatabaseColumnDecodingStrategy { .convertFromSnakeCase }
}

/// One experiment's explanation summaries averaged over its runs, per (method, layer).
public struct ExplanationAverage: Sendable {
    public var experiment: String
    public var method: ExplanationMethod
    public var layer: String
    public var images: Int
    public var energyInMask, maskArea, pointingHitRate, deletionAuc, insertionAuc: Double
}

/// A cell of an exported table, as SQLite stored it.
public enum StoredValue: Sendable, Equatable {
    case null, integer(Int64), real(Double), text(String), blob
}

/// The tables `lab export` writes, each joined with its experiment's name.
public enum ExportTable: String, CaseIterable, Sendable {
    case runs, epochs, confusion, predictions, explanations, testEvaluations = "test_evaluations"

    var sql: String {
        let named = "JOIN runs r ON r.id = x.run_id JOIN experiments e ON e.id = r.experiment_id"
        switch self {
        case .runs: return "SELECT * FROM run_summary ORDER BY run_id"
        case .epochs: return "SELECT e.name AS experiment, x.* FROM epochs x \(named) ORDER BY x.run_id, x.epoch"
        case .confusion: return "SELECT e.name AS experiment, x.* FROM confusion x \(named) ORDER BY x.run_id, x.split, x.true_class, "
            + "x.predicted_class"
        case .predictions: return "SELECT e.name AS experiment, x.* FROM predictions x \(named) ORDER BY x.run_id, x.split, x.image"
        case .explanations: return "SELECT e.name AS experiment, x.* FROM explanations x \(named) ORDER BY x.run_id, x.layer, "
            + "x.method, x.image"
        case .testEvaluations: return "SELECT * FROM test_evaluations ORDER BY id"
        }
    }
}

/// Reads, each one short read transaction.
extension Registry {
    /// What `lab run` suggests typing into sqlite3 to see its runs.
    public static let summaryQueryExample =
        "select experiment, seed, status, val_accuracy, val_balanced_accuracy, val_macro_f1, test_accuracy from run_summary"

    public func run(_ id: String) throws -> Run? {
        try read { try Run.fetchOne($0, key: id) }
    }

    /// Every run (or the one with `id`) with its experiment, in id order (so by start time).
    public func runListings(id: String? = nil) throws -> [RunListing] {
        try read { db in
            let runs = try (id.map { Run.filter(key: $0) } ?? Run.all()).order(Run.Columns.id).fetchAll(db)
            // One run's page must not pay for the whole registry: filter the view when an id is given.
            let mine = try Experiment.filter(keys: Set(runs.map(\.experimentId))).fetchAll(db)
            let experiments = Dictionary(uniqueKeysWithValues: mine.map { ($0.id, $0) })
            let summary = id == nil ? "SELECT run_id, status FROM run_summary" : "SELECT run_id, status FROM run_summary WHERE run_id = ?"
            let statuses = try ShownStatus.fetchAll(db, sql: summary, arguments: StatementArguments(id.map { [$0] } ?? []))
            let shown = Dictionary(uniqueKeysWithValues: statuses.map { ($0.runId, $0.status) })
            return try runs.map { r in
                guard let e = experiments[r.experimentId] else { throw Failure(.registry, "\(path): run \(r.id) has no experiment "
                    + "\(r.experimentId)") }
                return RunListing(run: r, experiment: e, shownStatus: shown[r.id] ?? r.status)
            }
        }
    }

    /// Completed runs with their experiments, in id order.
    public func completedRuns() throws -> [RunListing] {
        try runListings().filter { $0.run.status == .completed }
    }

    public func epochs(run: String) throws -> [Epoch] {
        try read { try Epoch.filter(Epoch.Columns.runId == run).order(Epoch.Columns.epoch).fetchAll($0) }
    }

    public func confusion(run: String, split: EvalSplit) throws -> [ConfusionCell] {
        try read { try ConfusionCell.filter(ConfusionCell.Columns.runId == run && ConfusionCell.Columns.split == split).fetchAll($0) }
    }

    public func classMetrics(run: String, split: EvalSplit) throws -> [ClassMetric] {
        try read { try ClassMetric.filter(ClassMetric.Columns.runId == run && ClassMetric.Columns.split == split).fetchAll($0) }
    }

    /// Per-class metrics of one split over every run.
    public func classMetrics(split: EvalSplit) throws -> [ClassMetric] {
        try read { try ClassMetric.filter(ClassMetric.Columns.split == split).fetchAll($0) }
    }

    /// Predictions of one split in image order: a prediction's index in
    /// this list is how views address its image.
    public func predictions(run: String, split: EvalSplit) throws -> [Prediction] {
        try read { try Prediction.ofRun(run, split).fetchAll($0) }
    }

    public func prediction(run: String, split: EvalSplit, index: Int) throws -> Prediction? {
        guard index >= 0 else { return nil }
        return try read { try Prediction.ofRun(run, split).limit(1, offset: index).fetchOne($0) }
    }

    public func testEvaluations(run: String) throws -> [TestEvaluation] {
        try read { try TestEvaluation.filter(TestEvaluation.Columns.runId == run).order(TestEvaluation.Columns.id).fetchAll($0) }
    }

    /// Looks at the test split over every run of the experiments named `experiment`.
    public func testLooks(experiment: String) throws -> Int {
        try read { db in
            try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM test_evaluations t JOIN runs r ON r.id = t.run_id JOIN experiments e ON e.id = r.experiment_id
                WHERE e.name = ?
                """, arguments: [experiment]) ?? 0
        }
    }

    public func explanationSummaries(run: String) throws -> [ExplanationSummary] {
        try read {
            typealias C = ExplanationSummary.Columns
            return try ExplanationSummary.filter(C.runId == run).order(C.split, C.layer, C.method).fetchAll($0)
        }
    }

    /// Explanation summaries averaged per experiment name, method and layer.
    public func explanationAverages() throws -> [ExplanationAverage] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT e.name, s.method, s.layer, AVG(s.energy_in_mask) AS energy, AVG(s.mask_area) AS area,
                       AVG(s.pointing_hit_rate) AS hit,
                       AVG(s.deletion_auc) AS del, AVG(s.insertion_auc) AS ins, SUM(s.images) AS images
                FROM explanation_summaries s JOIN runs r ON r.id = s.run_id JOIN experiments e ON e.id = r.experiment_id
                GROUP BY e.name, s.method, s.layer ORDER BY e.name, s.layer, s.method
                """).map { (r: Row) in
                ExplanationAverage(experiment: r["name"], method: try r.decode(ExplanationMethod.self, forColumn: "method"),
                                   layer: r["layer"],
                                   images: r["images"],
                                   energyInMask: r["energy"], maskArea: r["area"], pointingHitRate: r["hit"],
                                   deletionAuc: r["del"], insertionAuc: r["ins"])
            }
        }
    }

    /// Whether the run has a checkpoint of this kind, without reading its bytes.
    public func hasCheckpoint(run: String, kind: Checkpoint.Kind) throws -> Bool {
        try read { try Checkpoint.filter(Checkpoint.Columns.runId == run && Checkpoint.Columns.kind == kind).fetchCount($0) > 0 }
    }

    /// The stored checkpoint bytes of one kind, without the optimizer state.
    public func checkpointData(run: String, kind: Checkpoint.Kind) throws -> Data? {
        try read {
            typealias C = Checkpoint.Columns
            return try Data.fetchOne($0, Checkpoint.select(C.data).filter(C.runId == run && C.kind == kind))
        }
    }

    /// A table as `lab export` writes it: column names, then rows of stored values.
    public func export(_ table: ExportTable) throws -> (columns: [String], rows: [[StoredValue]]) {
        try read { (db: Database) -> (columns: [String], rows: [[StoredValue]]) in
            let stmt = try db.makeStatement(sql: table.sql)
            let rows: [[StoredValue]] = try Row.fetchAll(stmt).map { (r: Row) in r.databaseValues.map { StoredValue($0) } }
            return (stmt.columnNames, rows)
        }
    }
}

extension Prediction {
    /// One split's predictions of a run in image order: a prediction's
    /// index in this order is how views address its image.
    static func ofRun(_ run: String, _ split: EvalSplit) -> QueryInterfaceRequest<Prediction> {
        Prediction.filter(Columns.runId == run && Columns.split == split).order(Columns.image)
    }
}

extension StoredValue {
    init(_ v: DatabaseValue) {
        switch v.storage {
        case .null: self = .null
        case .int64(let i): self = .integer(i)
        case .double(let d): self = .real(d)
        case .string(let s): self = .text(s)
        case .blob: self = .blob
        }
    }
}
