import Foundation

// Adam with optional decoupled weight decay (AdamW; Loshchilov & Hutter),
// bit-for-bit the update of torch.optim.AdamW:
//   p -= lr * wd * p
//   m = b1 m + (1-b1) g ;  v = b2 v + (1-b2) g^2
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

public struct AdamConfig: Codable, Equatable, Sendable {
    public var lr: Float = 3e-4
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var eps: Float = 1e-8
    public var weightDecay: Float = 0
    public init(lr: Float = 3e-4, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0) {
        self.lr = lr; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
    }
}

public final class Adam {
    public var config: AdamConfig
    public private(set) var step: Int = 0
    /// First and second moments, one pair per parameter, in parameter order.
    public let m: [Tensor]
    public let v: [Tensor]
    let params: [Parameter]

    public init(parameters: [Parameter], config: AdamConfig) {
        self.config = config
        params = parameters
        m = parameters.map { Tensor($0.value.shape) }
        v = parameters.map { Tensor($0.value.shape) }
    }

    /// Restores the state saved by a checkpoint (resume).
    public func restore(step: Int) { self.step = step }

    public func update() {
        step += 1
        let c = config
        let bc1 = 1 - Foundation.pow(Double(c.beta1), Double(step))
        let bc2 = 1 - Foundation.pow(Double(c.beta2), Double(step))
        let stepSize = Float(Double(c.lr) / bc1)
        let bc2Sqrt = Float(bc2.squareRoot())
        let decay = 1 - c.lr * c.weightDecay
        for (i, p) in params.enumerated() {
            let w = p.value.data, g = p.grad.data, mi = m[i].data, vi = v[i].data
            let b1 = c.beta1, b2 = c.beta2, eps = c.eps
            for j in 0..<p.value.count {
                let gj = g[j]
                mi[j] = b1 * mi[j] + (1 - b1) * gj
                vi[j] = b2 * vi[j] + (1 - b2) * gj * gj
                w[j] = w[j] * decay - stepSize * mi[j] / (vi[j].squareRoot() / bc2Sqrt + eps)
            }
        }
    }
}

