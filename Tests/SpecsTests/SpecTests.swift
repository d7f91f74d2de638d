import Foundation
import XCTest
@testable import Specs
import Registry

final class SpecTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("lab-spec-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func write(_ name: String, _ text: String) -> String {
        let p = dir.appendingPathComponent(name).path
        _ = FileManager.default.createFile(atPath: p, contents: Data(text.utf8))
        return p
    }

    func error(_ path: String) -> String {
        do { _ = try SpecLoader.load(path); return "no error" } catch { return "\(error)" }
    }

    var experiments: URL { URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("experiments") }

    func testExtendsOverridesOnlyWhatItNames() throws {
        _ = write("base.json", #"{"name": "base", "model": {"dropout": 0.3, "hidden": 32}, "train": {"lr": 0.001}}"#)
        let child = try SpecLoader.load(write("child.json", #"{"name": "child", "extends": "base.json", "model": {"skip": false}}"#))
        XCTAssertEqual(child.name, "child")
        XCTAssertEqual(child.parent, "base")
        XCTAssertEqual(child.model.skip, false)
        XCTAssertEqual(child.model.dropout, 0.3)
        XCTAssertEqual(child.model.hidden, 32)
        XCTAssertEqual(child.train.lr, 0.001)
        XCTAssertEqual(child.model.widths, [32, 64, 128], "defaults fill the rest")
        XCTAssertEqual(child.train.runSeeds, [1])
        XCTAssertTrue(child.resolvedJSON.contains(#""skip":false"#))
    }

    func testEveryShippedSpecLoadsAndEachAblationIsOneFactor() throws {
        let base = try SpecLoader.load(experiments.appendingPathComponent("baseline.json").path)
        XCTAssertEqual(base.model.config, .init(widths: [32, 64, 128], convsPerBlock: [2, 2, 3], skip: true, batchNorm: true, hidden: 64, dropout: 0.5, classes: 6))
        XCTAssertEqual(base.train.lr, 3e-4); XCTAssertEqual(base.train.batchSize, 64); XCTAssertGreaterThanOrEqual(base.train.maxEpochs, 60)
        XCTAssertFalse(base.evaluate.test)
        let expected: [String: Set<String>] = [
            "skip_off": ["model.skip"], "no_batchnorm": ["model.batch_norm"], "shallow": ["model.convs_per_block"],
            "narrow": ["model.widths"], "wide": ["model.widths"], "dropout_0": ["model.dropout"], "dropout_0.25": ["model.dropout"],
            "hard_labels": ["dataset.labels"], "no_augmentation": ["augment.flip", "augment.rotation", "augment.translation"],
            "no_rotation": ["augment.rotation"], "lr_1e-3": ["train.lr"], "batch_32": ["train.batch_size"],
            "class_weights": ["train.class_weights", "train.reweight_from_epoch"], "class_weights_per_class": ["train.class_weights"],
            "balanced_sampling": ["train.sampling"], "logit_adjustment": ["train.logit_adjustment"], "final": ["evaluate.test"],
            "se": ["model.attention"], "cbam": ["model.attention"], "separable": ["model.conv"], "projection": ["model.shortcut"],
            "kernel_5": ["model.kernel"], "avg_pool": ["model.pool"], "silu": ["model.activation"], "no_hidden": ["model.hidden"],
        ]
        for (name, keys) in expected {
            let s = try SpecLoader.load(experiments.appendingPathComponent("\(name).json").path)
            XCTAssertEqual(s.parent, "baseline", name)
            XCTAssertEqual(Set(SpecDiff.changed(base.resolved, s.resolved)), keys, name)
        }
        let quick = try SpecLoader.load(experiments.appendingPathComponent("quickstart.json").path)
        XCTAssertEqual(quick.dataset.source, .synthetic); XCTAssertTrue(quick.evaluate.test)
        // The quickstart's description names each change from the baseline; a new change needs a new reason there.
        XCTAssertEqual(Set(SpecDiff.changed(base.resolved, quick.resolved)), [
            "dataset.source", "dataset.synthetic.train", "dataset.synthetic.test", "model.widths", "model.hidden", "model.dropout",
            "train.max_epochs", "train.lr", "train.batch_size", "train.schedule", "train.warmup_epochs", "train.logit_adjustment", "train.seeds",
            "evaluate.test", "explain.enabled", "explain.images", "report",
        ])
    }

    /// experiments/synthetic: the quickstart's recipe on validation only, and one model key per factor.
    func testSyntheticStudyIsOneFactorAgainstTheQuickstartRecipe() throws {
        let dir = experiments.appendingPathComponent("synthetic")
        let quick = try SpecLoader.load(experiments.appendingPathComponent("quickstart.json").path)
        let ref = try SpecLoader.load(dir.appendingPathComponent("reference.json").path)
        XCTAssertEqual(ref.parent, "quickstart")
        XCTAssertEqual(Set(SpecDiff.changed(quick.resolved, ref.resolved)), ["evaluate.test", "explain.enabled", "report", "train.seeds"],
                       "the same training as the quickstart")
        let expected: [String: Set<String>] = [
            "se": ["model.attention"], "cbam": ["model.attention"], "separable": ["model.conv"], "projection": ["model.shortcut"],
            "kernel_5": ["model.kernel"], "avg_pool": ["model.pool"], "silu": ["model.activation"], "hidden_64": ["model.hidden"],
            "narrow": ["model.widths"], "quarter": ["model.widths"], "low_lr": ["train.lr"],
            "no_augmentation": ["augment.flip", "augment.rotation", "augment.translation"],
        ]
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".json") && $0 != "reference.json" }
        XCTAssertEqual(Set(files.map { String($0.dropLast(5)) }), Set(expected.keys), "every study file is listed here")
        for (name, keys) in expected {
            let s = try SpecLoader.load(dir.appendingPathComponent("\(name).json").path)
            XCTAssertEqual(s.name, "syn_\(name)"); XCTAssertEqual(s.parent, "syn_reference", name)
            XCTAssertEqual(Set(SpecDiff.changed(ref.resolved, s.resolved)), keys, name)
        }
    }

    func testBadSpecsNameFileAndKey() {
        let typo = write("typo.json", #"{"model": {"skp": false}}"#)
        XCTAssertEqual(error(typo), "\(typo): model.skp: unknown key (did you mean model.skip?); valid here: activation, attention, attention_reduction, batch_norm, conv, convs_per_block, dropout, hidden, kernel, pool, shortcut, skip, widths")
        let type = write("type.json", #"{"train": {"lr": "fast"}}"#)
        XCTAssertEqual(error(type), "\(type): train.lr: expected a number in 1e-07...1.0, got \"fast\"")
        let range = write("range.json", #"{"dataset": {"source": "imagenet"}}"#)
        XCTAssertEqual(error(range), "\(range): dataset.source: expected one of rafdb, synthetic, got \"imagenet\"")
        let malformed = write("bad.json", #"{"model": {"skip": false,}"#)
        XCTAssertTrue(error(malformed).hasPrefix("\(malformed): malformed JSON"), error(malformed))
        let a = write("a.json", #"{"extends": "b.json"}"#)
        _ = write("b.json", #"{"extends": "a.json"}"#)
        XCTAssertEqual(error(a), "\(dir.appendingPathComponent("b.json").path): extends cycle: a.json -> b.json -> a.json")
        let orphan = write("orphan.json", #"{"extends": "missing.json"}"#)
        XCTAssertEqual(error(orphan), "\(orphan): extends \(dir.appendingPathComponent("missing.json").path), which does not exist")
        let top = write("top.json", #"{"modle": {}}"#)
        XCTAssertTrue(error(top).hasPrefix("\(top): modle: unknown key (did you mean model?)"), error(top))
        let pools = write("pools.json", #"{"dataset": {"image_size": 66}}"#)
        XCTAssertTrue(error(pools).contains("image_size: 66 is not divisible by 2^2"), error(pools))
        XCTAssertEqual(error(dir.appendingPathComponent("none.json").path), "\(dir.appendingPathComponent("none.json").path): no such spec file")
    }

    /// The architecture keys (the README's model section): a bad value is one line naming
    /// the file, the key path and the allowed values; a combination the
    /// engine cannot run names both keys; at its default a key is left out of
    /// the resolved spec (every stored spec keeps its hash).
    func testArchitectureKeys() throws {
        let cases: [(String, String)] = [
            (#""activation": "tanh""#, #"model.activation: expected one of relu, leaky_relu, elu, silu, got "tanh""#),
            (#""pool": "min""#, #"model.pool: expected one of max, avg, got "min""#),
            (#""kernel": 7"#, "model.kernel: expected one of 3, 5, got 7"),
            (#""kernel": "5""#, #"model.kernel: expected one of 3, 5, got "5""#),
            (#""conv": "depthwise""#, #"model.conv: expected one of standard, separable, got "depthwise""#),
            (#""shortcut": "identity""#, #"model.shortcut: expected one of inner, projection, got "identity""#),
            (#""attention": "eca""#, #"model.attention: expected one of none, se, cbam, got "eca""#),
            (#""attention": "se", "attention_reduction": 0"#, "model.attention_reduction: expected an integer in 1...4096, got 0"),
            (#""hidden": -1"#, "model.hidden: expected an integer in 0...65536, got -1"),
        ]
        for (model, message) in cases {
            let path = write("bad.json", "{\"model\": {\(model)}}")
            XCTAssertEqual(error(path), "\(path): \(message)")
            XCTAssertEqual(error(path).split(separator: "\n").count, 1)
        }
        let both = write("both.json", #"{"model": {"skip": false, "shortcut": "projection"}}"#)
        XCTAssertEqual(error(both), "\(both): model.shortcut: projection adds a shortcut, but skip is false (set skip true, or shortcut inner)")
        let reduction = write("reduction.json", #"{"model": {"attention_reduction": 8}}"#)
        XCTAssertEqual(error(reduction), "\(reduction): model.attention_reduction: applies to attention se or cbam, but attention is none")
        let pools = write("pools.json", #"{"dataset": {"image_size": 30}, "model": {"widths": [8, 16, 32]}}"#)
        XCTAssertEqual(error(pools), "\(pools): dataset.image_size: 30 is not divisible by 2^2 = 4: widths has 3 blocks, with a 2x2 pool after each but the last")

        // Spelled at their defaults, the keys change nothing: same resolved JSON, same hash.
        let plain = try SpecLoader.load(write("plain.json", #"{"name": "x"}"#))
        let spelled = try SpecLoader.load(write("spelled.json", #"{"name": "x", "model": {"activation": "relu", "pool": "max", "kernel": 3, "conv": "standard", "shortcut": "inner", "attention": "none", "attention_reduction": 16}}"#))
        XCTAssertEqual(spelled.resolvedJSON, plain.resolvedJSON)
        XCTAssertFalse(plain.resolvedJSON.contains("attention"))
        let se = try SpecLoader.load(write("se.json", #"{"name": "x", "model": {"attention": "se", "attention_reduction": 8, "hidden": 0}}"#))
        XCTAssertTrue(se.resolvedJSON.contains(#""attention":"se","attention_reduction":8"#), se.resolvedJSON)
        XCTAssertEqual(se.model.config.attention, .se); XCTAssertEqual(se.model.config.attentionReduction, 8)
        XCTAssertEqual(se.model.config.hidden, 0)

        // Grad-CAM's layers: every convolution, the projection, each block's output.
        let proj = try SpecLoader.load(write("proj.json", #"{"model": {"shortcut": "projection", "widths": [8, 16], "convs_per_block": [2, 1]}, "explain": {"layer": "block2"}}"#))
        XCTAssertEqual(proj.model.convolutionNames, ["block1.conv1", "block1.conv2", "block1.shortcut", "block1", "block2.conv1", "block2.shortcut", "block2"])
        XCTAssertEqual(proj.explain.layer, "block2")
        let noLayer = write("nolayer.json", #"{"explain": {"layer": "block1.shortcut"}}"#)
        XCTAssertTrue(error(noLayer).hasPrefix("\(noLayer): explain.layer: no layer block1.shortcut in this model; layers: block1.conv1, block1.conv2, block1, block2.conv1"), error(noLayer))
    }

    func set(_ args: String...) -> [SpecOverride] { args.map { SpecOverride($0)! } }

    func error(_ path: String, _ overrides: [SpecOverride]) -> String {
        do { _ = try SpecLoader.load(path, overrides: overrides); return "no error" } catch { return "\(error)" }
    }

    func testSetOverridesLandInTheResolvedSpecAfterExtends() throws {
        _ = write("base.json", #"{"name": "base", "model": {"skip": true, "hidden": 32}, "train": {"max_epochs": 60}}"#)
        let path = write("child.json", #"{"name": "child", "extends": "base.json", "train": {"max_epochs": 20}}"#)
        let plain = try SpecLoader.load(path)
        let s = try SpecLoader.load(path, overrides: set("train.max_epochs=5", "model.skip=false", "model.widths=[16,32,64]",
                                                         "dataset.labels=hard", #"explain.layer="block1.conv1""#))
        XCTAssertEqual(s.train.maxEpochs, 5, "over the child's own value")
        XCTAssertEqual(s.model.skip, false, "over the parent's value")
        XCTAssertEqual(s.model.widths, [16, 32, 64])
        XCTAssertEqual(s.dataset.labels, .hard, "a bare word is a string")
        XCTAssertEqual(s.explain.layer, "block1.conv1", "a quoted string is JSON")
        XCTAssertEqual(s.model.hidden, 32, "the rest as merged")
        XCTAssertEqual(s.parent, "base")
        XCTAssertTrue(s.resolvedJSON.contains(#""max_epochs":5"#), s.resolvedJSON)
        // The registry keys experiments by the resolved spec's hash: an overridden run is its own version.
        let reg = try Registry(path: dir.appendingPathComponent("runs.db").path)
        let a = try reg.experiment(name: plain.name, parent: plain.parent, specJSON: plain.resolvedJSON, description: nil)
        let b = try reg.experiment(name: s.name, parent: s.parent, specJSON: s.resolvedJSON, description: nil)
        XCTAssertNotEqual(a, b)
        XCTAssertEqual(try SpecLoader.load(path, overrides: set("train.max_epochs=20")).resolvedJSON, plain.resolvedJSON,
                       "setting a key to its value changes nothing")
    }

    /// Every key is declared twice: by the Codable sections (Spec.swift) and
    /// by SpecSchema's table that checks files. The two must name the same
    /// keys, and every key added later must be one of them.
    func testSchemaAndCodableSectionsDeclareTheSameKeys() throws {
        var full = ExperimentSpec()
        full.description = "d"; full.parent = "p"; full.dataset.root = "r"; full.train.seeds = [1]; full.explain.layer = "l"
        func paths(_ v: JSONValue, _ prefix: String = "") -> Set<String> {
            guard let o = v.object else { return [] }
            return o.reduce(into: Set<String>()) { all, kv in
                let path = prefix.isEmpty ? kv.key : "\(prefix).\(kv.key)"
                all.insert(path)
                all.formUnion(paths(kv.value, path))
            }
        }
        func paths(_ schema: [String: SpecSchema.Kind], _ prefix: String = "") -> Set<String> {
            schema.reduce(into: Set<String>()) { all, kv in
                let path = prefix.isEmpty ? kv.key : "\(prefix).\(kv.key)"
                all.insert(path)
                if case .object(let sub) = kv.value { all.formUnion(paths(sub, path)) }
            }
        }
        let codable = paths(try JSONValue(encoding: full)), schema = paths(SpecSchema.root)
        // `extends` is read from files only; `parent` is derived from it and stored.
        XCTAssertEqual(codable.subtracting(["parent"]), schema.subtracting(["extends"]))
        for (section, key, _) in SpecLoader.addedLater { XCTAssertTrue(schema.contains("\(section).\(key)"), "\(section).\(key)") }
    }

    func testBadSetNamesTheSetNotTheFile() {
        let path = write("base.json", #"{"name": "base"}"#)
        XCTAssertEqual(error(path, set("model.skp=false")),
                       "--set model.skp: unknown key (did you mean model.skip?); valid here: activation, attention, attention_reduction, batch_norm, conv, convs_per_block, dropout, hidden, kernel, pool, shortcut, skip, widths")
        XCTAssertEqual(error(path, set("train.lr=fast")), "--set train.lr: expected a number in 1e-07...1.0, got \"fast\"")
        XCTAssertEqual(error(path, set("model.widths=[16,32")), "--set model.widths: expected an array of 1...8 integers in 1...4096, got \"[16,32\"")
        XCTAssertTrue(error(path, set("modle.skip=false")).hasPrefix("--set modle: unknown key (did you mean model?)"), error(path, set("modle.skip=false")))
        XCTAssertEqual(error(path, set("model.skip.on=true")), "--set model.skip: expected true or false, got an object")
        XCTAssertEqual(error(path, set("extends=other.json")), "--set extends: cannot be set; --set applies after extends is merged")
        XCTAssertEqual(error(path, set("model.skip=true", "train.seed=-1")), "--set train.seed: expected an integer in 0...2147483647, got -1")
        XCTAssertEqual(error(path, set("model.widths=[4,6,8,10]", "train.lr=0.01")),
                       "\(path) --set model.widths=[4,6,8,10] --set train.lr=0.01: model.convs_per_block: has 3 entries but widths has 4")
    }

    func testSetArgumentParsing() {
        for bad in ["foo", "=1", ".a=1", "a..b=1", "a.=1", "a b=1"] { XCTAssertNil(SpecOverride(bad), bad) }
        let o = SpecOverride("train.lr=1e-3")!
        XCTAssertEqual(o.keyPath, ["train", "lr"]); XCTAssertEqual(o.value, .number(0.001))
        XCTAssertEqual(SpecOverride("a=b=c")?.value, .string("b=c"), "the first = splits")
        XCTAssertEqual(SpecOverride("description=")?.value, .string(""))
        XCTAssertEqual(SpecOverride("description=null")?.value, .null)
        XCTAssertEqual(SpecOverride("model.skip=false")?.value, .bool(false))
        XCTAssertEqual(SpecOverride("model.widths=[16,32")?.value, .string("[16,32"), "not JSON: the bare text")
    }
}
