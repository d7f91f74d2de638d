import Faces
import Foundation
import GRDB

/// One Codable record per table. Properties are the columns in camelCase
/// (`val_macro_f1` is `valMacroF1`), so a record reads and writes its columns
/// by name; a metric column is optional (a column added later is NULL in
/// older rows).
public protocol RegistryRecord: Codable, FetchableRecord, PersistableRecord, Sendable {}
extension RegistryRecord {
    public static var databaseColumnDecodingStrategy: DatabaseColumnDecodingStrategy { .convertFromSnakeCase }
    public static var databaseColumnEncodingStrategy: DatabaseColumnEncodingStrategy { .convertToSnakeCase }
}

public struct Experiment: RegistryRecord, Equatable {
    public static let databaseTableName = "experiments"
    public var id, name: String
    public var parent: String?
    public var specJson, specHash: String
    public var description: String?
    public var createdAt: String
}

extension Experiment {
    /// The columns queries name.
    public enum Columns {
        public static let id = Column("id")
        public static let name = Column("name")
        public static let specHash = Column("spec_hash")
    }
}

/// A run's own columns: provenance, data, outcome.
public struct Run: RegistryRecord, Equatable {
    public static let databaseTableName = "runs"
    public enum Status: String, StoredChoice {
        case running, completed, failed, interrupted
        public static let storedName = "run status"
    }
    public var id, experimentId: String
    public var status: Status
    public var seed: Int
    public var startedAt: String, finishedAt: String?, heartbeatAt: String
    public var gitCommit: String?, gitDirty: Bool?, host: String?, pid: Int?, threads: Int?
    public var blas: String?, swiftVersion: String?, build: String?
    public var datasetSource: String?, datasetRoot: String?, datasetFingerprint: String?, labelMode: String?, splitSeed: Int?
    public var nTrain: Int?, nVal: Int?, nTest: Int?, params: Int?
    public var epochsRun = 0, bestEpoch: Int?
    public var bestValLoss, bestValAccuracy, bestValMacroF1, testAccuracy, testMacroF1, trainSeconds: Double?
    public var error: String?
    /// Images per class in each split, as JSON (ClassCounts.json).
    public var classCounts: String?

    /// A new run of an experiment, running from now, under a fresh id.
    public init(experimentId: String, seed: Int, date: Date = Date()) {
        id = Registry.newRunID(date: date)
        self.experimentId = experimentId
        status = .running
        self.seed = seed
        startedAt = Registry.timestamp(date)
        heartbeatAt = startedAt
    }
}

extension Run {
    /// The columns queries name.
    public enum Columns {
        public static let id = Column("id")
        public static let experimentId = Column("experiment_id")
        public static let status = Column("status")
        public static let seed = Column("seed")
        public static let heartbeatAt = Column("heartbeat_at")
        public static let finishedAt = Column("finished_at")
        public static let pid = Column("pid")
        public static let host = Column("host")
        public static let error = Column("error")
        public static let testAccuracy = Column("test_accuracy")
        public static let testMacroF1 = Column("test_macro_f1")
    }
}

public struct Epoch: RegistryRecord, Equatable {
    public static let databaseTableName = "epochs"
    public var runId: String
    public var epoch: Int
    public var trainLoss, trainAccuracy, valLoss, valAccuracy, valMacroF1, lr, seconds, imagesPerSecond: Double?
    public init(runId: String, epoch: Int, trainLoss: Double?, trainAccuracy: Double?, valLoss: Double?, valAccuracy: Double?,
                valMacroF1: Double?, lr: Double?, seconds: Double?, imagesPerSecond: Double?) {
        self.runId = runId; self.epoch = epoch; self.trainLoss = trainLoss; self.trainAccuracy = trainAccuracy; self.valLoss = valLoss
        self.valAccuracy = valAccuracy; self.valMacroF1 = valMacroF1; self.lr = lr; self.seconds = seconds
        self.imagesPerSecond = imagesPerSecond
    }
}

extension Epoch {
    /// The columns queries name.
    public enum Columns {
        public static let runId = Column("run_id")
        public static let epoch = Column("epoch")
    }
}

public struct ConfusionCell: RegistryRecord, Equatable {
    public static let databaseTableName = "confusion"
    public var runId: String
    public var split: EvalSplit
    public var trueClass, predictedClass: Emotion
    public var count: Int
    public init(runId: String, split: EvalSplit, trueClass: Emotion, predictedClass: Emotion, count: Int) {
        self.runId = runId; self.split = split; self.trueClass = trueClass; self.predictedClass = predictedClass; self.count = count
    }
}

extension ConfusionCell {
    /// The columns queries name.
    public enum Columns {
        public static let runId = Column("run_id")
        public static let split = Column("split")
        public static let trueClass = Column("true_class")
        public static let predictedClass = Column("predicted_class")
    }
}

public struct ClassMetric: RegistryRecord, Equatable {
    public static let databaseTableName = "class_metrics"
    public var runId: String
    public var split: EvalSplit
    public var emotion: Emotion
    public var precision, recall, f1: Double?
    public var support: Int
    enum CodingKeys: String, CodingKey { case runId, split, emotion = "class", precision, recall, f1, support }
    public init(runId: String, split: EvalSplit, emotion: Emotion, precision: Double?, recall: Double?, f1: Double?, support: Int) {
        self.runId = runId; self.split = split; self.emotion = emotion
        self.precision = precision; self.recall = recall; self.f1 = f1; self.support = support
    }
}

extension ClassMetric {
    /// The columns queries name.
    public enum Columns {
        public static let runId = Column("run_id")
        public static let split = Column("split")
        public static let emotion = Column("class")
    }
}

public struct Prediction: RegistryRecord, Equatable {
    public static let databaseTableName = "predictions"
    public var runId: String
    public var split: EvalSplit
    public var image: String
    public var trueClass, predictedClass: Emotion
    public var confidence: Double
    /// JSON array in class order, six decimals.
    public var probabilities: String
    public init(runId: String, split: EvalSplit, image: String, trueClass: Emotion, predictedClass: Emotion, probabilities: [Float]) {
        self.runId = runId; self.split = split; self.image = image; self.trueClass = trueClass; self.predictedClass = predictedClass
        confidence = Double(probabilities.max() ?? 0)
        self.probabilities = "[" + probabilities.map { String(format: "%.6f", $0) }.joined(separator: ",") + "]"
    }
}

extension Prediction {
    /// The columns queries name.
    public enum Columns {
        public static let runId = Column("run_id")
        public static let split = Column("split")
        public static let image = Column("image")
    }
}

public struct TestEvaluation: RegistryRecord, Equatable {
    public static let databaseTableName = "test_evaluations"
    public var id: Int64?
    public var runId, evaluatedAt: String
    public var accuracy, macroF1, nll, ece: Double
    public var checkpointSha256: String
    public var trigger: TestTrigger
}

extension TestEvaluation {
    /// The columns queries name.
    public enum Columns {
        public static let id = Column("id")
        public static let runId = Column("run_id")
    }
}

public struct Checkpoint: RegistryRecord, Equatable {
    public static let databaseTableName = "checkpoints"
    public enum Kind: String, StoredChoice {
        case best, last
        public static let storedName = "checkpoint kind"
    }
    public var runId: String
    public var kind: Kind
    public var epoch: Int
    public var isBest: Bool
    public var sha256: String
    public var bytes: Int
    /// safetensors, PyTorch state_dict names
    public var data: Data
    /// safetensors: Adam moments (last only)
    public var optimizer: Data?
    /// trainer state for resume (last only)
    public var stateJson: String?
    public var createdAt: String

    public init(runId: String, kind: Kind, epoch: Int, isBest: Bool, data: [UInt8], optimizer: [UInt8]? = nil, stateJson: String? = nil) {
        self.runId = runId; self.kind = kind; self.epoch = epoch; self.isBest = isBest
        self.data = Data(data); sha256 = Registry.sha256(self.data); bytes = data.count
        self.optimizer = optimizer.map { Data($0) }; self.stateJson = stateJson
        createdAt = Registry.timestamp()
    }
}

extension Checkpoint {
    /// The columns queries name.
    public enum Columns {
        public static let runId = Column("run_id")
        public static let kind = Column("kind")
        public static let data = Column("data")
    }
}

public struct Explanation: RegistryRecord, Equatable {
    public static let databaseTableName = "explanations"
    public var runId: String
    public var method: ExplanationMethod
    public var layer: String
    public var split: EvalSplit
    public var image: String
    public var targetClass, predictedClass, trueClass: Emotion
    public var energyInMask: Double, pointingHit: Bool, deletionAuc: Double, insertionAuc: Double, confidenceDrop: Double
    public init(runId: String, method: ExplanationMethod, layer: String, split: EvalSplit, image: String, targetClass: Emotion,
                predictedClass: Emotion, trueClass: Emotion, energyInMask: Double, pointingHit: Bool, deletionAuc: Double,
                insertionAuc: Double, confidenceDrop: Double) {
        self.runId = runId; self.method = method; self.layer = layer; self.split = split; self.image = image; self.targetClass = targetClass
        self.predictedClass = predictedClass; self.trueClass = trueClass; self.energyInMask = energyInMask
        self.pointingHit = pointingHit; self.deletionAuc = deletionAuc; self.insertionAuc = insertionAuc
        self.confidenceDrop = confidenceDrop
    }
}

extension Explanation {
    /// The columns queries name.
    public enum Columns {
        public static let runId = Column("run_id")
        public static let method = Column("method")
        public static let layer = Column("layer")
        public static let split = Column("split")
        public static let image = Column("image")
    }
}

public struct ExplanationSummary: RegistryRecord, Equatable {
    public static let databaseTableName = "explanation_summaries"
    public var runId: String
    public var method: ExplanationMethod
    public var layer: String
    public var split: EvalSplit
    public var maskSource: String
    public var images: Int
    public var energyInMask, maskArea, pointingHitRate, deletionAuc, insertionAuc, confidenceDrop: Double
    public var createdAt: String
}

extension ExplanationSummary {
    /// The columns queries name.
    public enum Columns {
        public static let runId = Column("run_id")
        public static let method = Column("method")
        public static let layer = Column("layer")
        public static let split = Column("split")
    }
}

public struct RandomizationCheck: RegistryRecord, Equatable {
    public static let databaseTableName = "randomization_checks"
    public var runId: String
    public var method: ExplanationMethod
    public var layer: String
    public var split: EvalSplit
    public var stage: Int
    public var randomizedDownTo: String
    public var rankCorrelation: Double
}

extension RandomizationCheck {
    /// The columns queries name.
    public enum Columns {
        public static let runId = Column("run_id")
        public static let method = Column("method")
        public static let layer = Column("layer")
        public static let split = Column("split")
    }
}
