import Foundation
import GRDB

/// Rows as readers see them: one Codable record per table, columns in
/// snake_case, every metric optional (a column added later is NULL in
/// older rows).
public protocol RegistryRecord: Codable, FetchableRecord, TableRecord, Sendable {}
extension RegistryRecord {
    public static var databaseColumnDecodingStrategy: DatabaseColumnDecodingStrategy { .convertFromSnakeCase }
}

public struct EpochRecord: RegistryRecord {
    public static let databaseTableName = "epochs"
    public var runId: String
    public var epoch: Int
    public var trainLoss, trainAccuracy, valLoss, valAccuracy, valMacroF1, lr, seconds, imagesPerSecond: Double?
}

/// A run's own columns: provenance, data, outcome.
public struct RunRecord: RegistryRecord {
    public static let databaseTableName = "runs"
    public var id, experimentId, status: String
    public var seed: Int
    public var startedAt: String, finishedAt: String?, heartbeatAt: String
    public var gitCommit: String?, gitDirty: Bool?, host: String?, pid: Int?, threads: Int?
    public var blas: String?, swiftVersion: String?, build: String?
    public var datasetSource: String?, datasetRoot: String?, datasetFingerprint: String?, labelMode: String?
    public var nTrain: Int?, nVal: Int?, nTest: Int?, params: Int?
    public var epochsRun: Int, bestEpoch: Int?
    public var bestValAccuracy, bestValMacroF1, testAccuracy, testMacroF1, trainSeconds: Double?
    public var error: String?
}

public struct ConfusionCell: RegistryRecord {
    public static let databaseTableName = "confusion"
    public var trueClass, predictedClass: String
    public var count: Int
}

public struct ClassMetricRecord: RegistryRecord {
    public static let databaseTableName = "class_metrics"
    public var className: String
    public var precision, recall, f1: Double?
    public var support: Int
    enum CodingKeys: String, CodingKey { case className = "class", precision, recall, f1, support }
}

public struct PredictionRecord: RegistryRecord {
    public static let databaseTableName = "predictions"
    public var split, image, trueClass, predictedClass: String
    public var confidence: Double
}

public struct TestEvaluationRecord: RegistryRecord {
    public static let databaseTableName = "test_evaluations"
    public var evaluatedAt: String
    public var accuracy, macroF1, nll, ece: Double
    public var trigger: String
}

public struct ExplanationSummaryRecord: RegistryRecord {
    public static let databaseTableName = "explanation_summaries"
    public var method, layer, split, maskSource: String
    public var images: Int
    public var energyInMask, maskArea, pointingHitRate, deletionAuc, insertionAuc, confidenceDrop: Double
}

/// Reads for views (`lab serve`); each one short read transaction.
extension Registry {
    static let runID = Column("run_id")

    public func run(_ id: String) throws -> RunRecord? {
        try read { try RunRecord.fetchOne($0, key: id) }
    }

    public func epochs(run: String) throws -> [EpochRecord] {
        try read { try EpochRecord.filter(Registry.runID == run).order(Column("epoch")).fetchAll($0) }
    }

    public func confusion(run: String, split: String) throws -> [ConfusionCell] {
        try read { try ConfusionCell.filter(Registry.runID == run && Column("split") == split).fetchAll($0) }
    }

    public func classMetrics(run: String, split: String) throws -> [ClassMetricRecord] {
        try read { try ClassMetricRecord.filter(Registry.runID == run && Column("split") == split).fetchAll($0) }
    }

    /// Predictions of one split in image order: a prediction's index in
    /// this list is how views address its image.
    public func predictions(run: String, split: String) throws -> [PredictionRecord] {
        try read { try PredictionRecord.filter(Registry.runID == run && Column("split") == split).order(Column("image")).fetchAll($0) }
    }

    public func prediction(run: String, split: String, index: Int) throws -> PredictionRecord? {
        guard index >= 0 else { return nil }
        return try read {
            try PredictionRecord.filter(Registry.runID == run && Column("split") == split).order(Column("image"))
                .limit(1, offset: index).fetchOne($0)
        }
    }

    public func testEvaluations(run: String) throws -> [TestEvaluationRecord] {
        try read { try TestEvaluationRecord.filter(Registry.runID == run).order(Column("id")).fetchAll($0) }
    }

    public func explanationSummaries(run: String) throws -> [ExplanationSummaryRecord] {
        try read {
            try ExplanationSummaryRecord.filter(Registry.runID == run).order(Column("split"), Column("layer"), Column("method")).fetchAll($0)
        }
    }

    /// The stored checkpoint bytes of one kind ("best" | "last"), without the optimizer state.
    public func checkpointData(run: String, kind: String) throws -> Data? {
        try read { try Data.fetchOne($0, Table("checkpoints").select(Column("data")).filter(Registry.runID == run && Column("kind") == kind)) }
    }
}
