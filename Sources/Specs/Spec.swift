import Engine
import Faces
import Foundation
import Registry

/// A closed set of spellings a spec key accepts.
public protocol SpecChoice: RawRepresentable<String>, CaseIterable, Codable, Sendable, Hashable {}

extension SpecChoice {
    /// The spellings in declaration order, as error messages list them.
    public static var names: [String] { allCases.map(\.rawValue) }
}

/// A fully resolved experiment spec (docs/architecture.md: spec keys): every key has a value.
/// The sections' initial values are the defaults, the research plan's
/// baseline (the README's model section); SpecLoader fills them in under what a file sets.
public struct ExperimentSpec: Codable, Equatable, Sendable {
    public var name = ""
    public var description: String?
    public var parent: String?          // name of the spec it extends
    public var dataset = DatasetSpec()
    public var augment = AugmentSpec()
    public var model = ModelSpec(ModelConfig())
    public var train = TrainSpec()
    public var evaluate = EvaluateSpec()
    public var explain = ExplainSpec()
    public var report = ReportSpec()

    /// Where it was read from.
    public internal(set) var file = ""
    /// The resolved spec as canonical JSON (sorted keys): what the registry stores and hashes.
    public internal(set) var resolvedJSON = ""

    enum CodingKeys: String, CodingKey { case name, description, parent, dataset, augment, model, train, evaluate, explain, report }

    public init() {}

    public var resolved: JSONValue { (try? JSONValue(parsing: Data(resolvedJSON.utf8))) ?? .object([:]) }

    public static func == (a: ExperimentSpec, b: ExperimentSpec) -> Bool { a.resolvedJSON == b.resolvedJSON && a.name == b.name }
}

public struct DatasetSpec: Codable, Equatable, Sendable {
    public enum Source: String, SpecChoice { case rafdb, synthetic }
    public enum Labels: String, SpecChoice { case soft, hard }
    /// `unit` maps pixels to [-1, 1]; `dataset` uses the training split's mean and std.
    public enum Scaling: String, SpecChoice { case unit, dataset }

    public var source = Source.rafdb
    public var root: String?
    public var labels = Labels.soft
    public var labelSmoothing = 0.0
    public var imageSize = 64
    public var validationFraction = 0.1
    public var splitSeed = 1
    public var normalization = Scaling.unit
    public var synthetic = SyntheticSpec()

    enum CodingKeys: String, CodingKey {
        case source, root, labels, labelSmoothing = "label_smoothing", imageSize = "image_size"
        case validationFraction = "validation_fraction", splitSeed = "split_seed", normalization, synthetic
    }

    public var labelMode: LabelMode { labels == .soft ? .soft : .hard(smoothing: Float(labelSmoothing)) }

    public init() {}
}

public struct SyntheticSpec: Codable, Equatable, Sendable {
    public var train = 6000
    public var test = 1200
    public var seed = 1

    public init() {}
}

public struct AugmentSpec: Codable, Equatable, Sendable {
    public var flip = true
    public var rotation = 15.0          // degrees, either way
    public var translation = 0.1        // fraction of the image side

    public var augmentation: Augmentation { Augmentation(flip: flip, rotation: Float(rotation), translation: Float(translation)) }

    public init() {}
}

/// The spec's `model` section: ModelConfig as a file spells it (its defaults
/// are ModelConfig's; the class count comes from the data, not the spec).
/// The architecture keys (activation ... attention_reduction) came later:
/// at their defaults they are left out of the resolved spec (SpecLoader.addedLater).
public struct ModelSpec: Codable, Equatable, Sendable {
    public var widths: [Int]
    public var convsPerBlock: [Int]
    public var skip: Bool
    public var batchNorm: Bool
    public var hidden: Int
    public var dropout: Double
    public var activation: ModelConfig.Activation
    public var pool: ModelConfig.Pooling
    public var kernel: Int
    public var conv: ModelConfig.Convolution
    public var shortcut: ModelConfig.Shortcut
    public var attention: ModelConfig.Attention
    public var attentionReduction: Int

    enum CodingKeys: String, CodingKey {
        case widths, convsPerBlock = "convs_per_block", skip, batchNorm = "batch_norm", hidden, dropout
        case activation, pool, kernel, conv, shortcut, attention, attentionReduction = "attention_reduction"
    }

    public init(_ c: ModelConfig) {
        widths = c.widths; convsPerBlock = c.convsPerBlock; skip = c.skip
        batchNorm = c.batchNorm; hidden = c.hidden; dropout = Double(c.dropout)
        activation = c.activation; pool = c.pool; kernel = c.kernel; conv = c.conv
        shortcut = c.shortcut; attention = c.attention; attentionReduction = c.attentionReduction
    }

    public var config: ModelConfig {
        ModelConfig(widths: widths, convsPerBlock: convsPerBlock, skip: skip, batchNorm: batchNorm,
                    hidden: hidden, dropout: Float(dropout), classes: Emotion.count,
                    activation: activation, pool: pool, kernel: kernel, conv: conv, shortcut: shortcut,
                    attention: attention, attentionReduction: attentionReduction)
    }

    /// The layers Grad-CAM can explain (ModelConfig.explainableLayers):
    /// "block1.conv1", ..., "block1.shortcut" with a projection, and each
    /// block's output, "block1", ...
    public var convolutionNames: [String] { config.explainableLayers }
}

extension ModelConfig.Activation: SpecChoice {}
extension ModelConfig.Pooling: SpecChoice {}
extension ModelConfig.Convolution: SpecChoice {}
extension ModelConfig.Shortcut: SpecChoice {}
extension ModelConfig.Attention: SpecChoice {}

public struct TrainSpec: Codable, Equatable, Sendable {
    public enum Optimizer: String, SpecChoice { case adam }
    public enum ClassWeights: String, SpecChoice {
        case none
        /// Each face weighted by its majority class's inverse frequency (spelled "balanced" in spec files).
        case balancedPerFace = "balanced_per_face"
        /// Per-class weights inside the soft-target loss: what "balanced" meant before per-face weights.
        case balancedPerClass = "balanced_per_class"
        /// What files may write: "balanced" resolves to balanced_per_face.
        static let spellings = ["none", "balanced"] + names.dropFirst()
    }
    public enum Sampling: String, SpecChoice { case shuffle, classBalanced = "class_balanced" }
    /// The learning rate over training (Training's LRSchedule): fixed, or warm-up then a half cosine.
    public enum Schedule: String, SpecChoice { case constant, cosine }

    public var optimizer = Optimizer.adam
    public var lr = 3e-4
    public var weightDecay = 0.0
    public var batchSize = 64
    public var maxEpochs = 60
    public var schedule = Schedule.constant
    public var warmupEpochs = 0
    public var classWeights = ClassWeights.none
    public var sampling = Sampling.shuffle
    public var logitAdjustment = 0.0    // tau; 0 = off
    /// The first epoch in which class_weights apply (deferred re-weighting,
    /// Cao et al. 2019): the epochs before train on the plain loss, so that
    /// features form where the common classes carry the signal.
    public var reweightFromEpoch = 1
    /// Decay of the exponential moving average of the weights that is
    /// validated and checkpointed instead of the raw weights; 0 = off.
    public var emaDecay = 0.0
    public var earlyStopping = EarlyStopping()
    public var seed = 1
    /// Absent in a file means [seed]; always present once resolved.
    public var seeds: [Int]?

    enum CodingKeys: String, CodingKey {
        case optimizer, lr, weightDecay = "weight_decay", batchSize = "batch_size", maxEpochs = "max_epochs", schedule
        case warmupEpochs = "warmup_epochs", classWeights = "class_weights", sampling, logitAdjustment = "logit_adjustment"
        case reweightFromEpoch = "reweight_from_epoch", emaDecay = "ema_decay"
        case earlyStopping = "early_stopping", seed, seeds
    }

    public var runSeeds: [Int] { seeds ?? [seed] }

    public init() {}
}

public struct EarlyStopping: Codable, Equatable, Sendable {
    public enum Monitor: String, SpecChoice { case valLoss = "val_loss", valAccuracy = "val_accuracy", valMacroF1 = "val_macro_f1" }
    public var monitor = Monitor.valLoss
    public var patience = 10
    public var minDelta = 0.0

    enum CodingKeys: String, CodingKey { case monitor, patience, minDelta = "min_delta" }

    public init() {}
}

public struct EvaluateSpec: Codable, Equatable, Sendable {
    public var test = false

    public init() {}
}

/// The held-out splits a run is evaluated and explained on (the registry's type).
extension EvalSplit: SpecChoice {}

public struct ExplainSpec: Codable, Equatable, Sendable {
    public typealias Split = EvalSplit
    public var enabled = false
    public var images = 32
    public var layer: String?           // nil: the last convolution; any of ModelSpec.convolutionNames
    public var split = Split.val

    public init() {}
}

public struct ReportSpec: Codable, Equatable, Sendable {
    public var markdown = false         // write reports/report.md after the spec's runs

    public init() {}
}
