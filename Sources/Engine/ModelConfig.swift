/// The architecture of the README's model section, parameterized for the ablations, and
/// the vocabulary of §9 (activation, pooling, kernel size, separable
/// convolutions, projection shortcuts, attention). Every key added for §9
/// defaults to today's network, and decoding a configuration written before
/// it existed (a checkpoint's `lab.model`) gives those defaults, so stored
/// checkpoints build the network they were trained as.
///
/// The block, for k = convs_per_block[b] convolutions:
///
///     h1  = act(bn1(conv1(x)))
///     h   = act(bn_i(conv_i(h)))     for 1 < i < k, starting from h = h1
///     y   = bn_k(conv_k(h))          (k = 1: y = bn1(conv1(x)))
///     y   = attention(y)
///     out = act(y + s)               s = h1 (skip, inner; k >= 2) | bn(conv1x1(x)) (skip, projection) | nothing
///
/// With k = 1, no attention and no projection this is out = act(bn1(conv1(x))).
public struct ModelConfig: Codable, Equatable, Hashable, Sendable {
    /// Everywhere the network applies a nonlinearity (blocks and head).
    public enum Activation: String, Codable, CaseIterable, Sendable {
        case relu
        case leakyReLU = "leaky_relu"   // slope 0.01
        case elu                        // alpha 1
        case silu
    }
    /// The 2x2 pool after every block but the last.
    public enum Pooling: String, Codable, CaseIterable, Sendable { case max, avg }
    /// separable: depthwise k x k (no bias) then pointwise 1x1, nothing between.
    public enum Convolution: String, Codable, CaseIterable, Sendable { case standard, separable }
    /// With skip on: inner adds h1 (identity from the block's first
    /// activation), projection adds bn(conv1x1(x)) from the block's input.
    public enum Shortcut: String, Codable, CaseIterable, Sendable { case inner, projection }
    /// On the block's last convolution, after its batch norm, before the shortcut.
    public enum Attention: String, Codable, CaseIterable, Sendable { case none, se, cbam }

    public var widths: [Int] = [32, 64, 128]
    public var convsPerBlock: [Int] = [2, 2, 3]
    public var skip = true
    public var batchNorm = true
    /// Units of fc1; 0: no fc1, dropout then fc2 on the pooled features.
    public var hidden = 64
    public var dropout: Float = 0.5
    public var classes = 6
    public var activation = Activation.relu
    public var pool = Pooling.max
    /// Square kernels, padding kernel / 2: 3 or 5.
    public var kernel = 3
    public var conv = Convolution.standard
    public var shortcut = Shortcut.inner
    public var attention = Attention.none
    /// Hidden units of the attention MLP: max(1, C / r), integer division.
    public var attentionReduction = 16

    public static let kernels = [3, 5]

    public init() {}

    public init(widths: [Int] = [32, 64, 128], convsPerBlock: [Int] = [2, 2, 3], skip: Bool = true,
                batchNorm: Bool = true, hidden: Int = 64, dropout: Float = 0.5, classes: Int = 6,
                activation: Activation = .relu, pool: Pooling = .max, kernel: Int = 3, conv: Convolution = .standard,
                shortcut: Shortcut = .inner, attention: Attention = .none, attentionReduction: Int = 16) {
        self.widths = widths; self.convsPerBlock = convsPerBlock; self.skip = skip
        self.batchNorm = batchNorm; self.hidden = hidden; self.dropout = dropout; self.classes = classes
        self.activation = activation; self.pool = pool; self.kernel = kernel; self.conv = conv
        self.shortcut = shortcut; self.attention = attention; self.attentionReduction = attentionReduction
    }

    enum CodingKeys: String, CodingKey {
        case widths, convsPerBlock = "convs_per_block", skip, batchNorm = "batch_norm", hidden, dropout, classes
        case activation, pool, kernel, conv, shortcut, attention, attentionReduction = "attention_reduction"
    }

    /// Keys absent from the JSON keep their defaults: a `lab.model` written
    /// before a key existed decodes to the network it was.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ModelConfig()
        widths = try c.decodeIfPresent([Int].self, forKey: .widths) ?? d.widths
        convsPerBlock = try c.decodeIfPresent([Int].self, forKey: .convsPerBlock) ?? d.convsPerBlock
        skip = try c.decodeIfPresent(Bool.self, forKey: .skip) ?? d.skip
        batchNorm = try c.decodeIfPresent(Bool.self, forKey: .batchNorm) ?? d.batchNorm
        hidden = try c.decodeIfPresent(Int.self, forKey: .hidden) ?? d.hidden
        dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? d.dropout
        classes = try c.decodeIfPresent(Int.self, forKey: .classes) ?? d.classes
        activation = try c.decodeIfPresent(Activation.self, forKey: .activation) ?? d.activation
        pool = try c.decodeIfPresent(Pooling.self, forKey: .pool) ?? d.pool
        kernel = try c.decodeIfPresent(Int.self, forKey: .kernel) ?? d.kernel
        conv = try c.decodeIfPresent(Convolution.self, forKey: .conv) ?? d.conv
        shortcut = try c.decodeIfPresent(Shortcut.self, forKey: .shortcut) ?? d.shortcut
        attention = try c.decodeIfPresent(Attention.self, forKey: .attention) ?? d.attention
        attentionReduction = try c.decodeIfPresent(Int.self, forKey: .attentionReduction) ?? d.attentionReduction
    }

    /// Hidden units of a block's attention MLP at C channels.
    public func attentionUnits(_ C: Int) -> Int { max(1, C / attentionReduction) }

    /// True when block b's last convolution adds h1 (the inner identity skip).
    public func innerSkip(block b: Int) -> Bool { skip && shortcut == .inner && convsPerBlock[b] >= 2 }

    /// Problems with this configuration, as "key: reason" lines (empty if
    /// valid). A combination names both keys; `image_size` is the dataset's.
    public func problems(imageSize: Int) -> [String] {
        var p = [String]()
        if widths.isEmpty { p.append("widths: needs at least one block") }
        if widths.contains(where: { $0 < 1 }) { p.append("widths: every width must be >= 1") }
        if convsPerBlock.count != widths.count {
            p.append("convs_per_block: has \(convsPerBlock.count) entries but widths has \(widths.count)")
        }
        if convsPerBlock.contains(where: { $0 < 1 }) { p.append("convs_per_block: every block needs >= 1 convolution") }
        if hidden < 0 { p.append("hidden: must be >= 0 (0: no fc1)") }
        if !(0..<1).contains(dropout) { p.append("dropout: must be in [0, 1)") }
        if classes < 2 { p.append("classes: must be >= 2") }
        if !Self.kernels.contains(kernel) {
            p.append("kernel: must be one of \(Self.kernels.map(String.init).joined(separator: ", ")), got \(kernel)")
        }
        if attentionReduction < 1 { p.append("attention_reduction: must be >= 1") }
        if shortcut == .projection && !skip {
            p.append("shortcut: projection adds a shortcut, but skip is false (set skip true, or shortcut inner)")
        }
        if attention == .none && attentionReduction != ModelConfig().attentionReduction {
            p.append("attention_reduction: applies to attention se or cbam, but attention is none")
        }
        let pools = max(0, widths.count - 1)
        if imageSize < 1 || imageSize % (1 << pools) != 0 {
            p.append("image_size: \(imageSize) is not divisible by 2^\(pools) = \(1 << pools): widths has \(widths.count) blocks, "
                     + "with a 2x2 pool after each but the last")
        }
        return p
    }

    /// Forward FLOPs per image (multiply-add = 2) of the convolutions
    /// (depthwise, pointwise, projection and CBAM's spatial one included)
    /// and the dense layers (head and attention MLPs); elementwise work
    /// (batch norm, activations, pooling, gating) is not counted.
    public func forwardFLOPs(imageSize: Int) -> Double {
        var macs = 0.0, s = imageSize, c = 3
        let kk = Double(kernel * kernel)
        for (b, w) in widths.enumerated() {
            let pixels = Double(s * s)
            if skip && shortcut == .projection { macs += pixels * Double(c * w) }
            for _ in 0..<convsPerBlock[b] {
                switch conv {
                case .standard: macs += pixels * kk * Double(c * w)
                case .separable: macs += pixels * (kk * Double(c) + Double(c * w))
                }
                c = w
            }
            let r = Double(attentionUnits(w))
            switch attention {
            case .none: break
            case .se: macs += 2 * Double(w) * r
            case .cbam: macs += 2 * (2 * Double(w) * r) + pixels * 2 * 49
            }
            if b < widths.count - 1 { s /= 2 }
        }
        macs += hidden > 0 ? Double(c * hidden + hidden * classes) : Double(c * classes)
        return 2 * macs
    }
}

extension ModelConfig {
    /// The layers Grad-CAM can explain, block by block in forward order:
    /// each convolution's unit ("block1.conv1": its activation, or with
    /// attention after it the last one's batch-normed output; a separable
    /// convolution is one unit), the projection shortcut's output
    /// ("block1.shortcut") and the block's output ("block1": after attention,
    /// the shortcut and the activation, what the pool or the head reads).
    public var explainableLayers: [String] {
        convsPerBlock.enumerated().flatMap { b, k in
            (1...max(1, k)).map { "block\(b + 1).conv\($0)" }
                + (skip && shortcut == .projection ? ["block\(b + 1).shortcut"] : [])
                + ["block\(b + 1)"]
        }
    }
}
