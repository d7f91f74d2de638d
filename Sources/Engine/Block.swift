import Foundation

// The layers of a block (ModelConfig's formula) as the model holds them:
// parameters under their PyTorch state_dict names, and every activation
// backward needs, preallocated for a batch capacity. The kernels are in the
// files named for them; Model.swift strings them together.

/// A batch norm's running statistics, under its state_dict prefix ("block1.bn1").
public final class RunningStatistics {
    public let name: String
    public let mean: Tensor       // [C]
    public let variance: Tensor   // [C]
    public var batchesTracked = 0

    init(_ name: String, C: Int) {
        self.name = name
        mean = Tensor([C]); variance = Tensor([C])
    }

    /// PyTorch's initial state: mean 0, variance 1, nothing tracked.
    func reset() {
        mean.zero()
        for i in 0..<variance.count { variance[i] = 1 }
        batchesTracked = 0
    }
}

/// A batch norm outside a conv unit (the projection shortcut's, CBAM's
/// spatial one): its parameters, running statistics and this batch's.
public final class BatchNormLayer {
    public let gamma: Parameter, beta: Parameter   // [C]
    public let running: RunningStatistics
    let mean: Tensor, rstd: Tensor                 // [C]
    let C: Int

    init(_ name: String, C: Int) {
        self.C = C
        gamma = Parameter("\(name).weight", [C]); beta = Parameter("\(name).bias", [C])
        running = RunningStatistics(name, C: C)
        mean = Tensor([C]); rstd = Tensor([C])
    }

    var parameters: [Parameter] { [gamma, beta] }

    func reset() {
        for i in 0..<C { gamma.value[i] = 1 }
        beta.value.zero()
        running.reset()
    }

    /// Batch statistics (training; running averages updated) or the running ones (eval).
    func statistics(_ inp: UnsafePointer<Float>, M: Int, training: Bool, workers: Int) {
        batchNormStatistics(mean: mean.data, rstd: rstd.data, runningMean: running.mean.data, runningVar: running.variance.data,
                            inp, M: M, C: C, training: training, workers: workers)
        if training { running.batchesTracked += 1 }
    }
}

/// One convolution of a block with its batch norm (or bias) and activation:
/// a = act(bn(conv(x)) [+ shortcut]). The convolution is a standard k x k
/// one, or separable: depthwise k x k (no bias) then pointwise 1x1.
public final class ConvUnit {
    public let name: String        // "block1.conv1"
    public let bnName: String      // "block1.bn1"
    public let C: Int, OC: Int, H: Int, W: Int
    public let kernel: Int
    /// Standard: the k x k weight [k*k*C, OC]; separable: the pointwise one [C, OC].
    public let weight: Parameter
    public let depthwise: Parameter?   // [k*k, C], separable only
    public let bias: Parameter?        // [OC], only without batch norm
    public let gamma: Parameter?       // [OC]
    public let beta: Parameter?        // [OC]
    public let running: RunningStatistics
    public var runningMean: Tensor { running.mean }     // [OC]
    public var runningVar: Tensor { running.variance }  // [OC]
    public var batchesTracked: Int {
        get { running.batchesTracked }
        set { running.batchesTracked = newValue }
    }
    /// What follows batch norm: the model's activation, or identity for a
    /// block's last unit when attention follows it.
    public let activation: Nonlinearity
    /// True for the last unit of a block whose shortcut (h1, or the
    /// projection) it adds before its activation (no attention in between).
    public let addsResidual: Bool
    /// The eval forward's Winograd kernel, reused while the weights stay the
    /// same (training changes them every step: no cache there).
    let kernelCache = WinogradKernelCache()

    // Activations for the current batch capacity.
    var c = Tensor([0])            // [N, H, W, OC] conv output
    var dc = Tensor([0])           // [N, H, W, OC] gradient of the conv output
    public internal(set) var a = Tensor([0])  // [N, H, W, OC] unit output (Grad-CAM reads it)
    public internal(set) var da = Tensor([0]) // [N, H, W, OC] gradient of the unit output
    var z = Tensor([0])            // [N, H, W, OC] the activation's input, kept for SiLU only
    /// [N, H, W, OC] for an activation other than ReLU (and identity): the
    /// gradient at its input, which batch norm's backward reads (`da` stays
    /// the unit output's gradient, `z` the forward's, for a second backward).
    var dz = Tensor([0])
    var t = Tensor([0])            // [N, H, W, C] depthwise output (separable)
    var dt = Tensor([0])           // [N, H, W, C] its gradient
    let mean: Tensor, rstd: Tensor // [OC]
    let evalScale: Tensor, evalShift: Tensor // [OC] batch norm folded into the conv (eval)
    /// False after an eval forward, which writes `a` straight from the
    /// conv (batch norm folded in) and leaves `c` stale; a backward that
    /// needs `c` recomputes it.
    var cHoldsConv = false

    init(block: Int, index: Int, C: Int, OC: Int, H: Int, W: Int, kernel: Int, separable: Bool, batchNorm: Bool,
         activation: Nonlinearity, addsResidual: Bool) {
        name = "block\(block).conv\(index)"
        bnName = "block\(block).bn\(index)"
        self.C = C; self.OC = OC; self.H = H; self.W = W; self.kernel = kernel
        if separable {
            depthwise = Parameter("\(name).depthwise.weight", [kernel * kernel, C], layout: .depthwise(k: kernel, C: C),
                                  fanIn: kernel * kernel)
            weight = .conv("\(name).pointwise.weight", k: 1, C: C, OC: OC)
            bias = batchNorm ? nil : Parameter("\(name).pointwise.bias", [OC])
        } else {
            depthwise = nil
            weight = .conv("\(name).weight", k: kernel, C: C, OC: OC)
            bias = batchNorm ? nil : Parameter("\(name).bias", [OC])
        }
        gamma = batchNorm ? Parameter("\(bnName).weight", [OC]) : nil
        beta = batchNorm ? Parameter("\(bnName).bias", [OC]) : nil
        running = RunningStatistics(bnName, C: OC)
        mean = Tensor([OC]); rstd = Tensor([OC])
        evalScale = Tensor([OC]); evalShift = Tensor([OC])
        self.activation = activation
        self.addsResidual = addsResidual
    }

    var parameters: [Parameter] { [depthwise, weight, bias, gamma, beta].compactMap { $0 } }

    /// Eval may fold batch norm into the convolution (one pass writes `a`):
    /// a standard convolution followed by ReLU or nothing.
    var foldsBatchNormInEval: Bool { gamma != nil && depthwise == nil && (activation == .relu || activation == .identity) }

    func allocate(batch N: Int) {
        c = Tensor([N, H, W, OC], zero: false)
        a = Tensor([N, H, W, OC], zero: false)
        da = Tensor([N, H, W, OC], zero: false)
        dc = Tensor([N, H, W, OC], zero: false)
        if activation.needsInput { z = Tensor([N, H, W, OC], zero: false) }
        if activation != .relu && activation != .identity { dz = Tensor([N, H, W, OC], zero: false) }
        if depthwise != nil { t = Tensor([N, H, W, C], zero: false); dt = Tensor([N, H, W, C], zero: false) }
    }
}

/// The projection shortcut bn(conv1x1(x)) from the block's input (He et al.
/// 2016, option B); without batch norm, conv1x1(x) + bias.
public final class ProjectionShortcut {
    public let name: String          // "block1.shortcut"
    public let C: Int, OC: Int
    public let weight: Parameter     // [C, OC]
    public let bias: Parameter?      // [OC], only without batch norm
    public let bn: BatchNormLayer?
    var c = Tensor([0]), dc = Tensor([0])   // [N, H, W, OC] conv output and its gradient
    var s = Tensor([0]), ds = Tensor([0])   // [N, H, W, OC] the shortcut and its gradient (with batch norm)

    init(block: Int, C: Int, OC: Int, batchNorm: Bool) {
        name = "block\(block).shortcut"
        self.C = C; self.OC = OC
        weight = .conv("\(name).conv.weight", k: 1, C: C, OC: OC)
        bias = batchNorm ? nil : Parameter("\(name).conv.bias", [OC])
        bn = batchNorm ? BatchNormLayer("\(name).bn", C: OC) : nil
    }

    var parameters: [Parameter] { [weight, bias].compactMap { $0 } + (bn?.parameters ?? []) }

    /// The value added to the block: bn's output, or the conv's (with its bias).
    var output: Tensor { bn == nil ? c : s }
    /// Its gradient, written by whatever adds the shortcut.
    var doutput: Tensor { bn == nil ? dc : ds }

    func allocate(batch N: Int, H: Int, W: Int) {
        c = Tensor([N, H, W, OC], zero: false); dc = Tensor([N, H, W, OC], zero: false)
        if bn != nil { s = Tensor([N, H, W, OC], zero: false); ds = Tensor([N, H, W, OC], zero: false) }
    }
}

/// Squeeze-and-excitation's MLP and buffers (SqueezeExcitation.swift).
public final class SqueezeExcitationLayer {
    public let name: String          // "block1.se"
    public let C: Int, R: Int, H: Int, W: Int
    public let fc1w: Parameter, fc1b: Parameter  // [R, C], [R]
    public let fc2w: Parameter, fc2b: Parameter  // [C, R], [C]
    var pooled = Tensor([0]), gate = Tensor([0])  // [N, C]
    var hidden = Tensor([0])                      // [N, R]

    init(block: Int, C: Int, R: Int, H: Int, W: Int) {
        name = "block\(block).se"
        self.C = C; self.R = R; self.H = H; self.W = W
        fc1w = Parameter("\(name).fc1.weight", [R, C], fanIn: C); fc1b = Parameter("\(name).fc1.bias", [R])
        fc2w = Parameter("\(name).fc2.weight", [C, R], fanIn: R); fc2b = Parameter("\(name).fc2.bias", [C])
    }

    var parameters: [Parameter] { [fc1w, fc1b, fc2w, fc2b] }

    func allocate(batch N: Int) {
        pooled = Tensor([N, C]); gate = Tensor([N, C]); hidden = Tensor([N, R])
    }
}

/// Indices (argmax positions) for the max pools of CBAM.
final class IndexBuffer {
    let data: UnsafeMutablePointer<Int32>
    init(_ count: Int) { data = .allocate(capacity: max(1, count)); data.initialize(repeating: 0, count: max(1, count)) }
    deinit { data.deallocate() }
}

/// CBAM's channel MLP, spatial convolution and batch norm, and buffers (CBAM.swift).
public final class CBAMLayer {
    public let name: String          // "block1.cbam"
    public let C: Int, R: Int, H: Int, W: Int
    public let fc1w: Parameter, fc1b: Parameter  // [R, C], [R]
    public let fc2w: Parameter, fc2b: Parameter  // [C, R], [C]
    public let spatialWeight: Parameter          // [1, 2, 7, 7], PyTorch layout
    public let spatialBias: Parameter?           // [1], only without batch norm
    public let spatialBN: BatchNormLayer?        // one channel
    var pools = Tensor([0]), mlp = Tensor([0])   // [2N, C]
    var hidden = Tensor([0])                     // [2N, R]
    var gate = Tensor([0])                       // [N, C] channel gate
    var planes = Tensor([0])                     // [N, 2, H+6, W+6], borders stay zero
    var sconv = Tensor([0]), sgate = Tensor([0]) // [N, H, W] spatial conv output and gate
    var maxPixel = IndexBuffer(0)                // [N, C]
    var maxChannel = IndexBuffer(0)              // [N, H, W]

    init(block: Int, C: Int, R: Int, H: Int, W: Int, batchNorm: Bool) {
        name = "block\(block).cbam"
        self.C = C; self.R = R; self.H = H; self.W = W
        fc1w = Parameter("\(name).fc1.weight", [R, C], fanIn: C); fc1b = Parameter("\(name).fc1.bias", [R])
        fc2w = Parameter("\(name).fc2.weight", [C, R], fanIn: R); fc2b = Parameter("\(name).fc2.bias", [C])
        spatialWeight = Parameter("\(name).spatial.conv.weight", [1, 2, 7, 7], fanIn: 98)
        spatialBias = batchNorm ? nil : Parameter("\(name).spatial.conv.bias", [1])
        spatialBN = batchNorm ? BatchNormLayer("\(name).spatial.bn", C: 1) : nil
    }

    var parameters: [Parameter] {
        [fc1w, fc1b, fc2w, fc2b, spatialWeight] + [spatialBias].compactMap { $0 } + (spatialBN?.parameters ?? [])
    }

    func allocate(batch N: Int) {
        pools = Tensor([2 * N, C]); mlp = Tensor([2 * N, C]); hidden = Tensor([2 * N, R]); gate = Tensor([N, C])
        planes = Tensor([N, 2, H + 6, W + 6])
        sconv = Tensor([N, H, W]); sgate = Tensor([N, H, W])
        maxPixel = IndexBuffer(N * C); maxChannel = IndexBuffer(N * H * W)
    }
}

/// One block: its convolutions, the projection shortcut and the attention
/// when the configuration has them, and its output.
public final class Block {
    public let name: String          // "block1"
    public let H: Int, W: Int, C: Int, OC: Int
    public let units: [ConvUnit]
    public let shortcut: ProjectionShortcut?
    public let se: SqueezeExcitationLayer?
    public let cbam: CBAMLayer?
    /// The last unit adds h1 = units[0].a (skip, inner, k >= 2).
    public let innerSkip: Bool
    /// The block's activation (after attention and the shortcut).
    let activation: Nonlinearity

    // With attention, the block's output is its own: act(attention(y) + s).
    var attended = Tensor([0]), dattended = Tensor([0])  // [N, H, W, OC]
    var z = Tensor([0])                                   // [N, H, W, OC] act's input, SiLU only
    var dv = Tensor([0])                                  // [N, H, W, OC] gradient of act's input

    init(index b: Int, config: ModelConfig, C: Int, H: Int) {
        let width = config.widths[b], k = config.convsPerBlock[b]
        name = "block\(b + 1)"
        self.H = H; W = H; self.C = C; OC = width
        let attention = config.attention != .none
        let projection = config.skip && config.shortcut == .projection
        let innerSkip = config.innerSkip(block: b)
        self.innerSkip = innerSkip
        activation = Nonlinearity(config.activation)
        units = (0..<k).map { j in
            ConvUnit(block: b + 1, index: j + 1, C: j == 0 ? C : width, OC: width, H: H, W: H, kernel: config.kernel,
                     separable: config.conv == .separable, batchNorm: config.batchNorm,
                     activation: j == k - 1 && attention ? .identity : Nonlinearity(config.activation),
                     addsResidual: j == k - 1 && !attention && (innerSkip || projection))
        }
        shortcut = projection ? ProjectionShortcut(block: b + 1, C: C, OC: width, batchNorm: config.batchNorm) : nil
        let R = config.attentionUnits(width)
        se = config.attention == .se ? SqueezeExcitationLayer(block: b + 1, C: width, R: R, H: H, W: H) : nil
        cbam = config.attention == .cbam ? CBAMLayer(block: b + 1, C: width, R: R, H: H, W: H, batchNorm: config.batchNorm) : nil
    }

    var hasAttention: Bool { se != nil || cbam != nil }

    /// The block's output: the last unit's activation, or attention's.
    public var out: Tensor { hasAttention ? attended : units.last!.a }
    /// Its gradient (written by the pool's backward, or the head's for the last block).
    public var dout: Tensor { hasAttention ? dattended : units.last!.da }

    var parameters: [Parameter] {
        units.flatMap(\.parameters) + (shortcut?.parameters ?? []) + (se?.parameters ?? []) + (cbam?.parameters ?? [])
    }

    /// Every batch norm's running statistics, in state_dict order.
    var runningStatistics: [RunningStatistics] {
        units.map(\.running) + [shortcut?.bn?.running, cbam?.spatialBN?.running].compactMap { $0 }
    }

    func allocate(batch N: Int) {
        for u in units { u.allocate(batch: N) }
        shortcut?.allocate(batch: N, H: H, W: W)
        se?.allocate(batch: N)
        cbam?.allocate(batch: N)
        if hasAttention {
            attended = Tensor([N, H, W, OC], zero: false); dattended = Tensor([N, H, W, OC], zero: false)
            dv = Tensor([N, H, W, OC], zero: false)
            if activation.needsInput { z = Tensor([N, H, W, OC], zero: false) }
        }
    }
}
