import Engine
import Failures
import LabRandom

public enum CAMMethod: String, CaseIterable, Sendable {
    case gradCAM = "gradcam"
    case gradCAMPlusPlus = "gradcam++"
}

/// Maps for a batch through the engine's own backward, in eval mode.
/// One backward serves the whole batch: in eval mode images do not
/// interact, so seeding dlogits[n, target_n] = 1 gives each image the
/// gradient of its own target score.
public struct Explainer {
    public let model: Model
    public let layer: String

    /// `layer`: any of ModelConfig.explainableLayers (a convolution, a
    /// projection shortcut, a block's output); nil: the last convolution.
    public init(model: Model, layer: String? = nil) throws {
        self.model = model
        let name = layer ?? model.blocks.last!.units.last!.name
        guard model.explainableLayer(named: name) != nil else {
            throw Failure(.explain, "no layer \(name) in this model; layers: \(model.config.explainableLayers.joined(separator: ", "))")
        }
        self.layer = name
    }

    public struct Result {
        public var probabilities: [Float]       // [N, classes]
        public var targets: [Int]               // [N]
        public var maps: [CAMMethod: [[Float]]] // per method, per image [S*S] in [0, 1]
    }

    /// `targets[n]` nil: the predicted class.
    public func explain(_ x: UnsafePointer<Float>, N: Int, targets: [Int?], methods: [CAMMethod]) -> Result {
        var rng = RNG(seed: 0)
        let L = model.config.classes, S = model.imageSize
        model.forward(x, N: N, training: false, rng: &rng)
        model.softmax(N: N)
        let probs = Array(UnsafeBufferPointer(start: model.probs.data, count: N * L))
        var t = [Int]()
        var seed = [Float](repeating: 0, count: N * L)
        for n in 0..<N {
            let k = targets[n] ?? argmax(probs[(n * L)..<((n + 1) * L)])
            t.append(k)
            seed[n * L + k] = 1
        }
        model.backward(dlogits: seed, N: N, training: false, stopAt: layer)
        let u = model.explainableLayer(named: layer)!
        let P = u.H * u.W
        var maps = [CAMMethod: [[Float]]]()
        for m in methods {
            maps[m] = (0..<N).map { n in
                let A = UnsafePointer(u.activation.data + n * P * u.C), G = UnsafePointer(u.gradient.data + n * P * u.C)
                let raw = m == .gradCAM ? CAM.gradCAM(A, G, P: P, C: u.C).map : CAM.gradCAMPlusPlus(A, G, P: P, C: u.C).map
                return CAM.normalized(CAM.upsample(raw, h: u.H, w: u.W, to: S))
            }
        }
        return Result(probabilities: probs, targets: t, maps: maps)
    }
}

