/// A trainable tensor with its gradient and its PyTorch state_dict name.
public final class Parameter {
    public enum Layout: Sendable {
        /// Engine [9*C, OC] ((ky, kx, c) rows); PyTorch [OC, C, 3, 3].
        case conv3x3(C: Int, OC: Int)
        /// Same layout in both.
        case plain
    }

    public let name: String
    public let value: Tensor
    public let grad: Tensor
    public let layout: Layout

    public init(_ name: String, _ shape: [Int], layout: Layout = .plain) {
        self.name = name
        value = Tensor(shape)
        grad = Tensor(shape)
        self.layout = layout
    }

    /// Shape of this tensor in a PyTorch state_dict.
    public var torchShape: [Int] {
        switch layout {
        case .plain: return value.shape
        case let .conv3x3(C, OC): return [OC, C, 3, 3]
        }
    }

    /// Values in PyTorch layout.
    public func torchValues() -> [Float] { torchLayout(value) }

    /// Gradient in PyTorch layout (tests compare against PyTorch's).
    public func torchGrad() -> [Float] { torchLayout(grad) }

    private func torchLayout(_ t: Tensor) -> [Float] {
        switch layout {
        case .plain: return t.array
        case let .conv3x3(C, OC):
            var out = [Float](repeating: 0, count: t.count)
            for oc in 0..<OC { for c in 0..<C { for k in 0..<9 {
                out[(oc * C + c) * 9 + k] = t[(k * C + c) * OC + oc]
            } } }
            return out
        }
    }

    /// Sets values from PyTorch layout.
    public func setTorchValues(_ v: [Float]) {
        precondition(v.count == value.count)
        switch layout {
        case .plain: for i in 0..<v.count { value[i] = v[i] }
        case let .conv3x3(C, OC):
            for oc in 0..<OC { for c in 0..<C { for k in 0..<9 {
                value[(k * C + c) * OC + oc] = v[(oc * C + c) * 9 + k]
            } } }
        }
    }
}
