// An exponential moving average of the weights (Polyak averaging as in
// TensorFlow's ExponentialMovingAverage and timm's ModelEma): evaluated and
// checkpointed in place of the raw weights, which keep training.
//   d_t = min(decay, (1 + t) / (10 + t))      t = updates so far
//   avg = d_t * avg + (1 - d_t) * w
// The warm-up of d_t keeps the first epochs' average from being mostly the
// initial weights. Running statistics of batch norm are averaged the same
// way, so the averaged model's normalization matches its weights.

public final class WeightAverage {
    public let decay: Float
    public private(set) var updates = 0
    /// The model's tensors (parameter values, then running statistics) and their names.
    let live: [Tensor]
    public let names: [String]
    /// The average while the model holds the live weights; the live weights while swapped.
    let held: [Tensor]
    public private(set) var swapped = false

    /// Starts the average at the model's current values.
    public init(model: Model, decay: Float) {
        self.decay = decay
        let tensors = model.parameters.map { ($0.name, $0.value) } + model.runningStatistics.map { ($0.name, $0.tensor) }
        names = tensors.map(\.0)
        live = tensors.map(\.1)
        held = live.map { t in
            let c = Tensor(t.shape, zero: false)
            c.data.update(from: t.data, count: t.count)
            return c
        }
    }

    /// Folds the model's current values into the average (after each optimizer step).
    public func update() {
        precondition(!swapped, "update while the model holds the average")
        let d = min(decay, Float(1 + updates) / Float(10 + updates)), e = 1 - d
        updates += 1
        for (a, w) in zip(held, live) {
            let ap = a.data, wp = w.data
            for j in 0..<a.count { ap[j] = d * ap[j] + e * wp[j] }
        }
    }

    /// Exchanges the model's values with the held ones: once to evaluate or
    /// save the average, again to go back to training.
    public func swap() {
        for (a, w) in zip(held, live) {
            let ap = a.data, wp = w.data
            for j in 0..<a.count { let t = ap[j]; ap[j] = wp[j]; wp[j] = t }
        }
        swapped.toggle()
    }

    /// What the model does not hold now, by name (engine layout), and the update count: with the
    /// model's own checkpoint, all that resuming needs.
    public func heldState() -> (tensors: [String: SafeTensor], updates: Int) {
        (Dictionary(uniqueKeysWithValues: zip(names, held).map { ($0, SafeTensor(shape: $1.shape, floats: $1.array)) }), updates)
    }

    /// Restores what `heldState` saved from a model that held the other half.
    public func restore(held tensors: [String: SafeTensor], updates: Int, swapped: Bool) throws {
        for (name, h) in zip(names, held) {
            guard let t = tensors[name] else { throw SafetensorsError.missing(name) }
            guard t.shape == h.shape else { throw SafetensorsError.mismatch("\(name) shape \(t.shape), model wants \(h.shape)") }
            let f = t.floats
            for j in 0..<f.count { h[j] = f[j] }
        }
        self.updates = updates
        self.swapped = swapped
    }
}
