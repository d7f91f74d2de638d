import Foundation
import LabRandom

/// One 3x3 convolution with its batch norm (or bias) and ReLU:
/// a = relu(bn(conv(x)) [+ residual]).
public final class ConvUnit {
    public let name: String        // "block1.conv1"
    public let bnName: String      // "block1.bn1"
    public let C: Int, OC: Int, H: Int, W: Int
    public let weight: Parameter   // [9*C, OC]
    public let bias: Parameter?    // [OC], only without batch norm
    public let gamma: Parameter?   // [OC]
    public let beta: Parameter?    // [OC]
    public let runningMean: Tensor // [OC]
    public let runningVar: Tensor  // [OC]
    public var batchesTracked = 0
    /// True for the last conv of a block whose skip adds the block's first activation.
    public let addsResidual: Bool
    /// The eval forward's Winograd kernel, reused while the weights stay the
    /// same (training changes them every step: no cache there).
    let kernelCache = WinogradKernelCache()

    // Activations for the current batch capacity.
    var c = Tensor([0])            // [N, H, W, OC] conv output
    var dc = Tensor([0])           // [N, H, W, OC] gradient of the conv output
    public internal(set) var a = Tensor([0])  // [N, H, W, OC] unit output (Grad-CAM reads it)
    public internal(set) var da = Tensor([0]) // [N, H, W, OC] gradient of the unit output
    let mean: Tensor, rstd: Tensor // [OC]
    let evalScale: Tensor, evalShift: Tensor // [OC] batch norm folded into the conv (eval)
    /// False after an eval forward, which writes `a` straight from the
    /// conv (batch norm folded in) and leaves `c` stale; a backward that
    /// needs `c` recomputes it.
    var cHoldsConv = false

    init(block: Int, index: Int, C: Int, OC: Int, H: Int, W: Int, batchNorm: Bool, addsResidual: Bool) {
        name = "block\(block).conv\(index)"
        bnName = "block\(block).bn\(index)"
        self.C = C; self.OC = OC; self.H = H; self.W = W
        weight = Parameter("\(name).weight", [9 * C, OC], layout: .conv3x3(C: C, OC: OC))
        bias = batchNorm ? nil : Parameter("\(name).bias", [OC])
        gamma = batchNorm ? Parameter("\(bnName).weight", [OC]) : nil
        beta = batchNorm ? Parameter("\(bnName).bias", [OC]) : nil
        runningMean = Tensor([OC])
        runningVar = Tensor([OC])
        mean = Tensor([OC]); rstd = Tensor([OC])
        evalScale = Tensor([OC]); evalShift = Tensor([OC])
        self.addsResidual = addsResidual
    }

    var parameters: [Parameter] { [weight, bias, gamma, beta].compactMap { $0 } }

    func allocate(batch N: Int) {
        c = Tensor([N, H, W, OC], zero: false)
        a = Tensor([N, H, W, OC], zero: false)
        da = Tensor([N, H, W, OC], zero: false)
        dc = Tensor([N, H, W, OC], zero: false)
    }
}

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

/// The residual CNN of DESIGN.md §2, NHWC, with every activation it needs
/// for backward preallocated for a batch capacity: a training step allocates
/// nothing.
public final class Model {
    public let config: ModelConfig
    public let imageSize: Int
    public let blocks: [[ConvUnit]]
    public let fc1w: Parameter, fc1b: Parameter  // [hidden, C_last], [hidden]
    public let fc2w: Parameter, fc2b: Parameter  // [classes, hidden], [classes]
    public let parameters: [Parameter]
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
    var drop = Tensor([0]), mask = Tensor([0]), ddrop = Tensor([0]) // [N, hidden]
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
        var blocks = [[ConvUnit]]()
        var s = imageSize, c = 3
        for (b, width) in config.widths.enumerated() {
            let k = config.convsPerBlock[b]
            var units = [ConvUnit]()
            for j in 0..<k {
                units.append(ConvUnit(
                    block: b + 1, index: j + 1, C: j == 0 ? c : width, OC: width, H: s, W: s,
                    batchNorm: config.batchNorm, addsResidual: config.skip && k >= 2 && j == k - 1))
            }
            blocks.append(units)
            c = width
            if b < config.widths.count - 1 { s /= 2 }
        }
        self.blocks = blocks
        fc1w = Parameter("fc1.weight", [config.hidden, c])
        fc1b = Parameter("fc1.bias", [config.hidden])
        fc2w = Parameter("fc2.weight", [config.classes, config.hidden])
        fc2b = Parameter("fc2.bias", [config.classes])
        parameters = blocks.flatMap { $0.flatMap { $0.parameters } } + [fc1w, fc1b, fc2w, fc2b]
    }

    public var units: [ConvUnit] { blocks.flatMap { $0 } }
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    public func unit(named name: String) -> ConvUnit? { units.first { $0.name == name } }

    /// He-normal convolutions (fan-in, ReLU gain), PyTorch's default uniform
    /// for dense layers and biases, batch norm at identity.
    public func initialize(rng: inout RNG) {
        for u in units {
            let std = (2 / Float(9 * u.C)).squareRoot()
            for i in 0..<u.weight.value.count { u.weight.value[i] = std * rng.normal() }
            if let b = u.bias {
                let bound = 1 / Float(9 * u.C).squareRoot()
                for i in 0..<b.value.count { b.value[i] = rng.uniform(-bound, bound) }
            }
            if let g = u.gamma { for i in 0..<g.value.count { g.value[i] = 1 } }
            u.beta?.value.zero()
            u.runningMean.zero()
            for i in 0..<u.OC { u.runningVar[i] = 1 }
            u.batchesTracked = 0
        }
        for (w, b) in [(fc1w, fc1b), (fc2w, fc2b)] {
            let bound = 1 / Float(w.value.shape[1]).squareRoot()
            for i in 0..<w.value.count { w.value[i] = rng.uniform(-bound, bound) }
            for i in 0..<b.value.count { b.value[i] = rng.uniform(-bound, bound) }
        }
    }

    /// Allocates activations for batches of up to N images (no-op if large enough).
    public func reserve(batch N: Int) {
        guard N > capacity else { return }
        capacity = N
        pooled = []; dpooled = []
        for (b, units) in blocks.enumerated() {
            for u in units { u.allocate(batch: N) }
            if b < blocks.count - 1 {
                let u = units.last!
                pooled.append(Tensor([N, u.H / 2, u.W / 2, u.OC], zero: false))
                dpooled.append(Tensor([N, u.H / 2, u.W / 2, u.OC], zero: false))
            }
        }
        input = Tensor([N, imageSize, imageSize, 3], zero: false)
        let cl = config.widths.last!, h = config.hidden, l = config.classes
        gap = Tensor([N, cl]); dgap = Tensor([N, cl])
        z1 = Tensor([N, h]); a1 = Tensor([N, h]); da1 = Tensor([N, h]); dz1 = Tensor([N, h])
        drop = Tensor([N, h]); mask = Tensor([N, h]); ddrop = Tensor([N, h])
        logits = Tensor([N, l]); probs = Tensor([N, l]); dlogits = Tensor([N, l])
        dinput = nil
    }

    @inline(__always)
    private func timed(_ name: String, backward: Bool = false, _ body: () -> Void) {
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
        for (b, units) in blocks.enumerated() {
            for u in units {
                let residual: UnsafePointer<Float>? = u.addsResidual ? UnsafePointer(units[0].a.data) : nil
                if training || u.gamma == nil {
                    unitForward(u, x, residual: residual, N: N, training: training)
                } else {
                    unitEvalForward(u, x, residual: residual, N: N)
                }
                x = UnsafePointer(u.a.data)
            }
            if b < blocks.count - 1 {
                let u = units.last!
                timed("pool\(b + 1)") {
                    maxPool2x2Forward(pooled[b].data, x, N: N, H: u.H, W: u.W, C: u.OC, workers: threads)
                }
                x = UnsafePointer(pooled[b].data)
            }
        }
        let last = blocks.last!.last!
        let h = config.hidden, l = config.classes, cl = last.OC
        timed("head") {
            globalAvgPoolForward(gap.data, x, N: N, HW: last.H * last.W, C: cl)
            denseForward(z1.data, gap.data, fc1w.value.data, fc1b.value.data, N: N, IN: cl, OUT: h)
            reluForward(a1.data, z1.data, count: N * h)
            dropoutForward(drop.data, mask: mask.data, a1.data, count: N * h, p: config.dropout,
                           training: training, rng: &rng)
            denseForward(logits.data, drop.data, fc2w.value.data, fc2b.value.data, N: N, IN: h, OUT: l)
        }
        return logits.data
    }

    /// conv, then batch norm (batch statistics in training) or bias, residual and ReLU.
    private func unitForward(_ u: ConvUnit, _ x: UnsafePointer<Float>, residual: UnsafePointer<Float>?, N: Int, training: Bool) {
        let M = N * u.H * u.W
        timed(u.name) {
            conv3x3Forward(u.c.data, x, u.weight.value.data, u.bias?.value.data,
                           N: N, H: u.H, W: u.W, C: u.C, OC: u.OC,
                           kernelCache: training ? nil : u.kernelCache, workspace: workspace)
        }
        u.cHoldsConv = true
        timed(config.batchNorm ? u.bnName : u.name + ".relu") {
            if let g = u.gamma, let be = u.beta {
                batchNormStatistics(mean: u.mean.data, rstd: u.rstd.data,
                                    runningMean: u.runningMean.data, runningVar: u.runningVar.data,
                                    u.c.data, M: M, C: u.OC, training: training, workers: threads)
                if training { u.batchesTracked += 1 }
                batchNormReLUForward(u.a.data, u.c.data, residual: residual, gamma: g.value.data,
                                     beta: be.value.data, mean: u.mean.data, rstd: u.rstd.data,
                                     M: M, C: u.OC, workers: threads)
            } else {
                addReLUForward(u.a.data, u.c.data, residual: residual, count: M * u.OC)
            }
        }
    }

    /// Eval with batch norm: its running statistics are constants, so
    /// a = relu(scale * conv(x) + shift [+ residual]) in one pass, the scale
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
            conv3x3Forward(u.a.data, x, u.weight.value.data, u.evalShift.data, N: N, H: u.H, W: u.W, C: u.C, OC: u.OC,
                           scale: u.evalScale.data, residual: residual, relu: true,
                           kernelCache: u.kernelCache, workspace: workspace)
        }
        u.cHoldsConv = false
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
    /// With `stopAt` (a unit name), stops once that unit's output gradient
    /// `da` is complete and skips parameter gradients: what Grad-CAM needs.
    public func backward(dlogits: UnsafePointer<Float>, N: Int, training: Bool, stopAt: String? = nil) {
        let parameterGradients = stopAt == nil
        zeroGradients()
        if computeInputGradient && dinput == nil { dinput = Tensor([capacity, imageSize, imageSize, 3]) }
        let last = blocks.last!.last!
        let h = config.hidden, l = config.classes, cl = last.OC
        timed("head", backward: true) {
            denseBackward(ddrop.data, fc2w.grad.data, fc2b.grad.data, dlogits, drop.data, fc2w.value.data,
                          N: N, IN: h, OUT: l)
            dropoutBackward(da1.data, ddrop.data, mask: mask.data, count: N * h)
            reluBackward(dz1.data, da1.data, out: a1.data, count: N * h)
            denseBackward(dgap.data, fc1w.grad.data, fc1b.grad.data, dz1.data, gap.data, fc1w.value.data,
                          N: N, IN: cl, OUT: h)
        }
        timed("head", backward: true) {
            globalAvgPoolBackward(last.da.data, dgap.data, N: N, HW: last.H * last.W, C: cl)
        }
        for b in stride(from: blocks.count - 1, through: 0, by: -1) {
            let units = blocks[b]
            if b < blocks.count - 1 {
                let u = units.last!
                timed("pool\(b + 1)", backward: true) {
                    maxPool2x2Backward(u.da.data, dpooled[b].data, inp: u.a.data, out: pooled[b].data,
                                       N: N, H: u.H, W: u.W, C: u.OC, workers: threads)
                }
            }
            for j in stride(from: units.count - 1, through: 0, by: -1) {
                let u = units[j]
                if u.name == stopAt { return }
                let M = N * u.H * u.W
                // The skip's share of the block's first activation gradient, written
                // here, before conv2's input gradient adds to it.
                let dres: UnsafeMutablePointer<Float>? = u.addsResidual ? units[0].da.data : nil
                // Where this unit's input came from, and where its gradient goes.
                let inp: UnsafePointer<Float>
                let dinp: UnsafeMutablePointer<Float>?
                if j > 0 {
                    inp = UnsafePointer(units[j - 1].a.data); dinp = units[j - 1].da.data
                } else if b > 0 {
                    inp = UnsafePointer(pooled[b - 1].data); dinp = dpooled[b - 1].data
                } else {
                    inp = UnsafePointer(input.data); dinp = computeInputGradient ? dinput?.data : nil
                }
                if config.batchNorm && !u.cHoldsConv {  // after an eval forward: batch norm's backward reads c
                    timed(u.name, backward: true) {
                        conv3x3Forward(u.c.data, inp, u.weight.value.data, nil, N: N, H: u.H, W: u.W, C: u.C, OC: u.OC,
                                       workspace: workspace)
                    }
                    u.cHoldsConv = true
                }
                timed(config.batchNorm ? u.bnName : u.name + ".relu", backward: true) {
                    if let g = u.gamma, let be = u.beta {
                        batchNormReLUBackward(u.dc.data, dresidual: dres, dgamma: g.grad.data, dbeta: be.grad.data,
                                              u.da.data, out: u.a.data, inp: u.c.data, gamma: g.value.data,
                                              mean: u.mean.data, rstd: u.rstd.data, M: M, C: u.OC,
                                              training: training, workers: threads)
                    } else {
                        addReLUBackward(u.dc.data, dresidual: dres, u.da.data, out: u.a.data, count: M * u.OC)
                    }
                }
                timed(u.name, backward: true) {
                    conv3x3Backward(dinp, parameterGradients ? u.weight.grad.data : nil,
                                    parameterGradients ? u.bias?.grad.data : nil, u.dc.data, inp, u.weight.value.data,
                                    N: N, H: u.H, W: u.W, C: u.C, OC: u.OC,
                                    accumulate: j == 1 && units.last!.addsResidual, workspace: workspace)
                }
            }
        }
    }
}

extension Tensor {
    /// Element count of the first N items of a batch-major tensor.
    func count(N: Int) -> Int { N * (count / shape[0]) }
}
