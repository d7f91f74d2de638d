/// A trainable tensor with its gradient and its PyTorch state_dict name.
public final class Parameter {
    public enum Layout: Sendable, Equatable {
        /// A k x k convolution (k = 1: pointwise). Engine [k*k*C, OC]
        /// ((ky, kx, c) rows); PyTorch [OC, C, k, k].
        case conv(k: Int, C: Int, OC: Int)
        /// A depthwise k x k convolution. Engine [k*k, C]; PyTorch [C, 1, k, k].
        case depthwise(k: Int, C: Int)
        /// Same layout in both.
        case plain
    }

    public let name: String
    public let value: Tensor
    public let grad: Tensor
    public let layout: Layout
    /// Inputs per output of the layer this weight belongs to (PyTorch's
    /// fan_in: k*k*C for a convolution, k*k for a depthwise one, IN for a
    /// dense layer); 0 for biases and batch norm.
    public let fanIn: Int

    public init(_ name: String, _ shape: [Int], layout: Layout = .plain, fanIn: Int = 0) {
        self.name = name
        value = Tensor(shape)
        grad = Tensor(shape)
        self.layout = layout
        self.fanIn = fanIn
    }

    /// A convolution's weight, engine layout [k*k*C, OC].
    static func conv(_ name: String, k: Int, C: Int, OC: Int) -> Parameter {
        Parameter(name, [k * k * C, OC], layout: .conv(k: k, C: C, OC: OC), fanIn: k * k * C)
    }

    /// Shape of this tensor in a PyTorch state_dict.
    public var torchShape: [Int] {
        switch layout {
        case .plain: return value.shape
        case let .conv(k, C, OC): return [OC, C, k, k]
        case let .depthwise(k, C): return [C, 1, k, k]
        }
    }

    /// Values in PyTorch layout.
    public func torchValues() -> [Float] { torchLayout(value) }

    /// Gradient in PyTorch layout (tests compare against PyTorch's).
    public func torchGrad() -> [Float] { torchLayout(grad) }

    /// (engine index, PyTorch index) of every element.
    private func forEachIndex(_ body: (Int, Int) -> Void) {
        switch layout {
        case .plain: for i in 0..<value.count { body(i, i) }
        case let .conv(k, C, OC):
            let taps = k * k
            for oc in 0..<OC { for c in 0..<C { for t in 0..<taps { body((t * C + c) * OC + oc, (oc * C + c) * taps + t) } } }
        case let .depthwise(k, C):
            let taps = k * k
            for c in 0..<C { for t in 0..<taps { body(t * C + c, c * taps + t) } }
        }
    }

    private func torchLayout(_ t: Tensor) -> [Float] {
        var out = [Float](repeating: 0, count: t.count)
        forEachIndex { e, p in out[p] = t[e] }
        return out
    }

    /// Sets values from PyTorch layout.
    public func setTorchValues(_ v: [Float]) {
        precondition(v.count == value.count)
        forEachIndex { e, p in value[e] = v[p] }
    }

    /// Sets the gradient from PyTorch layout (tests step an optimizer on PyTorch's).
    public func setTorchGrad(_ g: [Float]) {
        precondition(g.count == grad.count)
        forEachIndex { e, p in grad[e] = g[p] }
    }
}
