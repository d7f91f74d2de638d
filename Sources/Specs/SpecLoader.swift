import Failures
import Foundation

/// Reads specs: `extends` chains merged as JSON, every file checked against
/// SpecSchema with its own name in the message, the defaults filled in, then
/// decoded into the typed ExperimentSpec.
public enum SpecLoader {
    /// The defaults as JSON, from the sections' initial values. Codable leaves
    /// a nil optional out; a resolved spec writes these as null.
    static let defaults: JSONValue = {
        guard var d = try? JSONValue(encoding: ExperimentSpec()) else { preconditionFailure("the spec defaults do not encode as JSON") }
        d["name"] = nil
        d["description"] = .null
        d["dataset"]?["root"] = .null
        d["explain"]?["layer"] = .null
        return d
    }()

    /// Keys added after runs were first recorded, with their defaults. At its
    /// default such a key is left out of the resolved spec, so a spec that does
    /// not use the newer feature keeps its hash and its runs stay one experiment.
    static let addedLater: [(section: String, key: String, value: JSONValue)] = [
        ("train", "schedule", .string("constant")), ("train", "warmup_epochs", .number(0)), ("report", "markdown", .bool(false)),
        ("train", "sampling", .string("shuffle")), ("train", "logit_adjustment", .number(0)), ("train", "reweight_from_epoch", .number(1)),
        ("train", "ema_decay", .number(0)),
        ("model", "activation", .string("relu")), ("model", "pool", .string("max")), ("model", "kernel", .number(3)),
        ("model", "conv", .string("standard")), ("model", "shortcut", .string("inner")), ("model", "attention", .string("none")),
        ("model", "attention_reduction", .number(16)),
    ]

    static func droppingLaterDefaults(_ full: JSONValue) -> JSONValue {
        var out = full
        for (section, key, value) in addedLater where out[section]?[key] == value {
            out[section]?[key] = nil
            if out[section]?.object?.isEmpty == true { out[section] = nil }
        }
        return out
    }

    public static func load(_ path: String) throws -> ExperimentSpec { try load(path, overrides: []) }

    /// The file's JSON merged over its parents', checked key by key.
    public static func loadMerged(_ url: URL, chain: inout [String]) throws -> JSONValue {
        let path = url.standardizedFileURL.path
        if chain.contains(path) {
            throw Failure(.spec,
                          "\(chain.last!): extends cycle: "
                              + "\((chain + [path]).map { ($0 as NSString).lastPathComponent }.joined(separator: " -> "))")
        }
        var merged = try read(path, from: chain.last)
        chain.append(path)
        if let parent = merged["extends"]?.string {
            let parentURL = URL(fileURLWithPath: parent, relativeTo: url.deletingLastPathComponent())
            var base = try loadMerged(parentURL, chain: &chain)
            merged["extends"] = nil
            merged["parent"] = base["name"] ?? .string((parent as NSString).deletingPathExtension)
            base["description"] = nil
            merged = base.merging(merged)
        }
        chain.removeLast()
        if merged["name"] == nil { merged["name"] = .string(url.deletingPathExtension().lastPathComponent) }
        return merged
    }

    /// One spec file, parsed and checked against the schema.
    static func read(_ path: String, from child: String?) throws -> JSONValue {
        guard let data = FileManager.default.contents(atPath: path) else {
            if let child { throw Failure(.spec, "\(child): extends \(path), which does not exist") }
            throw Failure(.spec, "\(path): no such spec file")
        }
        let value: JSONValue
        do { value = try JSONValue(parsing: data) } catch {
            throw Failure(.spec, "\(path): malformed JSON\(detail(error))")
        }
        guard let dict = value.object else { throw Failure(.spec, "\(path): a spec is a JSON object { ... }") }
        try SpecSchema.check(dict, against: SpecSchema.root, path: "", file: path)
        return value
    }

    /// ": <where and what>" from a JSON syntax error, when the parser says.
    static func detail(_ error: Error) -> String {
        if let d = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String { return ": " + d }
        return ""
    }

    /// A merged spec with the defaults filled in, decoded and cross-checked.
    public static func resolve(_ raw: JSONValue, file: String) throws -> ExperimentSpec {
        var full = defaults.merging(raw)
        if full["train"]?["seeds"] == nil, let seed = full["train"]?["seed"] { full["train"]?["seeds"] = .array([seed]) }
        // "balanced" once meant per-class weights inside the loss. Resolved
        // under its per-face name, a new run never shares an experiment (a
        // spec hash) with runs stored under the old meaning (SpecLoader.asTrained).
        if full["train"]?["class_weights"] == .string("balanced") { full["train"]?["class_weights"] = .string("balanced_per_face") }
        var spec: ExperimentSpec
        do { spec = try full.decode(ExperimentSpec.self) } catch let e as DecodingError {
            // Reached by stored specs (runs.db, sweep plans), which skip SpecSchema.
            throw Failure(.spec, "\(file): \(decodingPath(e).path): \(decodingPath(e).reason)")
        }
        try crossCheck(spec, file: file)
        spec.file = file
        spec.resolvedJSON = droppingLaterDefaults(full).canonical
        return spec
    }

    static func decodingPath(_ e: DecodingError) -> (path: String, reason: String) {
        switch e {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
            return (c.codingPath.map(\.stringValue).joined(separator: "."), c.debugDescription)
        case .keyNotFound(let key, let c):
            return ((c.codingPath + [key]).map(\.stringValue).joined(separator: "."), "missing")
        @unknown default: return ("?", "\(e)")
        }
    }

    /// Checks that involve more than one key.
    static func crossCheck(_ spec: ExperimentSpec, file: String) throws {
        // ModelConfig's lines name model keys; image_size is the dataset's.
        if let p = spec.model.config.problems(imageSize: spec.dataset.imageSize).first {
            throw Failure(.spec, "\(file): \(p.hasPrefix("image_size:") ? "dataset" : "model").\(p)")
        }
        if let layer = spec.explain.layer, !spec.model.convolutionNames.contains(layer) {
            throw Failure(.spec,
                          "\(file): explain.layer: no layer \(layer) in this model; layers: "
                              + "\(spec.model.convolutionNames.joined(separator: ", "))")
        }
        if spec.train.warmupEpochs >= spec.train.maxEpochs {
            throw Failure(.spec, "\(file): train.warmup_epochs: must be less than train.max_epochs (\(spec.train.maxEpochs))")
        }
        if spec.train.reweightFromEpoch > 1 && spec.train.classWeights == .none {
            throw Failure(.spec, "\(file): train.reweight_from_epoch: defers train.class_weights, which is none; set it to balanced")
        }
        if spec.train.reweightFromEpoch > spec.train.maxEpochs {
            throw Failure(.spec, "\(file): train.reweight_from_epoch: must be at most train.max_epochs (\(spec.train.maxEpochs))")
        }
        if spec.dataset.labels == .soft && spec.dataset.labelSmoothing > 0 {
            throw Failure(.spec, "\(file): dataset.label_smoothing: applies to hard labels only; set dataset.labels to \"hard\"")
        }
    }

    /// A spec as the registry (or a sweep plan) stored it, resolved as its run was trained.
    public static func stored(_ specJSON: String, file: String) throws -> ExperimentSpec {
        try resolve(asTrained(JSONValue(parsing: Data(specJSON.utf8))), file: file)
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
}
