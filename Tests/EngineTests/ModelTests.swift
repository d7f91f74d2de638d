import Foundation
import XCTest
@testable import Engine
import LabRandom

/// Whole-model checks: finite differences through every configuration, an
/// independent PyTorch reference (Fixtures/, made by python/make_reference.py),
/// checkpoints, and learning.
final class ModelTests: XCTestCase {
    override func setUp() { BLAS.setThreads(1) }

    static let small = ModelConfig(widths: [3, 4, 5], convsPerBlock: [2, 1, 3], skip: true, batchNorm: true,
                                   hidden: 6, dropout: 0.3, classes: 6)

    func softTargets(N: Int, L: Int, seed: UInt64) -> [Float] {
        var t = randomArray(N * L, seed: seed).map { abs($0) + 0.05 }
        for n in 0..<N { let s = t[(n * L)..<((n + 1) * L)].reduce(0, +); for k in 0..<L { t[n * L + k] /= s } }
        return t
    }

    /// Loss of one forward in the given mode; dropout draws from a fresh copy
    /// of the same generator so every evaluation sees the same mask.
    func loss(_ model: Model, _ x: [Float], _ t: [Float], N: Int, training: Bool) -> Double {
        var rng = RNG(seed: 99)
        let saved = model.units.map { ($0.runningMean.array, $0.runningVar.array) }
        model.forward(x, N: N, training: training, rng: &rng)
        let l = Double(model.loss(targets: t, classWeights: nil, N: N))
        for (u, s) in zip(model.units, saved) {   // finite differences must not drift the running stats
            for i in 0..<u.OC { u.runningMean[i] = s.0[i]; u.runningVar[i] = s.1[i] }
        }
        return l
    }

    func checkModelGradients(skip: Bool, batchNorm: Bool, training: Bool) {
        var cfg = Self.small
        cfg.skip = skip; cfg.batchNorm = batchNorm
        if !training { cfg.dropout = 0 }
        let model = Model(config: cfg, imageSize: 8)
        var rng = RNG(seed: 7)
        model.initialize(rng: &rng)
        if batchNorm {  // non-trivial affine and running statistics
            for u in model.units {
                for i in 0..<u.OC {
                    u.gamma!.value[i] = 1 + 0.3 * rng.uniform(-1, 1); u.beta!.value[i] = 0.2 * rng.uniform(-1, 1)
                    u.runningMean[i] = 0.1 * rng.uniform(-1, 1); u.runningVar[i] = 1 + 0.5 * rng.uniform(-1, 1)
                }
            }
        }
        let N = 3
        var x = randomArray(N * 8 * 8 * 3, seed: 8)
        let t = softTargets(N: N, L: 6, seed: 9)
        model.computeInputGradient = true
        _ = loss(model, x, t, N: N, training: training)
        var r = RNG(seed: 99)
        model.forward(x, N: N, training: training, rng: &r)
        _ = model.loss(targets: t, classWeights: nil, N: N)
        // Twice: activation gradients are written, not zeroed and added to,
        // so a stale first backward must not leak into the second.
        model.backwardLoss(targets: t, classWeights: nil, N: N, training: training)
        model.backwardLoss(targets: t, classWeights: nil, N: N, training: training)
        let tag = "model(skip: \(skip), bn: \(batchNorm), training: \(training))"
        let dx = Array(UnsafeBufferPointer(start: model.dinput!.data, count: x.count))
        assertGradient("\(tag) input", x: &x, analytic: dx, samples: 40, eps: 5e-4, rtol: 3e-2, atol: 3e-4) {
            loss(model, $0, t, N: N, training: training)
        }
        for p in model.parameters {
            let g = p.grad.array
            var v = p.value.array
            assertGradient("\(tag) \(p.name)", x: &v, analytic: g, samples: 12, eps: 5e-4, rtol: 3e-2, atol: 3e-4) { v in
                let saved = p.value.array
                for i in 0..<v.count { p.value[i] = v[i] }
                defer { for i in 0..<v.count { p.value[i] = saved[i] } }
                return loss(model, x, t, N: N, training: training)
            }
        }
    }

    /// Eval folds batch norm into the convolution and leaves c stale. With
    /// 16 channels that runs through the cached, scaled Winograd kernel; the
    /// logits, a block's activation and a full backward after it (which
    /// recomputes c) must match the im2col model (the PyTorch fixtures check
    /// that one in eval).
    func testEvalFusedWinogradModelMatchesIm2colModel() {
        let cfg = ModelConfig(widths: [16, 16], convsPerBlock: [2, 2], skip: true, batchNorm: true, hidden: 8, dropout: 0)
        func run(winograd: Bool) -> (logits: [Float], a: [Float], grads: [[Float]]) {
            let model = Model(config: cfg, imageSize: 16, threads: 2)
            model.winograd = winograd
            var rng = RNG(seed: 3)
            model.initialize(rng: &rng)
            for u in model.units {
                for i in 0..<u.OC {
                    u.gamma!.value[i] = 1 + 0.3 * rng.uniform(-1, 1); u.beta!.value[i] = 0.2 * rng.uniform(-1, 1)
                    u.runningMean[i] = 0.1 * rng.uniform(-1, 1); u.runningVar[i] = 1 + 0.5 * rng.uniform(-1, 1)
                }
            }
            let N = 4, x = randomArray(N * 16 * 16 * 3, seed: 4), t = softTargets(N: N, L: 6, seed: 5)
            model.forward(x, N: N, training: false, rng: &rng)
            let logits = Array(UnsafeBufferPointer(start: model.logits.data, count: N * 6))
            _ = model.loss(targets: t, classWeights: nil, N: N)
            model.backwardLoss(targets: t, classWeights: nil, N: N, training: false)
            return (logits, Array(model.unit(named: "block1.conv2")!.a.array.prefix(N * 256 * 16)), model.parameters.map(\.grad.array))
        }
        let fused = run(winograd: true), plain = run(winograd: false)
        XCTAssertLessThan(maxAbsDiff(fused.logits, plain.logits), 1e-4)
        XCTAssertLessThan(maxAbsDiff(fused.a, plain.a), 1e-4)
        for (g, h) in zip(fused.grads, plain.grads) {
            XCTAssertLessThan(maxAbsDiff(g, h), 1e-3 * max(1, h.map(abs).max() ?? 0))
        }
    }

    func testModelGradientsAllConfigurations() {
        for skip in [true, false] { for bn in [true, false] {
            checkModelGradients(skip: skip, batchNorm: bn, training: true)
        } }
        checkModelGradients(skip: true, batchNorm: true, training: false)
    }

    // MARK: PyTorch reference

    struct Fixture {
        let tensors: [String: SafeTensor]
        let config: ModelConfig
        /// The batch size where the fixture stores only its distinct images (metadata `repeat`).
        let repeatTo: Int?
        func f(_ name: String) -> [Float] {
            guard let t = tensors[name] else { XCTFail("fixture lacks \(name)"); return [] }
            return t.floats
        }
        /// A per-image tensor for the whole batch: image n is stored image n mod k.
        func batch(_ name: String) -> [Float] {
            let stored = f(name)
            guard let n = repeatTo, let k = tensors[name]?.shape[0] else { return stored }
            let per = stored.count / k
            return (0..<n).flatMap { stored[($0 % k) * per..<($0 % k + 1) * per] }
        }
        var images: Int { repeatTo ?? tensors["input"]!.shape[0] }
        var stateDict: [String: SafeTensor] {
            tensors.filter { k, _ in !["input", "target", "train.", "eval.", "adamw."].contains { k.hasPrefix($0) } }
        }
    }

    func fixture(_ name: String) throws -> Fixture {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: "safetensors"))
        let (t, meta) = try Safetensors.decode(Array(try Data(contentsOf: url)))
        let cfg = try JSONDecoder().decode(ModelConfig.self, from: Data(try XCTUnwrap(meta["config"]).utf8))
        return Fixture(tensors: t, config: cfg, repeatTo: meta["repeat"].flatMap { Int($0) })
    }

    func assertClose(_ a: [Float], _ b: [Float], _ label: String, rtol: Float = 1e-3, file: StaticString = #filePath, line: UInt = #line) {
        let scale = max(1e-3, b.map(abs).max() ?? 0)
        let d = maxAbsDiff(a, b)
        XCTAssertLessThanOrEqual(d, rtol * scale, "\(label): max |diff| \(d), reference scale \(scale)", file: file, line: line)
    }

    /// Logits, loss, every parameter gradient and the input gradient in
    /// train and eval mode, the running statistics after a training forward,
    /// and the state after two AdamW steps, against PyTorch's, each within
    /// `rtol` of the reference's largest magnitude. Every fixture's state
    /// dict loads strictly: no tensor missing, none left over.
    func checkReference(_ name: String, threads: Int = 1, rtol: Float = 1e-4) throws {
        let fx = try fixture(name)
        let input = fx.batch("input"), target = fx.f("target")
        let N = fx.images, S = fx.tensors["input"]!.shape[1]
        XCTAssertEqual(target.count, N * 6)
        var rng = RNG(seed: 0)

        for mode in ["train", "eval"] {
            let training = mode == "train"
            let model = Model(config: fx.config, imageSize: S, threads: threads)
            try model.load(stateDict: fx.stateDict)
            model.computeInputGradient = true
            model.forward(input, N: N, training: training, rng: &rng)
            let l = model.loss(targets: target, classWeights: nil, N: N)
            assertClose(Array(UnsafeBufferPointer(start: model.logits.data, count: N * 6)), fx.f("\(mode).logits"), "\(name) \(mode) logits", rtol: rtol)
            XCTAssertEqual(l, fx.f("\(mode).loss")[0], accuracy: max(1e-4, rtol * abs(fx.f("\(mode).loss")[0])), "\(name) \(mode) loss")
            model.backwardLoss(targets: target, classWeights: nil, N: N, training: training)
            XCTAssertEqual(Set(model.parameters.map { "\(mode).grad.\($0.name)" }),
                           Set(fx.tensors.keys.filter { $0.hasPrefix("\(mode).grad.") && $0 != "\(mode).grad.input" }), "\(name): every gradient compared")
            for p in model.parameters {
                assertClose(p.torchGrad(), fx.f("\(mode).grad.\(p.name)"), "\(name) \(mode) grad \(p.name)", rtol: rtol)
            }
            assertClose(Array(UnsafeBufferPointer(start: model.dinput!.data, count: input.count)), fx.batch("\(mode).grad.input"),
                        "\(name) \(mode) grad input", rtol: rtol)
            if training {
                XCTAssertEqual(model.batchNorms.count * 2, fx.tensors.keys.filter { $0.hasPrefix("train.running.") }.count,
                               "\(name): every batch norm compared")
                for r in model.batchNorms {
                    assertClose(r.mean.array, fx.f("train.running.\(r.name).running_mean"), "\(name) \(r.name) running_mean", rtol: rtol)
                    assertClose(r.variance.array, fx.f("train.running.\(r.name).running_var"), "\(name) \(r.name) running_var", rtol: rtol)
                }
            }
        }

        // One AdamW step (torch.optim.AdamW(lr=0.01, weight_decay=0.1)) on
        // PyTorch's own gradients: the weights after it within rtol. (From
        // lab's gradients, an entry near 1e-8 whose rounding differs moves
        // by up to lr: Adam's first step is lr * g / (|g| + eps).)
        let stepped = Model(config: fx.config, imageSize: S, threads: threads)
        try stepped.load(stateDict: fx.stateDict)
        for p in stepped.parameters { p.setTorchGrad(fx.f("train.grad.\(p.name)")) }
        Adam(parameters: stepped.parameters, config: AdamConfig(lr: 0.01, weightDecay: 0.1)).update()
        for p in stepped.parameters {
            assertClose(p.torchValues(), fx.f("adamw.step1.\(p.name)"), "\(name) AdamW step on PyTorch's gradient: \(p.name)", rtol: rtol)
        }
        // Two steps end to end: both losses, and the state after them within
        // 1e-3 (the second step starts from weights no fixture keeps clear of
        // ReLU kinks and max-pool ties).
        let model = Model(config: fx.config, imageSize: S, threads: threads)
        try model.load(stateDict: fx.stateDict)
        let adam = Adam(parameters: model.parameters, config: AdamConfig(lr: 0.01, weightDecay: 0.1))
        for step in 1...2 {
            model.forward(input, N: N, training: true, rng: &rng)
            let l = model.loss(targets: target, classWeights: nil, N: N)
            XCTAssertEqual(l, fx.f("adamw.loss\(step)")[0], accuracy: max(1e-4, rtol * abs(fx.f("adamw.loss\(step)")[0])), "\(name) adamw loss \(step)")
            model.backwardLoss(targets: target, classWeights: nil, N: N, training: true)
            adam.update()
        }
        // The wide fixture keeps only the losses of the second step (its state would take it past 2 MB).
        for (k, v) in model.stateDict() where v.dtype == .f32 && fx.tensors["adamw.fc2.weight"] != nil {
            assertClose(v.floats, fx.f("adamw.\(k)"), "\(name) after two AdamW steps: \(k)", rtol: max(rtol, 1e-3))
        }
    }

    func testMatchesPyTorchReferenceWithBatchNormAndSkip() throws { try checkReference("reference_bn_skip") }
    func testMatchesPyTorchReferenceWithoutBatchNormOrSkip() throws { try checkReference("reference_nobn_noskip") }
    /// Widths [16, 32, 64], 64 images of 24x24, two workers: every fast path (make_reference.py).
    func testMatchesPyTorchReferenceOnEveryFastPath() throws {
        XCTAssertEqual(ConvWorkspace.winogradTile(N: 64, H: 24, W: 24, C: 16, OC: 16), .f4x4)
        XCTAssertEqual(ConvWorkspace.winogradTile(N: 64, H: 12, W: 12, C: 32, OC: 32), .f4x4)
        XCTAssertEqual(ConvWorkspace.winogradTile(N: 64, H: 6, W: 6, C: 64, OC: 64), .f2x2)
        XCTAssertEqual(ConvWorkspace.winogradWeightGradientTile(N: 64, H: 6, W: 6, C: 64, OC: 64), .f2x2)
        XCTAssertNil(ConvWorkspace.winogradWeightGradientTile(N: 64, H: 6, W: 6, C: 32, OC: 64), "block3.conv1's weight gradient: im2col")
        XCTAssertEqual(rowWorkers(64 * 24 * 24, rowCost: 16, workers: 2), 2, "block1's batch norm on both workers")
        try checkReference("reference_wide", threads: 2)
    }
    func testMatchesPyTorchReferenceSE() throws { try checkReference("reference_se") }
    func testMatchesPyTorchReferenceCBAM() throws { try checkReference("reference_cbam") }
    func testMatchesPyTorchReferenceSeparable() throws { try checkReference("reference_separable") }
    func testMatchesPyTorchReferenceProjection() throws { try checkReference("reference_projection") }
    func testMatchesPyTorchReferenceKernel5() throws { try checkReference("reference_kernel5") }
    func testMatchesPyTorchReferenceAvgPool() throws { try checkReference("reference_avg_pool") }
    func testMatchesPyTorchReferenceLeakyReLU() throws { try checkReference("reference_leaky_relu") }
    func testMatchesPyTorchReferenceELU() throws { try checkReference("reference_elu") }
    func testMatchesPyTorchReferenceSiLU() throws { try checkReference("reference_silu") }
    func testMatchesPyTorchReferenceNoHidden() throws { try checkReference("reference_no_hidden") }
    func testMatchesPyTorchReferenceSESiLUProjection() throws { try checkReference("reference_se_silu_projection") }
    func testMatchesPyTorchReferenceCBAMSeparableKernel5() throws { try checkReference("reference_cbam_separable_kernel5") }
    func testMatchesPyTorchReferenceNoBatchNormCBAMProjection() throws { try checkReference("reference_nobn_cbam_projection") }

    // MARK: checkpoints

    func testCheckpointRoundTripGivesIdenticalOutputs() throws {
        let model = Model(config: Self.small, imageSize: 8)
        var rng = RNG(seed: 1)
        model.initialize(rng: &rng)
        let x = randomArray(2 * 8 * 8 * 3, seed: 2)
        model.forward(x, N: 2, training: true, rng: &rng)   // moves running stats off their init
        let bytes = model.checkpoint(metadata: ["lab.spec": "{}"])
        let (copy, meta) = try Model.load(checkpoint: bytes)
        XCTAssertEqual(meta["lab.spec"], "{}")
        XCTAssertEqual(copy.config, model.config)
        XCTAssertEqual(copy.units[0].batchesTracked, 1)
        let a = Array(UnsafeBufferPointer(start: model.forward(x, N: 2, training: false, rng: &rng), count: 12))
        let b = Array(UnsafeBufferPointer(start: copy.forward(x, N: 2, training: false, rng: &rng), count: 12))
        XCTAssertEqual(a, b)
        XCTAssertEqual(copy.checkpoint(metadata: ["lab.spec": "{}"]), bytes, "same state, same bytes")
        // PyTorch layout on disk: [OC, C, 3, 3].
        let (tensors, _) = try Safetensors.decode(bytes)
        XCTAssertEqual(tensors["block1.conv1.weight"]?.shape, [3, 3, 3, 3])
        XCTAssertEqual(tensors["block2.conv1.weight"]?.shape, [4, 3, 3, 3])
        XCTAssertEqual(tensors["fc1.weight"]?.shape, [6, 5])
    }

    func testCheckpointErrorsNameTheProblem() throws {
        let model = Model(config: Self.small, imageSize: 8)
        var d = model.stateDict()
        d["fc2.bias"] = nil
        XCTAssertThrowsError(try Model(config: Self.small, imageSize: 8).load(stateDict: d)) {
            XCTAssertEqual("\($0)", "checkpoint has no tensor fc2.bias")
        }
        d = model.stateDict()
        d["fc2.bias"] = SafeTensor(shape: [7], floats: Array(repeating: 0, count: 7))
        XCTAssertThrowsError(try Model(config: Self.small, imageSize: 8).load(stateDict: d)) {
            XCTAssertEqual("\($0)", "checkpoint does not fit the model: fc2.bias is F32[7], model wants F32[6]")
        }
        let bytes = model.checkpoint()
        XCTAssertThrowsError(try Model.load(checkpoint: Array(bytes.prefix(bytes.count - 10))))
        XCTAssertThrowsError(try Model.load(checkpoint: [1, 2, 3]))
    }

    func testOptimizerStateRoundTrip() throws {
        let model = Model(config: Self.small, imageSize: 8)
        var rng = RNG(seed: 3)
        model.initialize(rng: &rng)
        let adam = Adam(parameters: model.parameters, config: AdamConfig())
        for p in model.parameters { for i in 0..<p.grad.count { p.grad[i] = rng.normal() } }
        adam.update(); adam.update()
        let other = Adam(parameters: model.parameters, config: AdamConfig())
        let meta = try other.load(state: adam.state(metadata: ["rng": "x"]))
        XCTAssertEqual(meta["rng"], "x")
        XCTAssertEqual(other.step, 2)
        XCTAssertEqual(other.m.map(\.array), adam.m.map(\.array))
        XCTAssertEqual(other.v.map(\.array), adam.v.map(\.array))
    }

    // MARK: learning

    /// Two classes told apart by which half of the image is bright: a tiny
    /// model must drive the training loss near zero (backward + Adam learn).
    func testLearnsToySeparableProblem() {
        let cfg = ModelConfig(widths: [4, 8], convsPerBlock: [1, 2], skip: true, batchNorm: true,
                              hidden: 8, dropout: 0, classes: 2)
        let model = Model(config: cfg, imageSize: 8)
        var rng = RNG(seed: 11)
        model.initialize(rng: &rng)
        let adam = Adam(parameters: model.parameters, config: AdamConfig(lr: 3e-3))
        let N = 16
        var x = [Float](repeating: 0, count: N * 64 * 3), t = [Float](repeating: 0, count: N * 2)
        for n in 0..<N {
            let cls = n % 2
            t[n * 2 + cls] = 1
            for y in 0..<8 { for xx in 0..<8 { for c in 0..<3 {
                let bright = (cls == 0) == (xx < 4)
                x[((n * 8 + y) * 8 + xx) * 3 + c] = (bright ? 0.8 : -0.8) + 0.3 * rng.normal()
            } } }
        }
        var first: Float = 0, last: Float = 0
        for step in 0..<300 {
            model.forward(x, N: N, training: true, rng: &rng)
            let l = model.loss(targets: t, classWeights: nil, N: N)
            if step == 0 { first = l }
            last = l
            model.backwardLoss(targets: t, classWeights: nil, N: N, training: true)
            adam.update()
        }
        XCTAssertGreaterThan(first, 0.5)
        XCTAssertLessThan(last, 0.02, "loss \(first) -> \(last) after 300 steps")
    }

    func testSameSeedSameThreadsGivesIdenticalTraining() {
        func train() -> [Float] {
            let model = Model(config: Self.small, imageSize: 8)
            var rng = RNG(seed: 5)
            model.initialize(rng: &rng)
            let adam = Adam(parameters: model.parameters, config: AdamConfig())
            let x = randomArray(4 * 8 * 8 * 3, seed: 6), t = softTargets(N: 4, L: 6, seed: 7)
            for _ in 0..<5 {
                model.forward(x, N: 4, training: true, rng: &rng)
                _ = model.loss(targets: t, classWeights: nil, N: 4)
                model.backwardLoss(targets: t, classWeights: nil, N: 4, training: true)
                adam.update()
            }
            return model.parameters.flatMap { $0.value.array }
        }
        XCTAssertEqual(train(), train())
    }
}
