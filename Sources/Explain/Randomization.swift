import Engine
import LabRandom

/// Cascading randomization (Adebayo et al. 2018): maps of a model whose
/// layers are re-initialized from the top down must stop resembling the
/// trained model's, or they show the input rather than what was learned.
public enum CascadingRandomization {
    public struct Result {
        /// Per method, the mean rank correlation with the trained maps after
        /// each stage (fc2, fc1, then convolutions from the top) is re-initialized.
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
        let stages: [(String, [Parameter])] = [("fc2", [copy.fc2w, copy.fc2b]), ("fc1", [copy.fc1w, copy.fc1b])]
            + copy.units.reversed().map { ($0.name, [$0.weight] + [$0.bias].compactMap { $0 }) }
        let ex = try Explainer(model: copy, layer: layer)
        var correlations = [String: [(String, Double)]]()
        var r = RNG(seed: 23)
        for (name, params) in stages {
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

    /// He-normal by fan-in; a bias (no fan-in) gets a small fixed spread.
    static func reinitialize(_ p: Parameter, rng r: inout RNG) {
        let fanIn = p.layout.isConv ? p.value.shape[0] : (p.value.shape.count == 2 ? p.value.shape[1] : 0)
        let std: Float = fanIn > 0 ? (2 / Float(fanIn)).squareRoot() : 0.1
        for j in 0..<p.value.count { p.value[j] = std * r.normal() }
    }
}

extension Parameter.Layout {
    var isConv: Bool { if case .conv3x3 = self { return true } else { return false } }
}
