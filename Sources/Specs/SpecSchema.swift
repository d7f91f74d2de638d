import Engine
import Failures
import Foundation

/// What each spec key accepts: the checks Codable cannot state (unknown keys
/// with the nearest valid one, ranges, the allowed spellings), run on the raw
/// file before anything is merged, so every message names the file that holds
/// the mistake. The types and defaults live in the Codable sections (Spec.swift).
enum SpecSchema {
    indirect enum Kind {
        case string([String]?)      // allowed values, nil = any
        case optionalString
        case int(ClosedRange<Int>)
        case intChoice([Int])       // allowed values
        case number(ClosedRange<Double>)
        case bool
        case intArray(ClosedRange<Int>, count: ClosedRange<Int>)
        case object([String: Kind])
    }

    static let seedRange = 0...Int(Int32.max)

    static let root: [String: Kind] = [
        "name": .string(nil),
        "description": .optionalString,
        "extends": .string(nil),
        "dataset": .object([
            "source": .string(DatasetSpec.Source.names),
            "root": .optionalString,
            "labels": .string(DatasetSpec.Labels.names),
            "label_smoothing": .number(0...0.5),
            "image_size": .int(8...512),
            "validation_fraction": .number(0.01...0.5),
            "split_seed": .int(seedRange),
            "normalization": .string(DatasetSpec.Scaling.names),
            "synthetic": .object(["train": .int(12...1_000_000), "test": .int(6...1_000_000), "seed": .int(seedRange)]),
        ]),
        "augment": .object(["flip": .bool, "rotation": .number(0...180), "translation": .number(0...0.5)]),
        "model": .object([
            "widths": .intArray(1...4096, count: 1...8),
            "convs_per_block": .intArray(1...16, count: 1...8),
            "skip": .bool,
            "batch_norm": .bool,
            "hidden": .int(0...65536),
            "dropout": .number(0...0.95),
            "activation": .string(ModelConfig.Activation.names),
            "pool": .string(ModelConfig.Pooling.names),
            "kernel": .intChoice(ModelConfig.kernels),
            "conv": .string(ModelConfig.Convolution.names),
            "shortcut": .string(ModelConfig.Shortcut.names),
            "attention": .string(ModelConfig.Attention.names),
            "attention_reduction": .int(1...4096),
        ]),
        "train": .object([
            "optimizer": .string(TrainSpec.Optimizer.names),
            "lr": .number(1e-7...1),
            "weight_decay": .number(0...1),
            "batch_size": .int(1...4096),
            "max_epochs": .int(1...10000),
            "schedule": .string(TrainSpec.Schedule.names),
            "warmup_epochs": .int(0...10000),
            "class_weights": .string(TrainSpec.ClassWeights.spellings),
            "reweight_from_epoch": .int(1...10000),
            "sampling": .string(TrainSpec.Sampling.names),
            "logit_adjustment": .number(0...10),
            "ema_decay": .number(0...0.99999),
            "early_stopping": .object([
                "monitor": .string(EarlyStopping.Monitor.names),
                "patience": .int(1...10000),
                "min_delta": .number(0...1),
            ]),
            "seed": .int(seedRange),
            "seeds": .intArray(seedRange, count: 1...100),
        ]),
        "evaluate": .object(["test": .bool]),
        "report": .object(["markdown": .bool]),
        "explain": .object([
            "enabled": .bool,
            "images": .int(1...10000),
            "layer": .optionalString,
            "split": .string(ExplainSpec.Split.names),
        ]),
    ]

    static func check(_ dict: [String: JSONValue], against schema: [String: Kind], path: String, file: String) throws {
        for key in dict.keys.sorted() {
            let keyPath = path.isEmpty ? key : "\(path).\(key)"
            if key == "parent" && path.isEmpty { continue }
            guard let kind = schema[key] else {
                let hint = nearest(key, in: Array(schema.keys)).map { " (did you mean \(path.isEmpty ? $0 : "\(path).\($0)")?)" } ?? ""
                let valid = schema.keys.sorted().joined(separator: ", ")
                throw Failure(.spec, "\(file): \(keyPath): unknown key\(hint); valid here: \(valid.isEmpty ? "none" : valid)")
            }
            try checkValue(dict[key]!, kind, keyPath: keyPath, file: file)
        }
    }

    static func checkValue(_ v: JSONValue, _ kind: Kind, keyPath: String, file: String) throws {
        func fail(_ expected: String) -> Failure { Failure(.spec, "\(file): \(keyPath): expected \(expected), got \(v.shortDescription)") }
        switch (kind, v) {
        case (.string(let allowed), .string(let s)):
            if let allowed, !allowed.contains(s) { throw fail("one of \(allowed.joined(separator: ", "))") }
        case (.string(let allowed), _):
            throw fail(allowed.map { "one of \($0.joined(separator: ", "))" } ?? "a string")
        case (.optionalString, .string), (.optionalString, .null), (.bool, .bool):
            break
        case (.optionalString, _): throw fail("a string or null")
        case (.bool, _): throw fail("true or false")
        case (.int(let r), _):
            guard integer(v, in: r) else { throw fail("an integer in \(r.lowerBound)...\(r.upperBound)") }
        case (.intChoice(let allowed), _):
            guard allowed.contains(where: { integer(v, in: $0...$0) }) else { throw fail("one of "
                + "\(allowed.map(String.init).joined(separator: ", "))") }
        case (.number(let r), .number(let n)):
            guard r.contains(n) else { throw fail("a number in \(r.lowerBound)...\(r.upperBound)") }
        case (.number(let r), _): throw fail("a number in \(r.lowerBound)...\(r.upperBound)")
        case (.intArray(let r, let count), _):
            guard case .array(let a) = v, count.contains(a.count), a.allSatisfy({ integer($0, in: r) })
            else { throw fail("an array of \(count.lowerBound)...\(count.upperBound) integers in \(r.lowerBound)...\(r.upperBound)") }
        case (.object(let sub), .object(let d)):
            try check(d, against: sub, path: keyPath, file: file)
        case (.object, _): throw fail("an object")
        }
    }

    static func integer(_ v: JSONValue, in r: ClosedRange<Int>) -> Bool {
        guard case .number(let n) = v, let i = Int(exactly: n) else { return false }
        return r.contains(i)
    }

    /// The closest valid key by edit distance, when close enough to be a typo.
    static func nearest(_ key: String, in keys: [String]) -> String? {
        let scored: [(key: String, d: Int)] = keys.map { ($0, distance(key.lowercased(), $0.lowercased())) }
        guard let best = scored.min(by: { ($0.d, $0.key) < ($1.d, $1.key) }), best.d <= max(2, key.count / 3) else { return nil }
        return best.key
    }

    /// Levenshtein distance.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var prev = Array(0...b.count)
        for i in 1...a.count {
            var cur = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count { cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)) }
            prev = cur
        }
        return prev[b.count]
    }
}
