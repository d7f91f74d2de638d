import Engine
import LabRandom

/// Cascading randomization (Adebayo et al. 2018): maps of a model whose
/// layers are re-initialized from the top down must stop resembling the
/// trained model's, or they show the input rather than what was learned.
public enum CascadingRandomization {
    public struct Result {
        /// Per method, the mean rank correlation with the trained maps after
        /// each stage (fc2, fc1, then block by block from the top: attention,
        /// the projection shortcut, the convolutions from the last) is re-initialized.
        public var correlations: [String: [(String, Double)]]
        /// The fully re-initialized model: an untrained one, whose maps say
        /// what training added.
        public var untrained: Model
        public var untrainedMaps: [CAMMethod: [[Float]]]
    }

    /// `copy` is re-initialized in place, so pass a copy of the trained model;
    /// x holds N images [N, S, S, 3] and trainedMaps at least N maps per method.
    public static func run(copy: Model, layer: String, x: UnsafePointer<Float>, N: Int, targets: [Int],
                           trainedMaps: [CAMMethod: [[Float]]], methods: [CAMMethod]) throws -> Result {
        let ex = try Explainer(model: copy, layer: layer)
        var correlations = [String: [(String, Double)]]()
        var r = RNG(seed: 23)
        for (name, params) in stages(copy) {
            for p in params { reinitialize(p, rng: &r) }
            let res = ex.explain(x, N: N, targets: targets, methods: methods)
            for m in methods {
                let c = (0..<N).map { Double(Localization.spearman(trainedMaps[m]![$0], res.maps[m]![$0])) }.reduce(0, +) / Double(N)
                correlations[m.rawValue, default: []].append((name, c))
            }
        }
        let untrained = ex.explain(x, N: N, targets: targets, methods: methods)
        return Result(correlations: correlations, untrained: copy, untrainedMaps: untrained.maps)
    }

    /// The layers with weights from the top down, each with its weights and
    /// biases (batch norm's scale and shift stay): the head, then per block
    /// from the last, its attention, its projection shortcut and its
    /// convolutions from the last (a separable one's depthwise and pointwise
    /// weights together).
    public static func stages(_ m: Model) -> [(String, [Parameter])] {
        var s: [(String, [Parameter])] = [("fc2", [m.fc2w, m.fc2b])]
        if let w = m.fc1w, let b = m.fc1b { s.append(("fc1", [w, b])) }
        for block in m.blocks.reversed() {
            if let se = block.se { s.append((se.name, [se.fc1w, se.fc1b, se.fc2w, se.fc2b])) }
            if let cb = block.cbam {
                s.append((cb.name, [cb.fc1w, cb.fc1b, cb.fc2w, cb.fc2b, cb.spatialWeight] + [cb.spatialBias].compactMap { $0 }))
            }
            if let sc = block.shortcut { s.append((sc.name, [sc.weight] + [sc.bias].compactMap { $0 })) }
            for u in block.units.reversed() { s.append((u.name, [u.depthwise, u.weight, u.bias].compactMap { $0 })) }
        }
        return s
    }

    /// He-normal by fan-in; a bias (no fan-in) gets a small fixed spread.
    static func reinitialize(_ p: Parameter, rng r: inout RNG) {
        let std: Float = p.fanIn > 0 ? (2 / Float(p.fanIn)).squareRoot() : 0.1
        for j in 0..<p.value.count { p.value[j] = std * r.normal() }
    }
}
