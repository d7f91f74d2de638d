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

/// A value stored as text that this lab does not know: another tool or a
/// newer lab wrote it. Registry.describe names the file.
struct UnknownValue: Error {
    var what: String, value: String, known: [String]
}

/// A text column decoded into a closed set of cases, refusing others in one line.
func decodeStored<T: RawRepresentable & CaseIterable>(_ decoder: Decoder, _ what: String) throws -> T where T.RawValue == String {
    let raw = try decoder.singleValueContainer().decode(String.self)
    guard let v = T(rawValue: raw) else { throw UnknownValue(what: what, value: raw, known: T.allCases.map(\.rawValue)) }
    return v
}

public struct Experiment: RegistryRecord, Equatable {
    public static let databaseTableName = "experiments"
    public var id, name: String
    public var parent: String?
    public var specJson, specHash: String
    public var description: String?
    public var createdAt: String
}

/// A run's own columns: provenance, data, outcome.
public struct Run: RegistryRecord, Equatable {
    public static let databaseTableName = "runs"
    public enum Status: String, Codable, CaseIterable, Sendable, CustomStringConvertible {
        case running, completed, failed, interrupted
        public init(from decoder: Decoder) throws { self = try decodeStored(decoder, "run status") }
        public var description: String { rawValue }
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
    /// Images per class in each split, JSON {"train": [6], "val": [6], "test": [6]}.
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

public struct ConfusionCell: RegistryRecord, Equatable {
    public static let databaseTableName = "confusion"
    public var runId, split, trueClass, predictedClass: String
    public var count: Int
    public init(runId: String, split: String, trueClass: String, predictedClass: String, count: Int) {
        self.runId = runId; self.split = split; self.trueClass = trueClass; self.predictedClass = predictedClass; self.count = count
    }
}

public struct ClassMetric: RegistryRecord, Equatable {
    public static let databaseTableName = "class_metrics"
    public var runId, split, className: String
    public var precision, recall, f1: Double?
    public var support: Int
    enum CodingKeys: String, CodingKey { case runId, split, className = "class", precision, recall, f1, support }
    public init(runId: String, split: String, className: String, precision: Double?, recall: Double?, f1: Double?, support: Int) {
        self.runId = runId; self.split = split; self.className = className
        self.precision = precision; self.recall = recall; self.f1 = f1; self.support = support
    }
}

public struct Prediction: RegistryRecord, Equatable {
    public static let databaseTableName = "predictions"
    public var runId, split, image, trueClass, predictedClass: String
    public var confidence: Double
    /// JSON array in class order, six decimals.
    public var probabilities: String
    public init(runId: String, split: String, image: String, trueClass: String, predictedClass: String, probabilities: [Float]) {
        self.runId = runId; self.split = split; self.image = image; self.trueClass = trueClass; self.predictedClass = predictedClass
        confidence = Double(probabilities.max() ?? 0)
        self.probabilities = "[" + probabilities.map { String(format: "%.6f", $0) }.joined(separator: ",") + "]"
    }
}

public struct TestEvaluation: RegistryRecord, Equatable {
    public static let databaseTableName = "test_evaluations"
    public var id: Int64?
    public var runId, evaluatedAt: String
    public var accuracy, macroF1, nll, ece: Double
    public var checkpointSha256, trigger: String
}

public struct Checkpoint: RegistryRecord, Equatable {
    public static let databaseTableName = "checkpoints"
    public enum Kind: String, Codable, CaseIterable, Sendable, CustomStringConvertible {
        case best, last
        public init(from decoder: Decoder) throws { self = try decodeStored(decoder, "checkpoint kind") }
        public var description: String { rawValue }
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

public struct Explanation: RegistryRecord, Equatable {
    public static let databaseTableName = "explanations"
    public var runId, method, layer, split, image, targetClass, predictedClass, trueClass: String
    public var energyInMask: Double, pointingHit: Bool, deletionAuc: Double, insertionAuc: Double, confidenceDrop: Double
    public init(runId: String, method: String, layer: String, split: String, image: String, targetClass: String, predictedClass: String,
                trueClass: String, energyInMask: Double, pointingHit: Bool, deletionAuc: Double, insertionAuc: Double, confidenceDrop: Double) {
        self.runId = runId; self.method = method; self.layer = layer; self.split = split; self.image = image; self.targetClass = targetClass
        self.predictedClass = predictedClass; self.trueClass = trueClass; self.energyInMask = energyInMask
        self.pointingHit = pointingHit; self.deletionAuc = deletionAuc; self.insertionAuc = insertionAuc
        self.confidenceDrop = confidenceDrop
    }
}

public struct ExplanationSummary: RegistryRecord, Equatable {
    public static let databaseTableName = "explanation_summaries"
    public var runId, method, layer, split, maskSource: String
    public var images: Int
    public var energyInMask, maskArea, pointingHitRate, deletionAuc, insertionAuc, confidenceDrop: Double
    public var createdAt: String
}

public struct RandomizationCheck: RegistryRecord, Equatable {
    public static let databaseTableName = "randomization_checks"
    public var runId, method, layer, split: String
    public var stage: Int
    public var randomizedDownTo: String
    public var rankCorrelation: Double
}
