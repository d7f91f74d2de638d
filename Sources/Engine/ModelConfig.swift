/// The architecture of DESIGN.md §2, parameterized for the ablations.
public struct ModelConfig: Codable, Equatable, Hashable, Sendable {
    public var widths: [Int] = [32, 64, 128]
    public var convsPerBlock: [Int] = [2, 2, 3]
    public var skip = true
    public var batchNorm = true
    public var hidden = 64
    public var dropout: Float = 0.5
    public var classes = 6

    public init() {}

    public init(widths: [Int] = [32, 64, 128], convsPerBlock: [Int] = [2, 2, 3], skip: Bool = true,
                batchNorm: Bool = true, hidden: Int = 64, dropout: Float = 0.5, classes: Int = 6) {
        self.widths = widths; self.convsPerBlock = convsPerBlock; self.skip = skip
        self.batchNorm = batchNorm; self.hidden = hidden; self.dropout = dropout; self.classes = classes
    }

    enum CodingKeys: String, CodingKey {
        case widths, convsPerBlock = "convs_per_block", skip, batchNorm = "batch_norm", hidden, dropout, classes
    }

    /// Problems with this configuration, as "key: reason" lines (empty if valid).
    public func problems(imageSize: Int) -> [String] {
        var p = [String]()
        if widths.isEmpty { p.append("widths: needs at least one block") }
        if widths.contains(where: { $0 < 1 }) { p.append("widths: every width must be >= 1") }
        if convsPerBlock.count != widths.count {
            p.append("convs_per_block: has \(convsPerBlock.count) entries but widths has \(widths.count)")
        }
        if convsPerBlock.contains(where: { $0 < 1 }) { p.append("convs_per_block: every block needs >= 1 convolution") }
        if hidden < 1 { p.append("hidden: must be >= 1") }
        if !(0..<1).contains(dropout) { p.append("dropout: must be in [0, 1)") }
        if classes < 2 { p.append("classes: must be >= 2") }
        let pools = max(0, widths.count - 1)
        if imageSize < 1 || imageSize % (1 << pools) != 0 {
            p.append("image_size: \(imageSize) is not divisible by 2^\(pools) (one 2x2 pool after each block but the last)")
        }
        return p
    }

    /// Forward FLOPs per image (multiply-add = 2), convolutions and dense layers.
    public func forwardFLOPs(imageSize: Int) -> Double {
        var flops = 0.0, s = imageSize, c = 3
        for (b, w) in widths.enumerated() {
            for _ in 0..<convsPerBlock[b] {
                flops += 2 * Double(s * s * 9 * c * w)
                c = w
            }
            if b < widths.count - 1 { s /= 2 }
        }
        flops += 2 * Double(c * hidden + hidden * classes)
        return flops
    }
}
