import Engine
import Faces
import Foundation

/// A spec problem: one line naming the file and the key path.
public struct SpecError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// A fully resolved experiment spec (DESIGN.md §4): every key has a value.
public struct ExperimentSpec: Equatable, Sendable {
    public var name: String
    public var description: String?
    public var parent: String?          // name of the spec it extends
    public var file: String             // where it was read from

    public var datasetSource: String    // "rafdb" | "synthetic"
    public var datasetRoot: String?
    public var labels: String           // "soft" | "hard"
    public var labelSmoothing: Float
    public var imageSize: Int
    public var validationFraction: Double
    public var splitSeed: Int
    public var normalization: String    // "unit" ([-1, 1]) | "dataset" (training split mean/std)
    public var syntheticTrain: Int
    public var syntheticTest: Int
    public var syntheticSeed: Int

    public var augmentation: Augmentation
    public var model: ModelConfig

    public var lr: Float
    public var weightDecay: Float
    public var batchSize: Int
    public var maxEpochs: Int
    public var classWeights: String     // "none" | "balanced_per_face" (spelled "balanced" in spec files) | "balanced_per_class"
    public var scheduleKind: LRSchedule.Kind
    public var warmupEpochs: Int
    /// Derived from lr and max_epochs, so changing either changes the curve.
    public var schedule: LRSchedule { LRSchedule(kind: scheduleKind, peak: lr, warmupEpochs: warmupEpochs, epochs: maxEpochs) }
    public var sampling: String         // "shuffle" | "class_balanced"
    public var logitAdjustment: Float   // tau; 0 = off
    public var monitor: String          // "val_loss" | "val_accuracy" | "val_macro_f1"
    public var patience: Int
    public var minDelta: Double
    public var seeds: [Int]

    public var evaluateTest: Bool

    public var explainEnabled: Bool
    public var explainImages: Int
    public var explainLayer: String?
    public var explainSplit: String

    public var reportMarkdown: Bool     // write reports/report.md after the spec's runs

    /// The resolved spec as canonical JSON (sorted keys): what the registry stores and hashes.
    public var resolvedJSON: String
    public var resolved: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(resolvedJSON.utf8))) as? [String: Any] ?? [:] }

    public static func == (a: ExperimentSpec, b: ExperimentSpec) -> Bool { a.resolvedJSON == b.resolvedJSON && a.name == b.name }

    public var labelMode: LabelMode { labels == "soft" ? .soft : .hard(smoothing: labelSmoothing) }
}

/// Reads specs: `extends` chains, schema check with the file and key path of
/// every problem, defaults filled in.
public enum SpecLoader {
    indirect enum Kind {
        case string([String]?)      // allowed values, nil = any
        case optionalString
        case int(ClosedRange<Int>)
        case number(ClosedRange<Double>)
        case bool
        case intArray(ClosedRange<Int>, count: ClosedRange<Int>)
        case object([String: Kind])
    }

    static let schema: [String: Kind] = [
        "name": .string(nil),
        "description": .optionalString,
        "extends": .string(nil),
        "dataset": .object([
            "source": .string(["rafdb", "synthetic"]),
            "root": .optionalString,
            "labels": .string(["soft", "hard"]),
            "label_smoothing": .number(0...0.5),
            "image_size": .int(8...512),
            "validation_fraction": .number(0.01...0.5),
            "split_seed": .int(0...Int(Int32.max)),
            "normalization": .string(["unit", "dataset"]),
            "synthetic": .object([
                "train": .int(12...1_000_000),
                "test": .int(6...1_000_000),
                "seed": .int(0...Int(Int32.max)),
            ]),
        ]),
        "augment": .object([
            "flip": .bool,
            "rotation": .number(0...180),
            "translation": .number(0...0.5),
        ]),
        "model": .object([
            "widths": .intArray(1...4096, count: 1...8),
            "convs_per_block": .intArray(1...16, count: 1...8),
            "skip": .bool,
            "batch_norm": .bool,
            "hidden": .int(1...65536),
            "dropout": .number(0...0.95),
        ]),
        "train": .object([
            "optimizer": .string(["adam"]),
            "lr": .number(1e-7...1),
            "weight_decay": .number(0...1),
            "batch_size": .int(1...4096),
            "max_epochs": .int(1...10000),
            "schedule": .string(["constant", "cosine"]),
            "warmup_epochs": .int(0...10000),
            "class_weights": .string(["none", "balanced", "balanced_per_face", "balanced_per_class"]),
            "sampling": .string(["shuffle", "class_balanced"]),
            "logit_adjustment": .number(0...10),
            "early_stopping": .object([
                "monitor": .string(["val_loss", "val_accuracy", "val_macro_f1"]),
                "patience": .int(1...10000),
                "min_delta": .number(0...1),
            ]),
            "seed": .int(0...Int(Int32.max)),
            "seeds": .intArray(0...Int(Int32.max), count: 1...100),
        ]),
        "evaluate": .object(["test": .bool]),
        "report": .object(["markdown": .bool]),
        "explain": .object([
            "enabled": .bool,
            "images": .int(1...10000),
            "layer": .optionalString,
            "split": .string(["val", "test"]),
        ]),
    ]

    /// Every key's default: the research plan's baseline (DESIGN.md §2).
    static let defaults: [String: Any] = [
        "description": NSNull(),
        "dataset": [
            "source": "rafdb", "root": NSNull(), "labels": "soft", "label_smoothing": 0.0, "image_size": 64,
            "validation_fraction": 0.1, "split_seed": 1, "normalization": "unit",
            "synthetic": ["train": 6000, "test": 1200, "seed": 1],
        ] as [String: Any],
        "augment": ["flip": true, "rotation": 15.0, "translation": 0.1] as [String: Any],
        "model": ["widths": [32, 64, 128], "convs_per_block": [2, 2, 3], "skip": true, "batch_norm": true,
                  "hidden": 64, "dropout": 0.5] as [String: Any],
        "train": ["optimizer": "adam", "lr": 3e-4, "weight_decay": 0.0, "batch_size": 64, "max_epochs": 60,
                  "class_weights": "none", "schedule": "constant", "warmup_epochs": 0,
                  "sampling": "shuffle", "logit_adjustment": 0.0,
                  "early_stopping": ["monitor": "val_loss", "patience": 10, "min_delta": 0.0] as [String: Any],
                  "seed": 1] as [String: Any],
        "evaluate": ["test": false],
        "explain": ["enabled": false, "images": 32, "layer": NSNull(), "split": "val"] as [String: Any],
        "report": ["markdown": false],
    ]

    /// Keys added after runs were first recorded, with their defaults. At its
    /// default such a key is left out of the resolved spec, so a spec that does
    /// not use the newer feature keeps its hash and its runs stay one experiment.
    static let addedLater: [(section: String, key: String, value: Any)] = [
        ("train", "schedule", "constant"), ("train", "warmup_epochs", 0), ("report", "markdown", false),
        ("train", "sampling", "shuffle"), ("train", "logit_adjustment", 0),
    ]

    static func droppingLaterDefaults(_ full: [String: Any]) -> [String: Any] {
        var out = full
        for (section, key, value) in addedLater {
            guard var sub = out[section] as? [String: Any], let v = sub[key] else { continue }
            if (v as? NSObject)?.isEqual(value) == true { sub[key] = nil; out[section] = sub.isEmpty ? nil : sub }
        }
        return out
    }

    public static func load(_ path: String) throws -> ExperimentSpec {
        let url = URL(fileURLWithPath: path)
        var chain = [String]()
        let merged = try loadMerged(url, chain: &chain)
        return try resolve(merged, file: path)
    }

    /// The file's dictionary merged over its parents', checked key by key.
    static func loadMerged(_ url: URL, chain: inout [String]) throws -> [String: Any] {
        let path = url.standardizedFileURL.path
        if chain.contains(path) {
            throw SpecError("\(chain.last!): extends cycle: \((chain + [path]).map { ($0 as NSString).lastPathComponent }.joined(separator: " -> "))")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            if let child = chain.last { throw SpecError("\(child): extends \(path), which does not exist") }
            throw SpecError("\(path): no such spec file")
        }
        let obj: Any
        do { obj = try JSONSerialization.jsonObject(with: data) } catch {
            throw SpecError("\(path): malformed JSON\(jsonErrorDetail(error))")
        }
        guard let dict = obj as? [String: Any] else { throw SpecError("\(path): a spec is a JSON object { ... }") }
        try check(dict, against: schema, path: "", file: path)
        chain.append(path)
        var merged = dict
        if let parent = dict["extends"] as? String {
            let parentURL = URL(fileURLWithPath: parent, relativeTo: url.deletingLastPathComponent())
            var base = try loadMerged(parentURL, chain: &chain)
            merged["extends"] = nil
            merged["parent"] = base["name"] ?? (parent as NSString).deletingPathExtension
            base["description"] = nil
            merged = deepMerge(base, merged)
        }
        chain.removeLast()
        if merged["name"] == nil { merged["name"] = url.deletingPathExtension().lastPathComponent }
        return merged
    }

    static func jsonErrorDetail(_ error: Error) -> String {
        let ns = error as NSError
        if let d = ns.userInfo["NSDebugDescription"] as? String { return ": " + d }
        return ""
    }

    static func deepMerge(_ base: [String: Any], _ over: [String: Any]) -> [String: Any] {
        var out = base
        for (k, v) in over {
            if let b = base[k] as? [String: Any], let o = v as? [String: Any] { out[k] = deepMerge(b, o) } else { out[k] = v }
        }
        return out
    }

    static func check(_ dict: [String: Any], against schema: [String: Kind], path: String, file: String) throws {
        for key in dict.keys.sorted() {
            let keyPath = path.isEmpty ? key : "\(path).\(key)"
            if key == "parent" && path.isEmpty { continue }
            guard let kind = schema[key] else {
                let hint = nearest(key, in: Array(schema.keys)).map { " (did you mean \(path.isEmpty ? $0 : "\(path).\($0)")?)" } ?? ""
                let valid = schema.keys.sorted().joined(separator: ", ")
                throw SpecError("\(file): \(keyPath): unknown key\(hint); valid here: \(valid.isEmpty ? "none" : valid)")
            }
            try checkValue(dict[key]!, kind, keyPath: keyPath, file: file)
        }
    }

    static func describe(_ v: Any) -> String {
        if v is NSNull { return "null" }
        if let s = v as? String { return "\"\(s)\"" }
        if let n = v as? NSNumber { return isBool(v) ? (n.boolValue ? "true" : "false") : "\(n)" }
        if v is [Any] { return "an array" }
        if v is [String: Any] { return "an object" }
        return "\(v)"
    }

    /// JSON true/false: Foundation hands them over as its boolean NSNumber subclass.
    static func isBool(_ v: Any) -> Bool {
        guard let n = v as? NSNumber else { return false }
        return String(describing: type(of: n)).contains("Boolean")
    }

    static func checkValue(_ v: Any, _ kind: Kind, keyPath: String, file: String) throws {
        func fail(_ expected: String) -> SpecError { SpecError("\(file): \(keyPath): expected \(expected), got \(describe(v))") }
        switch kind {
        case .string(let allowed):
            guard let s = v as? String else { throw fail(allowed.map { "one of \($0.joined(separator: ", "))" } ?? "a string") }
            if let allowed, !allowed.contains(s) { throw fail("one of \(allowed.joined(separator: ", "))") }
        case .optionalString:
            guard v is String || v is NSNull else { throw fail("a string or null") }
        case .bool:
            guard isBool(v) else { throw fail("true or false") }
        case .int(let r):
            guard !isBool(v), let n = v as? NSNumber, n.doubleValue == n.doubleValue.rounded() else { throw fail("an integer in \(r.lowerBound)...\(r.upperBound)") }
            guard r.contains(n.intValue) else { throw fail("an integer in \(r.lowerBound)...\(r.upperBound)") }
        case .number(let r):
            guard !isBool(v), let n = v as? NSNumber else { throw fail("a number in \(r.lowerBound)...\(r.upperBound)") }
            guard r.contains(n.doubleValue) else { throw fail("a number in \(r.lowerBound)...\(r.upperBound)") }
        case .intArray(let r, let count):
            guard let a = v as? [Any], count.contains(a.count),
                  a.allSatisfy({ !isBool($0) && ($0 as? NSNumber).map { r.contains($0.intValue) && $0.doubleValue == $0.doubleValue.rounded() } == true })
            else { throw fail("an array of \(count.lowerBound)...\(count.upperBound) integers in \(r.lowerBound)...\(r.upperBound)") }
        case .object(let sub):
            guard let d = v as? [String: Any] else { throw fail("an object") }
            try check(d, against: sub, path: keyPath, file: file)
        }
    }

    /// The closest valid key by edit distance, when close enough to be a typo.
    static func nearest(_ key: String, in keys: [String]) -> String? {
        func distance(_ a: String, _ b: String) -> Int {
            let a = Array(a), b = Array(b)
            var prev = Array(0...b.count)
            for i in 1...max(1, a.count) where !a.isEmpty {
                var cur = [i] + Array(repeating: 0, count: b.count)
                for j in 1...max(1, b.count) where !b.isEmpty {
                    cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                }
                prev = cur
            }
            return a.isEmpty ? b.count : prev[b.count]
        }
        let scored: [(String, Int)] = keys.map { ($0, distance(key.lowercased(), $0.lowercased())) }
            .sorted { (l: (String, Int), r: (String, Int)) -> Bool in l.1 < r.1 || (l.1 == r.1 && l.0 < r.0) }
        guard let best = scored.first, best.1 <= max(2, key.count / 3) else { return nil }
        return best.0
    }

    static func resolve(_ raw: [String: Any], file: String) throws -> ExperimentSpec {
        var full = deepMerge(defaults, raw)
        // `train.seeds` defaults to [train.seed].
        var train = full["train"] as! [String: Any]
        if train["seeds"] == nil { train["seeds"] = [train["seed"]!] }
        // "balanced" once meant per-class weights inside the loss. Resolved
        // under its per-face name, a new run never shares an experiment (a
        // spec hash) with runs stored under the old meaning (RunRow.asTrained).
        if train["class_weights"] as? String == "balanced" { train["class_weights"] = "balanced_per_face" }
        full["train"] = train
        let d = full["dataset"] as! [String: Any], syn = d["synthetic"] as! [String: Any]
        let a = full["augment"] as! [String: Any], m = full["model"] as! [String: Any]
        let es = train["early_stopping"] as! [String: Any], ev = full["evaluate"] as! [String: Any]
        let ex = full["explain"] as! [String: Any]
        func int(_ v: Any?) -> Int { (v as! NSNumber).intValue }
        func num(_ v: Any?) -> Double { (v as! NSNumber).doubleValue }
        func bool(_ v: Any?) -> Bool { (v as! NSNumber).boolValue }
        func ints(_ v: Any?) -> [Int] { (v as! [Any]).map { ($0 as! NSNumber).intValue } }
        let model = ModelConfig(widths: ints(m["widths"]), convsPerBlock: ints(m["convs_per_block"]), skip: bool(m["skip"]),
                                batchNorm: bool(m["batch_norm"]), hidden: int(m["hidden"]), dropout: Float(num(m["dropout"])),
                                classes: Emotion.count)
        let imageSize = int(d["image_size"])
        if let p = model.problems(imageSize: imageSize).first {
            throw SpecError("\(file): model.\(p)")
        }
        if let layer = ex["layer"] as? String {
            let layers = model.convsPerBlock.enumerated().flatMap { b, k in (1...k).map { "block\(b + 1).conv\($0)" } }
            if !layers.contains(layer) {
                throw SpecError("\(file): explain.layer: no convolution \(layer) in this model; layers: \(layers.joined(separator: ", "))")
            }
        }
        if int(train["warmup_epochs"]) >= int(train["max_epochs"]) {
            throw SpecError("\(file): train.warmup_epochs: must be less than train.max_epochs (\(int(train["max_epochs"])))")
        }
        if d["labels"] as? String == "soft" && num(d["label_smoothing"]) > 0 {
            throw SpecError("\(file): dataset.label_smoothing: applies to hard labels only; set dataset.labels to \"hard\"")
        }
        let json = try JSONSerialization.data(withJSONObject: droppingLaterDefaults(full), options: [.sortedKeys])
        return ExperimentSpec(
            name: full["name"] as! String, description: full["description"] as? String, parent: full["parent"] as? String,
            file: file,
            datasetSource: d["source"] as! String, datasetRoot: d["root"] as? String, labels: d["labels"] as! String,
            labelSmoothing: Float(num(d["label_smoothing"])), imageSize: imageSize,
            validationFraction: num(d["validation_fraction"]), splitSeed: int(d["split_seed"]),
            normalization: d["normalization"] as! String,
            syntheticTrain: int(syn["train"]), syntheticTest: int(syn["test"]), syntheticSeed: int(syn["seed"]),
            augmentation: Augmentation(flip: bool(a["flip"]), rotation: Float(num(a["rotation"])), translation: Float(num(a["translation"]))),
            model: model,
            lr: Float(num(train["lr"])), weightDecay: Float(num(train["weight_decay"])), batchSize: int(train["batch_size"]),
            maxEpochs: int(train["max_epochs"]), classWeights: train["class_weights"] as! String,
            scheduleKind: LRSchedule.Kind(rawValue: train["schedule"] as! String)!, warmupEpochs: int(train["warmup_epochs"]),
            sampling: train["sampling"] as! String, logitAdjustment: Float(num(train["logit_adjustment"])),
            monitor: es["monitor"] as! String, patience: int(es["patience"]), minDelta: num(es["min_delta"]),
            seeds: ints(train["seeds"]), evaluateTest: bool(ev["test"]),
            explainEnabled: bool(ex["enabled"]), explainImages: int(ex["images"]), explainLayer: ex["layer"] as? String,
            explainSplit: ex["split"] as! String,
            reportMarkdown: bool((full["report"] as! [String: Any])["markdown"]),
            resolvedJSON: String(data: json, encoding: .utf8)!)
    }
}
