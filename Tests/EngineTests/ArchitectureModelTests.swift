import Foundation
import XCTest
@testable import Engine
import LabRandom

/// Whole models of the architecture vocabulary: finite differences through
/// every variant, checkpoints (names, shapes, a checkpoint written before
/// the vocabulary existed), initialization, FLOPs and configuration errors.
/// The PyTorch fixtures are in ModelTests.
final class ArchitectureModelTests: XCTestCase {
    override func setUp() { BLAS.setThreads(1) }

    static let small = ModelConfig(widths: [3, 4, 5], convsPerBlock: [2, 1, 3], skip: true, batchNorm: true,
                                   hidden: 6, dropout: 0.3, classes: 6)

    static func variant(_ change: (inout ModelConfig) -> Void) -> ModelConfig {
        var c = small
        change(&c)
        return c
    }

    /// Each key alone, and combinations where they meet (attention with a
    /// projection and a non-ReLU activation, one-convolution blocks, no
    /// batch norm: biases everywhere).
    static let variants: [(String, ModelConfig)] = [
        ("se", variant { $0.attention = .se; $0.attentionReduction = 2 }),
        ("cbam", variant { $0.attention = .cbam; $0.attentionReduction = 2 }),
        ("separable", variant { $0.conv = .separable }),
        ("projection", variant { $0.shortcut = .projection }),
        ("kernel 5", variant { $0.kernel = 5 }),
        ("avg pool", variant { $0.pool = .avg }),
        ("leaky_relu", variant { $0.activation = .leakyReLU }),
        ("elu", variant { $0.activation = .elu }),
        ("silu", variant { $0.activation = .silu }),
        ("hidden 0", variant { $0.hidden = 0 }),
        ("cbam silu projection separable 5x5", variant {
            $0.attention = .cbam; $0.activation = .silu; $0.shortcut = .projection; $0.conv = .separable; $0.kernel = 5
        }),
        ("se elu projection avg, no batch norm", variant {
            $0.attention = .se; $0.activation = .elu; $0.shortcut = .projection; $0.pool = .avg; $0.batchNorm = false
        }),
        ("cbam leaky_relu separable hidden 0, no batch norm", variant {
            $0.attention = .cbam; $0.activation = .leakyReLU; $0.conv = .separable; $0.hidden = 0; $0.batchNorm = false
        }),
    ]

    func softTargets(N: Int, L: Int, seed: UInt64) -> [Float] {
        var t = randomArray(N * L, seed: seed).map { abs($0) + 0.05 }
        for n in 0..<N { let s = t[(n * L)..<((n + 1) * L)].reduce(0, +); for k in 0..<L { t[n * L + k] /= s } }
        return t
    }

    /// Loss of one forward; every running statistic restored after it, so
    /// finite differences see one function.
    func loss(_ model: Model, _ x: [Float], _ t: [Float], N: Int, training: Bool) -> Double {
        var rng = RNG(seed: 99)
        let saved = model.runningStatistics.map(\.tensor.array)
        model.forward(x, N: N, training: training, rng: &rng)
        let l = Double(model.loss(targets: t, classWeights: nil, N: N))
        for (r, s) in zip(model.runningStatistics.map(\.tensor), saved) { for i in 0..<s.count { r[i] = s[i] } }
        return l
    }

    /// A model with non-trivial batch norms (affine and running statistics),
    /// everything else initialized as training starts.
    func model(_ cfg: ModelConfig, imageSize: Int = 8, seed: UInt64 = 7) -> Model {
        let model = Model(config: cfg, imageSize: imageSize)
        var rng = RNG(seed: seed)
        model.initialize(rng: &rng)
        for p in model.parameters where p.name.contains(".bn") {
            for i in 0..<p.value.count { p.value[i] = p.name.hasSuffix("weight") ? 1 + 0.3 * rng.uniform(-1, 1) : 0.2 * rng.uniform(-1, 1) }
        }
        for r in model.batchNorms {
            for i in 0..<r.mean.count { r.mean[i] = 0.1 * rng.uniform(-1, 1); r.variance[i] = 1 + 0.5 * rng.uniform(-1, 1) }
        }
        return model
    }

    /// Model seeds whose forward keeps clear of a ReLU kink (SE's one-unit
    /// MLP at 3 channels, or any unit): finite differences across one
    /// measure the kink, not the gradient.
    static let seeds = ["se": UInt64(11), "separable eval": 11]

    func checkGradients(_ name: String, _ cfg: ModelConfig, training: Bool) {
        var cfg = cfg
        if !training { cfg.dropout = 0 }
        let model = model(cfg, seed: Self.seeds[training ? name : "\(name) eval"] ?? 7)
        let N = 3
        var x = randomArray(N * 8 * 8 * 3, seed: 8)
        let t = softTargets(N: N, L: 6, seed: 9)
        model.computeInputGradient = true
        var r = RNG(seed: 99)
        model.forward(x, N: N, training: training, rng: &r)
        _ = model.loss(targets: t, classWeights: nil, N: N)
        // Twice: activation gradients are written, not zeroed and added to.
        model.backwardLoss(targets: t, classWeights: nil, N: N, training: training)
        model.backwardLoss(targets: t, classWeights: nil, N: N, training: training)
        let tag = "\(name) (training: \(training))"
        let dx = Array(UnsafeBufferPointer(start: model.dinput!.data, count: x.count))
        assertGradient("\(tag) input", x: &x, analytic: dx, samples: 30, eps: 5e-4, rtol: 3e-2, atol: 3e-4) {
            loss(model, $0, t, N: N, training: training)
        }
        for p in model.parameters {
            var v = p.value.array
            assertGradient("\(tag) \(p.name)", x: &v, analytic: p.grad.array, samples: 8, eps: 5e-4, rtol: 3e-2, atol: 3e-4) { v in
                let saved = p.value.array
                for i in 0..<v.count { p.value[i] = v[i] }
                defer { for i in 0..<v.count { p.value[i] = saved[i] } }
                return loss(model, x, t, N: N, training: training)
            }
        }
    }

    func testModelGradientsOfEveryVariant() {
        for (name, cfg) in Self.variants { checkGradients(name, cfg, training: true) }
    }

    /// Eval: batch norm folded into the convolution where it can be (ReLU
    /// and identity units), running statistics everywhere else.
    func testModelGradientsOfEveryVariantInEval() {
        for (name, cfg) in Self.variants where ["se", "cbam", "projection", "separable", "kernel 5", "silu",
                                                 "cbam silu projection separable 5x5"].contains(name) {
            checkGradients(name, cfg, training: false)
        }
    }

    // MARK: checkpoints

    /// A checkpoint lab wrote before these keys existed (cb66258, from
    /// Tests/EngineTests/Fixtures/checkpoint_before_issue24.safetensors):
    /// its `lab.model` has none of them, it loads as today's baseline, and its
    /// eval logits are bit for bit the ones it recorded then.
    func testCheckpointWrittenBeforeTheVocabularyLoadsAndPredictsTheSame() throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures/checkpoint_before_issue24", withExtension: "safetensors"))
        let bytes = [UInt8](try Data(contentsOf: url))
        let (model, meta) = try Model.load(checkpoint: bytes, threads: 2)
        XCTAssertFalse(try XCTUnwrap(meta["lab.model"]).contains("activation"), "written before the keys existed")
        XCTAssertEqual(model.config, ModelConfig(widths: [8, 16, 16], convsPerBlock: [2, 1, 2], skip: true, batchNorm: true,
                                                 hidden: 8, dropout: 0.25, classes: 6))
        let recorded = try XCTUnwrap(meta["lab.test.eval_logits"]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            .split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces))! }
        var rng = RNG(seed: 0)
        let logits = model.forward(randomArray(6 * 8 * 8 * 3, seed: 43), N: 6, training: false, rng: &rng)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: logits, count: 36)), recorded)
        // Written again, its `lab.model` names every key, and it reads back the same.
        let again = model.checkpoint()
        let json = try XCTUnwrap(try Safetensors.decode(again).metadata["lab.model"])
        for key in ["activation", "pool", "kernel", "conv", "shortcut", "attention", "attention_reduction"] {
            XCTAssertTrue(json.contains("\"\(key)\""), "\(key) in \(json)")
        }
        XCTAssertEqual(try Model.load(checkpoint: again).model.stateDict().keys.sorted(), model.stateDict().keys.sorted())
    }

    /// Every variant's state_dict names and PyTorch shapes (python/lab_model.py
    /// builds the same modules; load_checkpoint.py loads them strictly), and
    /// a round trip that gives the same outputs and the same bytes.
    func testCheckpointNamesAndRoundTripOfEveryVariant() throws {
        for (name, cfg) in Self.variants {
            let m = model(cfg)
            var rng = RNG(seed: 1)
            let x = randomArray(2 * 8 * 8 * 3, seed: 2)
            m.forward(x, N: 2, training: true, rng: &rng)   // running statistics off their start
            let bytes = m.checkpoint()
            let (copy, _) = try Model.load(checkpoint: bytes)
            XCTAssertEqual(copy.config, cfg, name)
            let a = Array(UnsafeBufferPointer(start: m.forward(x, N: 2, training: false, rng: &rng), count: 12))
            let b = Array(UnsafeBufferPointer(start: copy.forward(x, N: 2, training: false, rng: &rng), count: 12))
            XCTAssertEqual(a, b, name)
            XCTAssertEqual(copy.checkpoint(), bytes, "\(name): same state, same bytes")
            let sd = m.stateDict()
            XCTAssertEqual(sd.count, m.parameters.count + 3 * m.batchNorms.count, name)
            XCTAssertEqual(m.batchNorms.isEmpty, !cfg.batchNorm, name)
        }
        let (_, all) = Self.variants.first { $0.0 == "cbam silu projection separable 5x5" }!
        let sd = model(all).stateDict()
        XCTAssertEqual(sd["block1.conv1.depthwise.weight"]?.shape, [3, 1, 5, 5])
        XCTAssertEqual(sd["block1.conv1.pointwise.weight"]?.shape, [3, 3, 1, 1])
        XCTAssertEqual(sd["block2.conv1.pointwise.weight"]?.shape, [4, 3, 1, 1])
        XCTAssertNil(sd["block1.conv1.weight"]); XCTAssertNil(sd["block1.conv1.pointwise.bias"])
        XCTAssertEqual(sd["block1.shortcut.conv.weight"]?.shape, [3, 3, 1, 1])
        XCTAssertEqual(sd["block3.shortcut.bn.running_var"]?.shape, [5])
        XCTAssertEqual(sd["block3.cbam.fc1.weight"]?.shape, [1, 5], "max(1, 5 / 16) hidden units")
        XCTAssertEqual(sd["block3.cbam.fc2.bias"]?.shape, [5])
        XCTAssertEqual(sd["block2.cbam.spatial.conv.weight"]?.shape, [1, 2, 7, 7])
        XCTAssertEqual(sd["block2.cbam.spatial.bn.num_batches_tracked"]?.dtype, .i64)
        XCTAssertNil(sd["block2.cbam.spatial.conv.bias"])
        let (_, nobn) = Self.variants.first { $0.0 == "se elu projection avg, no batch norm" }!
        let sd2 = model(nobn).stateDict()
        XCTAssertEqual(sd2["block1.shortcut.conv.bias"]?.shape, [3])
        XCTAssertEqual(sd2["block3.se.fc1.weight"]?.shape, [1, 5])
        XCTAssertNil(sd2["block1.shortcut.bn.weight"])
        let (_, noHidden) = Self.variants.first { $0.0 == "cbam leaky_relu separable hidden 0, no batch norm" }!
        let sd3 = model(noHidden).stateDict()
        XCTAssertNil(sd3["fc1.weight"]); XCTAssertEqual(sd3["fc2.weight"]?.shape, [6, 5])
        XCTAssertEqual(sd3["block1.cbam.spatial.conv.bias"]?.shape, [1])
        XCTAssertEqual(sd3["block1.conv1.pointwise.bias"]?.shape, [3])
    }

    // MARK: initialization, statistics, FLOPs, errors

    /// He-normal for every convolution by its fan-in (k*k*C; a depthwise
    /// one's k*k, a pointwise one's C), PyTorch's uniform for dense layers,
    /// batch norm at identity; and every running statistic in one list.
    func testInitialization() {
        let cfg = ModelConfig(widths: [64, 96], convsPerBlock: [2, 1], hidden: 0, kernel: 5, conv: .separable,
                              shortcut: .projection, attention: .cbam, attentionReduction: 4)
        let m = Model(config: cfg, imageSize: 8)
        var rng = RNG(seed: 4)
        m.initialize(rng: &rng)
        func std(_ p: Parameter) -> Float {
            let v = p.value.array, mu = v.reduce(0, +) / Float(v.count)
            return (v.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / Float(v.count)).squareRoot()
        }
        let dw = m.unit(named: "block1.conv2")!.depthwise!, pw = m.unit(named: "block1.conv2")!.weight
        XCTAssertEqual(dw.fanIn, 25); XCTAssertEqual(pw.fanIn, 64)
        XCTAssertEqual(std(dw), (2 / Float(25)).squareRoot(), accuracy: 0.02)
        XCTAssertEqual(std(pw), (2 / Float(64)).squareRoot(), accuracy: 0.01)
        let sc = m.blocks[1].shortcut!.weight
        XCTAssertEqual(std(sc), (2 / Float(64)).squareRoot(), accuracy: 0.01)
        let cb = m.blocks[1].cbam!
        XCTAssertEqual(cb.R, 24)
        XCTAssertLessThanOrEqual(cb.fc1w.value.array.map(abs).max()!, 1 / Float(96).squareRoot())
        XCTAssertLessThanOrEqual(cb.fc2w.value.array.map(abs).max()!, 1 / Float(24).squareRoot())
        XCTAssertGreaterThan(cb.fc1w.value.array.map(abs).max()!, 0.9 / Float(96).squareRoot())
        XCTAssertEqual(cb.spatialWeight.fanIn, 98)
        XCTAssertEqual(cb.spatialBN!.gamma.value.array, [1]); XCTAssertEqual(cb.spatialBN!.running.variance.array, [1])
        XCTAssertEqual(m.runningStatistics.count, 2 * (3 + 2 + 2), "3 units', and per block a shortcut's and CBAM's spatial one")
        XCTAssertTrue(m.runningStatistics.allSatisfy { $0.tensor.count > 0 })
        XCTAssertNil(m.fc1w)
        // The baseline draws nothing new: the same numbers as before the vocabulary (quickstart rows unchanged).
        let base = Model(config: ModelConfig(widths: [4, 8], convsPerBlock: [2, 1]), imageSize: 8)
        var r1 = RNG(seed: 5), r2 = RNG(seed: 5)
        base.initialize(rng: &r1)
        XCTAssertEqual(base.parameters.map(\.name), ["block1.conv1.weight", "block1.bn1.weight", "block1.bn1.bias", "block1.conv2.weight",
                                                      "block1.bn2.weight", "block1.bn2.bias", "block2.conv1.weight", "block2.bn1.weight",
                                                      "block2.bn1.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"])
        let first = (0..<(27 * 4)).map { _ in (2 / Float(27)).squareRoot() * r2.normal() }
        XCTAssertEqual(base.parameters[0].value.array, first)
    }

    func testForwardFLOPsCountEveryLayer() {
        let s = 8
        let base = ModelConfig(widths: [4, 8], convsPerBlock: [2, 1], hidden: 5, classes: 6)
        // 8x8: 9*3*4 + 9*4*4 per pixel; 4x4: 9*4*8; head 8*5 + 5*6.
        let baseMACs = 64.0 * (108 + 144) + 16.0 * 288 + 40 + 30
        XCTAssertEqual(base.forwardFLOPs(imageSize: s), 2 * baseMACs)
        var c = base; c.kernel = 5
        XCTAssertEqual(c.forwardFLOPs(imageSize: s), 2 * (64.0 * (300 + 400) + 16.0 * 800 + 70))
        c = base; c.conv = .separable
        XCTAssertEqual(c.forwardFLOPs(imageSize: s), 2 * (64.0 * ((27 + 12) + (36 + 16)) + 16.0 * (36 + 32) + 70))
        c = base; c.shortcut = .projection
        XCTAssertEqual(c.forwardFLOPs(imageSize: s), 2 * (baseMACs + 64.0 * 12 + 16.0 * 32))
        c = base; c.attention = .se; c.attentionReduction = 2
        XCTAssertEqual(c.forwardFLOPs(imageSize: s), 2 * (baseMACs + 2.0 * 4 * 2 + 2.0 * 8 * 4))
        c = base; c.attention = .cbam
        XCTAssertEqual(c.forwardFLOPs(imageSize: s), 2 * (baseMACs + 4.0 * 4 * 1 + 64.0 * 98 + 4.0 * 8 * 1 + 16.0 * 98))
        c = base; c.hidden = 0
        XCTAssertEqual(c.forwardFLOPs(imageSize: s), 2 * (baseMACs - 70 + 48))
    }

    func testProblemsNameTheKeys() {
        var c = ModelConfig(); c.kernel = 4
        XCTAssertEqual(c.problems(imageSize: 64), ["kernel: must be one of 3, 5, got 4"])
        c = ModelConfig(); c.shortcut = .projection; c.skip = false
        XCTAssertEqual(c.problems(imageSize: 64).count, 1)
        XCTAssertTrue(c.problems(imageSize: 64)[0].hasPrefix("shortcut:") && c.problems(imageSize: 64)[0].contains("skip"))
        c = ModelConfig(); c.attentionReduction = 8
        XCTAssertTrue(c.problems(imageSize: 64)[0].hasPrefix("attention_reduction:") && c.problems(imageSize: 64)[0].contains("attention is none"))
        c = ModelConfig(); c.hidden = -1
        XCTAssertEqual(c.problems(imageSize: 64), ["hidden: must be >= 0 (0: no fc1)"])
        c = ModelConfig(); c.hidden = 0
        XCTAssertEqual(c.problems(imageSize: 64), [])
        XCTAssertEqual(ModelConfig().problems(imageSize: 66),
                       ["image_size: 66 is not divisible by 2^2 = 4: widths has 3 blocks, with a 2x2 pool after each but the last"])
        // Old JSON: every later key at its default.
        let old = try! JSONDecoder().decode(ModelConfig.self, from: Data(#"{"widths":[4],"convs_per_block":[1],"skip":false,"batch_norm":true,"hidden":3,"dropout":0,"classes":2}"#.utf8))
        XCTAssertEqual(old, ModelConfig(widths: [4], convsPerBlock: [1], skip: false, batchNorm: true, hidden: 3, dropout: 0, classes: 2))
        XCTAssertEqual(old.activation, .relu); XCTAssertEqual(old.attentionReduction, 16); XCTAssertEqual(old.kernel, 3)
    }

    // MARK: explainable layers

    /// Grad-CAM's layers: every convolution, the projection, each block's
    /// output. Stopping the backward at one gives the gradient a full
    /// backward leaves there; a block's output with attention is its own
    /// tensor (after attention, the shortcut and the activation).
    func testEveryExplainableLayerStopsWithItsFullGradient() throws {
        for (name, cfg) in Self.variants {
            var cfg = cfg; cfg.dropout = 0
            let m = model(cfg)
            XCTAssertEqual(cfg.explainableLayers.filter { m.explainableLayer(named: $0) == nil }, [], name)
            let x = randomArray(2 * 8 * 8 * 3, seed: 10)
            var seed = [Float](repeating: 0, count: 12); seed[3] = 1; seed[6 + 5] = 1
            var rng = RNG(seed: 0)
            m.forward(x, N: 2, training: false, rng: &rng)
            m.backward(dlogits: seed, N: 2, training: false)
            let full = cfg.explainableLayers.map { m.explainableLayer(named: $0)!.gradient.array }
            for (layer, expected) in zip(cfg.explainableLayers, full) {
                m.backward(dlogits: seed, N: 2, training: false, stopAt: layer)
                let g = m.explainableLayer(named: layer)!.gradient.array
                XCTAssertEqual(g, expected, "\(name): \(layer)")
                XCTAssertTrue(g.contains { $0 != 0 }, "\(name): \(layer) has a gradient")
            }
        }
        XCTAssertEqual(ModelConfig(widths: [4, 8], convsPerBlock: [2, 1], shortcut: .projection).explainableLayers,
                       ["block1.conv1", "block1.conv2", "block1.shortcut", "block1", "block2.conv1", "block2.shortcut", "block2"])
    }
}
