import Foundation
import LabRandom

/// Wall time per layer, forward and backward, summed while enabled.
public final class LayerProfile {
    public private(set) var forward: [String: Double] = [:]
    public private(set) var backward: [String: Double] = [:]
    public private(set) var order: [String] = []

    public init() {}

    @inline(__always)
    func time(_ name: String, backward isBackward: Bool, _ body: () -> Void) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        if forward[name] == nil && backward[name] == nil { order.append(name) }
        if isBackward { backward[name, default: 0] += dt } else { forward[name, default: 0] += dt }
    }

    public func reset() { forward = [:]; backward = [:]; order = [] }
}

/// The residual CNN of the README's model section, with every model key
/// (ModelConfig), NHWC, with every activation it needs for backward
/// preallocated for a batch capacity: a training step allocates nothing
/// but a few per-channel scratch buffers.
public final class Model {
    public let config: ModelConfig
    public let imageSize: Int
    public let blocks: [Block]
    public let fc1w: Parameter?, fc1b: Parameter?  // [hidden, C_last], [hidden]; nil when hidden is 0
    public let fc2w: Parameter, fc2b: Parameter    // [classes, hidden or C_last], [classes]
    /// Every trainable tensor, in state_dict order.
    public let parameters: [Parameter]
    /// Every batch norm's running statistics (none without batch norm).
    public let batchNorms: [RunningStatistics]
    public var profile: LayerProfile?
    /// Convolution workers (threads); OpenBLAS itself runs single-threaded.
    public let threads: Int
    let workspace: ConvWorkspace
    /// Winograd F(4x4,3x3) or F(2x2,3x3) for the convolutions where it applies (on by default;
    /// off gives the plain im2col path, for comparisons).
    public var winograd: Bool {
        get { workspace.winograd }
        set { workspace.winograd = newValue }
    }

    public private(set) var capacity = 0
    var input = Tensor([0])      // [N, S, S, 3] copy of the last forward's input, read by backward
    var pooled: [Tensor] = []    // per block but the last: [N, H/2, W/2, C]
    var dpooled: [Tensor] = []
    var gap = Tensor([0]), dgap = Tensor([0])     // [N, C_last]
    var z1 = Tensor([0]), a1 = Tensor([0])         // [N, hidden]
    var da1 = Tensor([0]), dz1 = Tensor([0])       // [N, hidden]
    var drop = Tensor([0]), mask = Tensor([0]), ddrop = Tensor([0]) // [N, hidden or C_last]
    public private(set) var logits = Tensor([0])   // [N, classes]
    public private(set) var probs = Tensor([0])    // [N, classes]
    var dlogits = Tensor([0])                      // [N, classes]
    /// Gradient with respect to the input [N, S, S, 3], filled by backward
    /// only when asked for (gradient checks, saliency): the first conv skips it otherwise.
    public var computeInputGradient = false
    public private(set) var dinput: Tensor?

    public init(config: ModelConfig, imageSize: Int = 64, threads: Int = 1) {
        let problems = config.problems(imageSize: imageSize)
        precondition(problems.isEmpty, problems.joined(separator: "; "))
        self.config = config
        self.threads = max(1, threads)
        workspace = ConvWorkspace(workers: self.threads)
        BLAS.setThreads(1)
        self.imageSize = imageSize
        var blocks = [Block]()
        var s = imageSize, c = 3
        for b in config.widths.indices {
            blocks.append(Block(index: b, config: config, C: c, H: s))
            c = config.widths[b]
            if b < config.widths.count - 1 { s /= 2 }
        }
        self.blocks = blocks
        let h = config.hidden
        fc1w = h > 0 ? Parameter("fc1.weight", [h, c], fanIn: c) : nil
        fc1b = h > 0 ? Parameter("fc1.bias", [h]) : nil
        fc2w = Parameter("fc2.weight", [config.classes, h > 0 ? h : c], fanIn: h > 0 ? h : c)
        fc2b = Parameter("fc2.bias", [config.classes])
        parameters = blocks.flatMap(\.parameters) + [fc1w, fc1b, fc2w, fc2b].compactMap { $0 }
        batchNorms = config.batchNorm ? blocks.flatMap(\.runningStatistics) : []
    }

    public var units: [ConvUnit] { blocks.flatMap(\.units) }
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }
    /// Every running-statistics tensor (mean, variance of each batch norm) with its state_dict name, in state_dict order.
    public var runningStatistics: [(name: String, tensor: Tensor)] {
        batchNorms.flatMap { [("\($0.name).running_mean", $0.mean), ("\($0.name).running_var", $0.variance)] }
    }

    public func unit(named name: String) -> ConvUnit? { units.first { $0.name == name } }

    /// A layer Grad-CAM can explain (ModelConfig.explainableLayers): its
    /// activation and, after a backward that stopped there, its gradient.
    public struct ExplainableLayer {
        public let name: String
        public let H: Int, W: Int, C: Int
        public let activation: Tensor   // [N, H, W, C]
        public let gradient: Tensor     // [N, H, W, C]
    }

    public func explainableLayer(named name: String) -> ExplainableLayer? {
        for b in blocks {
            if b.name == name { return ExplainableLayer(name: name, H: b.H, W: b.W, C: b.OC, activation: b.out, gradient: b.dout) }
            if let s = b.shortcut, s.name == name {
                return ExplainableLayer(name: name, H: b.H, W: b.W, C: b.OC, activation: s.output, gradient: s.doutput)
            }
            if let u = b.units.first(where: { $0.name == name }) {
                return ExplainableLayer(name: name, H: u.H, W: u.W, C: u.OC, activation: u.a, gradient: u.da)
            }
        }
        return nil
    }

    /// He-normal convolutions (fan-in, ReLU gain), PyTorch's default uniform
    /// for dense layers and biases, batch norm at identity.
    public func initialize(rng: inout RNG) {
        func heNormal(_ p: Parameter) {
            let std = (2 / Float(p.fanIn)).squareRoot()
            for i in 0..<p.value.count { p.value[i] = std * rng.normal() }
        }
        func uniform(_ p: Parameter?, fanIn: Int) {
            guard let p else { return }
            let bound = 1 / Float(fanIn).squareRoot()
            for i in 0..<p.value.count { p.value[i] = rng.uniform(-bound, bound) }
        }
        for block in blocks {
            for u in block.units {
                if let d = u.depthwise { heNormal(d) }
                heNormal(u.weight)
                uniform(u.bias, fanIn: u.weight.fanIn)
                if let g = u.gamma { for i in 0..<g.value.count { g.value[i] = 1 } }
                u.beta?.value.zero()
                u.running.reset()
            }
            if let s = block.shortcut {
                heNormal(s.weight)
                uniform(s.bias, fanIn: s.weight.fanIn)
                s.bn?.reset()
            }
            for (w1, b1, w2, b2) in [block.se.map { ($0.fc1w, $0.fc1b, $0.fc2w, $0.fc2b) },
                                     block.cbam.map { ($0.fc1w, $0.fc1b, $0.fc2w, $0.fc2b) }].compactMap({ $0 }) {
                uniform(w1, fanIn: w1.fanIn); uniform(b1, fanIn: w1.fanIn)
                uniform(w2, fanIn: w2.fanIn); uniform(b2, fanIn: w2.fanIn)
            }
            if let cb = block.cbam {
                heNormal(cb.spatialWeight)
                uniform(cb.spatialBias, fanIn: cb.spatialWeight.fanIn)
                cb.spatialBN?.reset()
            }
        }
        for (w, b) in [(fc1w, fc1b), (fc2w, fc2b)] {
            guard let w else { continue }
            uniform(w, fanIn: w.fanIn)
            uniform(b, fanIn: w.fanIn)
        }
    }

    /// Allocates activations for batches of up to N images (no-op if large enough).
    public func reserve(batch N: Int) {
        guard N > capacity else { return }
        capacity = N
        pooled = []; dpooled = []
        for (b, block) in blocks.enumerated() {
            block.allocate(batch: N)
            if b < blocks.count - 1 {
                pooled.append(Tensor([N, block.H / 2, block.W / 2, block.OC], zero: false))
                dpooled.append(Tensor([N, block.H / 2, block.W / 2, block.OC], zero: false))
            }
        }
        input = Tensor([N, imageSize, imageSize, 3], zero: false)
        let cl = config.widths.last!, h = config.hidden, l = config.classes
        let d = h > 0 ? h : cl
        gap = Tensor([N, cl]); dgap = Tensor([N, cl])
        z1 = Tensor([N, h]); a1 = Tensor([N, h]); da1 = Tensor([N, h]); dz1 = Tensor([N, h])
        drop = Tensor([N, d]); mask = Tensor([N, d]); ddrop = Tensor([N, d])
        logits = Tensor([N, l]); probs = Tensor([N, l]); dlogits = Tensor([N, l])
        dinput = nil
    }

    @inline(__always)
    func timed(_ name: String, backward: Bool = false, _ body: () -> Void) {
        if let profile { profile.time(name, backward: backward, body) } else { body() }
    }

    /// Forward pass; returns logits [N, classes] (valid until the next call).
    /// Training: batch statistics (running averages updated) and dropout.
    /// The input is copied: the pointer need only be valid during this call.
    @discardableResult
    public func forward(
        _ image: UnsafePointer<Float>,   // [N, S, S, 3]
        N: Int, training: Bool, rng: inout RNG
    ) -> UnsafeMutablePointer<Float> {
        reserve(batch: N)
        // The first conv's backward reads the input again. Keeping the
        // caller's pointer would be a dangling read whenever the input is a
        // [Float] passed inline (valid only during this call); one copy of
        // N*S*S*3 floats per step is noise next to the first conv, and it
        // keeps the API a plain pointer instead of a buffer the caller must
        // keep alive until backward.
        input.data.update(from: image, count: N * imageSize * imageSize * 3)
        var x = UnsafePointer(input.data)
        for (b, block) in blocks.enumerated() {
            blockForward(block, x, N: N, training: training)
            x = UnsafePointer(block.out.data)
            if b < blocks.count - 1 {
                timed("pool\(b + 1)") {
                    switch config.pool {
                    case .max: maxPool2x2Forward(pooled[b].data, x, N: N, H: block.H, W: block.W, C: block.OC, workers: threads)
                    case .avg: avgPool2x2Forward(pooled[b].data, x, N: N, H: block.H, W: block.W, C: block.OC, workers: threads)
                    }
                }
                x = UnsafePointer(pooled[b].data)
            }
        }
        let last = blocks.last!
        let h = config.hidden, l = config.classes, cl = last.OC
        timed("head") {
            globalAvgPoolForward(gap.data, x, N: N, HW: last.H * last.W, C: cl)
            if let fc1w, let fc1b {
                denseForward(z1.data, gap.data, fc1w.value.data, fc1b.value.data, N: N, IN: cl, OUT: h)
                activationForward(Nonlinearity(config.activation), a1.data, z1.data, count: N * h)
                dropoutForward(drop.data, mask: mask.data, a1.data, count: N * h, p: config.dropout,
                               training: training, rng: &rng)
                denseForward(logits.data, drop.data, fc2w.value.data, fc2b.value.data, N: N, IN: h, OUT: l)
            } else {
                dropoutForward(drop.data, mask: mask.data, gap.data, count: N * cl, p: config.dropout,
                               training: training, rng: &rng)
                denseForward(logits.data, drop.data, fc2w.value.data, fc2b.value.data, N: N, IN: cl, OUT: l)
            }
        }
        return logits.data
    }

    /// The block's formula (ModelConfig): the projection first (the last
    /// unit or attention adds it), the units, then attention.
    private func blockForward(_ block: Block, _ x: UnsafePointer<Float>, N: Int, training: Bool) {
        if let s = block.shortcut { shortcutForward(s, x, N: N, H: block.H, W: block.W, training: training) }
        let shortcut: UnsafePointer<Float>? = block.innerSkip ? UnsafePointer(block.units[0].a.data)
            : block.shortcut.map { UnsafePointer($0.output.data) }
        var inp = x
        for u in block.units {
            let residual = u.addsResidual ? shortcut : nil
            if !training && u.foldsBatchNormInEval {
                unitEvalForward(u, inp, residual: residual, N: N)
            } else {
                unitForward(u, inp, residual: residual, N: N, training: training)
            }
            inp = UnsafePointer(u.a.data)
        }
        if block.hasAttention {
            let z = block.activation.needsInput ? block.z.data : nil, y = UnsafePointer(block.units.last!.a.data)
            timed((block.se?.name ?? block.cbam?.name)!) {
                block.se?.forward(block.attended.data, preactivation: z, y, shortcut: shortcut, activation: block.activation,
                                  N: N, workers: threads)
                block.cbam?.forward(block.attended.data, preactivation: z, y, shortcut: shortcut, activation: block.activation,
                                    N: N, training: training, workers: threads)
            }
        }
    }

    /// conv, then batch norm (batch statistics in training) or bias, residual and activation.
    private func unitForward(_ u: ConvUnit, _ x: UnsafePointer<Float>, residual: UnsafePointer<Float>?, N: Int, training: Bool) {
        let M = N * u.H * u.W
        timed(u.name) {
            if let d = u.depthwise {
                depthwiseConvForward(u.t.data, x, d.value.data, N: N, H: u.H, W: u.W, C: u.C, k: u.kernel, workers: threads)
                pointwiseConvForward(u.c.data, u.t.data, u.weight.value.data, u.bias?.value.data, M: M, C: u.C, OC: u.OC,
                                     workers: threads)
            } else {
                convForward(u.c.data, x, u.weight.value.data, u.bias?.value.data,
                            N: N, H: u.H, W: u.W, C: u.C, OC: u.OC, k: u.kernel,
                            kernelCache: training ? nil : u.kernelCache, workspace: workspace)
            }
        }
        u.cHoldsConv = true
        let z = u.activation.needsInput ? u.z.data : nil
        timed(config.batchNorm ? u.bnName : u.name + ".relu") {
            if let g = u.gamma, let be = u.beta {
                batchNormStatistics(mean: u.mean.data, rstd: u.rstd.data,
                                    runningMean: u.runningMean.data, runningVar: u.runningVar.data,
                                    u.c.data, M: M, C: u.OC, training: training, workers: threads)
                if training { u.batchesTracked += 1 }
                batchNormActivationForward(u.activation, u.a.data, preactivation: z, u.c.data, residual: residual,
                                           gamma: g.value.data, beta: be.value.data, mean: u.mean.data, rstd: u.rstd.data,
                                           M: M, C: u.OC, workers: threads)
            } else {
                affineActivationForward(u.activation, u.a.data, preactivation: z, u.c.data, scale: nil, shift: nil,
                                        residual: residual, M: M, C: u.OC, workers: threads)
            }
        }
    }

    /// Eval with batch norm: its running statistics are constants, so
    /// a = relu?(scale * conv(x) + shift [+ residual]) in one pass, the scale
    /// folded into the (cached) Winograd kernel; c is not written.
    private func unitEvalForward(_ u: ConvUnit, _ x: UnsafePointer<Float>, residual: UnsafePointer<Float>?, N: Int) {
        let g = u.gamma!.value, be = u.beta!.value
        batchNormStatistics(mean: u.mean.data, rstd: u.rstd.data, runningMean: u.runningMean.data,
                            runningVar: u.runningVar.data, u.c.data, M: 0, C: u.OC, training: false)
        for o in 0..<u.OC {
            u.evalScale[o] = g[o] * u.rstd[o]
            u.evalShift[o] = be[o] - u.mean[o] * u.evalScale[o]
        }
        timed(u.name) {
            convForward(u.a.data, x, u.weight.value.data, u.evalShift.data, N: N, H: u.H, W: u.W, C: u.C, OC: u.OC,
                        k: u.kernel, scale: u.evalScale.data, residual: residual, relu: u.activation == .relu,
                        kernelCache: u.kernelCache, workspace: workspace)
        }
        u.cHoldsConv = false
    }

    /// s = bn(conv1x1(x)), or conv1x1(x) + bias without batch norm.
    private func shortcutForward(_ s: ProjectionShortcut, _ x: UnsafePointer<Float>, N: Int, H: Int, W: Int, training: Bool) {
        let M = N * H * W
        timed(s.name) {
            pointwiseConvForward(s.c.data, x, s.weight.value.data, s.bias?.value.data, M: M, C: s.C, OC: s.OC, workers: threads)
            if let bn = s.bn {
                bn.statistics(s.c.data, M: M, training: training, workers: threads)
                batchNormActivationForward(.identity, s.s.data, s.c.data, residual: nil, gamma: bn.gamma.value.data,
                                           beta: bn.beta.value.data, mean: bn.mean.data, rstd: bn.rstd.data,
                                           M: M, C: s.OC, workers: threads)
            }
        }
    }

    /// Softmax cross-entropy of the last forward's logits; also fills probs
    /// (of the shifted logits when a logit shift is given).
    public func loss(
        targets: UnsafePointer<Float>,              // [N, classes]
        classWeights: UnsafePointer<Float>?,        // [classes] or nil
        sampleWeights: UnsafePointer<Float>? = nil, // [N] or nil
        logitShift: UnsafePointer<Float>? = nil,    // [classes] or nil
        N: Int
    ) -> Float {
        softmaxCrossEntropyForward(probs: probs.data, logits.data, targets: targets, classWeights: classWeights,
                                   sampleWeights: sampleWeights, logitShift: logitShift, N: N, L: config.classes)
    }

    /// Softmax probabilities of the last forward's logits, without a loss.
    public func softmax(N: Int) {
        softmaxForward(probs: probs.data, logits.data, N: N, L: config.classes)
    }

    /// Backward of the loss computed by `loss`: fills every parameter gradient.
    public func backwardLoss(targets: UnsafePointer<Float>, classWeights: UnsafePointer<Float>?,
                             sampleWeights: UnsafePointer<Float>? = nil, N: Int, training: Bool) {
        softmaxCrossEntropyBackward(dlogits.data, probs: probs.data, targets: targets, classWeights: classWeights,
                                    sampleWeights: sampleWeights, N: N, L: config.classes)
        backward(dlogits: dlogits.data, N: N, training: training)
    }

    public func zeroGradients() {
        for p in parameters { p.grad.zero() }
    }

    /// Backward from a given logit gradient (Grad-CAM seeds it with a one-hot).
    /// Parameter gradients are zeroed first and accumulate; each activation
    /// gradient is written by the layer that produces it (Engine.swift).
    /// `training` must match the forward call.
    /// With `stopAt` (an explainable layer's name), stops once that layer's
    /// output gradient is complete and skips parameter gradients: what
    /// Grad-CAM needs.
    public func backward(dlogits: UnsafePointer<Float>, N: Int, training: Bool, stopAt: String? = nil) {
        let parameterGradients = stopAt == nil
        zeroGradients()
        if computeInputGradient && dinput == nil { dinput = Tensor([capacity, imageSize, imageSize, 3]) }
        let last = blocks.last!
        let h = config.hidden, l = config.classes, cl = last.OC
        timed("head", backward: true) {
            if let fc1w, let fc1b {
                denseBackward(ddrop.data, fc2w.grad.data, fc2b.grad.data, dlogits, drop.data, fc2w.value.data,
                              N: N, IN: h, OUT: l)
                dropoutBackward(da1.data, ddrop.data, mask: mask.data, count: N * h)
                activationBackward(Nonlinearity(config.activation), dz1.data, da1.data, inp: z1.data, out: a1.data, count: N * h)
                denseBackward(dgap.data, fc1w.grad.data, fc1b.grad.data, dz1.data, gap.data, fc1w.value.data,
                              N: N, IN: cl, OUT: h)
            } else {
                denseBackward(ddrop.data, fc2w.grad.data, fc2b.grad.data, dlogits, drop.data, fc2w.value.data,
                              N: N, IN: cl, OUT: l)
                dropoutBackward(dgap.data, ddrop.data, mask: mask.data, count: N * cl)
            }
        }
        timed("head", backward: true) {
            globalAvgPoolBackward(last.dout.data, dgap.data, N: N, HW: last.H * last.W, C: cl)
        }
        for b in stride(from: blocks.count - 1, through: 0, by: -1) {
            let block = blocks[b]
            if b < blocks.count - 1 {
                timed("pool\(b + 1)", backward: true) {
                    switch config.pool {
                    case .max:
                        maxPool2x2Backward(block.dout.data, dpooled[b].data, inp: block.out.data, out: pooled[b].data,
                                           N: N, H: block.H, W: block.W, C: block.OC, workers: threads)
                    case .avg:
                        avgPool2x2Backward(block.dout.data, dpooled[b].data, N: N, H: block.H, W: block.W, C: block.OC, workers: threads)
                    }
                }
            }
            if block.name == stopAt { return }
            // Where the block's input came from, and where its gradient goes.
            let x: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?
            if b > 0 {
                x = UnsafePointer(pooled[b - 1].data); dx = dpooled[b - 1].data
            } else {
                x = UnsafePointer(input.data); dx = computeInputGradient ? dinput?.data : nil
            }
            if !blockBackward(block, x: x, dx: dx, N: N, training: training, parameterGradients: parameterGradients, stopAt: stopAt) {
                return
            }
        }
    }

    /// Backward through one block, from its output gradient to its input's
    /// (written by conv1, added to by the projection). The shortcut's share
    /// of the gradient is written before the consumer that adds to it: h1's
    /// by the last unit or attention, then conv2's input gradient adds; the
    /// projection's likewise, then it runs after conv1. False when it
    /// stopped at `stopAt`.
    private func blockBackward(_ block: Block, x: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?, N: Int, training: Bool,
                               parameterGradients: Bool, stopAt: String?) -> Bool {
        let units = block.units
        // Where the shortcut's gradient goes: h1's (written first, then conv2's input gradient adds) or the projection's.
        let dshortcut: UnsafeMutablePointer<Float>? = block.innerSkip ? units[0].da.data : block.shortcut?.doutput.data
        if block.hasAttention {
            let count = N * block.H * block.W * block.OC
            timed((block.se?.name ?? block.cbam?.name)!, backward: true) {
                // The activation's gradient first: dv = d(y' + s).
                activationBackward(block.activation, block.dv.data, block.dout.data,
                                   inp: block.activation.needsInput ? block.z.data : block.out.data, out: block.out.data,
                                   count: count, workers: threads)
                let y = block.units.last!
                block.se?.backward(y.da.data, dshortcut: dshortcut, block.dv.data, y.a.data, N: N, workers: threads)
                block.cbam?.backward(y.da.data, dshortcut: dshortcut, block.dv.data, y.a.data, N: N, training: training,
                                     parameterGradients: parameterGradients, workers: threads)
            }
            if let s = block.shortcut, s.name == stopAt { return false }
        }
        for j in stride(from: units.count - 1, through: 0, by: -1) {
            let u = units[j]
            if u.name == stopAt { return false }
            let M = N * u.H * u.W
            let dres: UnsafeMutablePointer<Float>? = u.addsResidual ? dshortcut : nil
            // Where this unit's input came from, and where its gradient goes.
            let inp = j > 0 ? UnsafePointer(units[j - 1].a.data) : x
            let dinp = j > 0 ? units[j - 1].da.data : dx
            if config.batchNorm && !u.cHoldsConv {  // after an eval forward: batch norm's backward reads c
                timed(u.name, backward: true) {
                    convForward(u.c.data, inp, u.weight.value.data, nil, N: N, H: u.H, W: u.W, C: u.C, OC: u.OC, k: u.kernel,
                                workspace: workspace)
                }
                u.cHoldsConv = true
            }
            timed(config.batchNorm ? u.bnName : u.name + ".relu", backward: true) {
                if u.activation == .relu, let g = u.gamma {
                    batchNormReLUBackward(u.dc.data, dresidual: dres, dgamma: g.grad.data, dbeta: u.beta!.grad.data,
                                          u.da.data, out: u.a.data, inp: u.c.data, gamma: g.value.data,
                                          mean: u.mean.data, rstd: u.rstd.data, M: M, C: u.OC,
                                          training: training, workers: threads)
                    return
                }
                // Any other activation: its gradient first, then batch norm
                // unmasked. Identity has none: batch norm reads da.
                let dz = u.gamma == nil ? u.dc.data : (u.activation == .identity ? u.da.data : u.dz.data)
                if dz != u.da.data {
                    activationBackward(u.activation, dz, u.da.data, inp: u.activation.needsInput ? u.z.data : u.a.data,
                                       out: u.a.data, count: M * u.OC, workers: threads)
                }
                if let g = u.gamma {
                    batchNormBackward(u.dc.data, dresidual: dres, dgamma: g.grad.data, dbeta: u.beta!.grad.data, dz,
                                      inp: u.c.data, gamma: g.value.data, mean: u.mean.data, rstd: u.rstd.data,
                                      M: M, C: u.OC, training: training, workers: threads)
                } else if let dres {
                    dres.update(from: u.dc.data, count: M * u.OC)
                }
            }
            if u.addsResidual, let s = block.shortcut, s.name == stopAt { return false }
            // conv2's input gradient adds to h1's, whose skip share is already written.
            let accumulate = j == 1 && block.innerSkip
            timed(u.name, backward: true) {
                if let d = u.depthwise {
                    pointwiseConvBackward(u.dt.data, parameterGradients ? u.weight.grad.data : nil,
                                          parameterGradients ? u.bias?.grad.data : nil, u.dc.data, u.t.data, u.weight.value.data,
                                          M: M, C: u.C, OC: u.OC, workers: threads)
                    depthwiseConvBackward(dinp, parameterGradients ? d.grad.data : nil, u.dt.data, inp, d.value.data,
                                          N: N, H: u.H, W: u.W, C: u.C, k: u.kernel, accumulate: accumulate, workers: threads)
                } else {
                    convBackward(dinp, parameterGradients ? u.weight.grad.data : nil,
                                 parameterGradients ? u.bias?.grad.data : nil, u.dc.data, inp, u.weight.value.data,
                                 N: N, H: u.H, W: u.W, C: u.C, OC: u.OC, k: u.kernel,
                                 accumulate: accumulate, workspace: workspace)
                }
            }
        }
        if let s = block.shortcut { shortcutBackward(s, x: x, dx: dx, N: N, H: block.H, W: block.W, training: training,
                                                     parameterGradients: parameterGradients) }
        return true
    }

    /// From the shortcut's gradient (written by the last unit or attention)
    /// to the block input's, added to conv1's.
    private func shortcutBackward(_ s: ProjectionShortcut, x: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?, N: Int,
                                  H: Int, W: Int, training: Bool, parameterGradients: Bool) {
        let M = N * H * W
        timed(s.name, backward: true) {
            if let bn = s.bn {
                batchNormBackward(s.dc.data, dresidual: nil, dgamma: bn.gamma.grad.data, dbeta: bn.beta.grad.data, s.ds.data,
                                  inp: s.c.data, gamma: bn.gamma.value.data, mean: bn.mean.data, rstd: bn.rstd.data,
                                  M: M, C: s.OC, training: training, workers: threads)
            }
            pointwiseConvBackward(dx, parameterGradients ? s.weight.grad.data : nil, parameterGradients ? s.bias?.grad.data : nil,
                                  s.dc.data, x, s.weight.value.data, M: M, C: s.C, OC: s.OC, accumulate: true, workers: threads)
        }
    }
}

extension Tensor {
    /// Element count of the first N items of a batch-major tensor.
    func count(N: Int) -> Int { N * (count / shape[0]) }
}
