import Engine
import Faces
import Foundation
import LabRandom
import Specs

/// The spec's remedies for class imbalance (docs/imbalance.md), resolved against
/// a training split: how each face's loss is weighted, how the logits are
/// shifted in training, and which faces an epoch draws.
struct Imbalance {
    /// "balanced" (resolved as "balanced_per_face"): weight of a face whose majority class is k, n / (K n_k).
    private(set) var faceWeightOfClass: [Float]?
    /// "balanced_per_class": the same numbers inside the loss, per class.
    private(set) var classWeights: [Float]?
    /// train.reweight_from_epoch: the weights above apply from this epoch on.
    let reweightFrom: Int
    /// train.logit_adjustment tau: tau * log prior_k, added in training only
    /// (so the epoch's train accuracy is that of the shifted logits;
    /// validation and test see the model's own).
    let logitShift: [Float]?
    let classBalancedSampling: Bool

    /// trainClasses: the majority class of every training face.
    init(_ spec: ExperimentSpec, trainClasses: [Int]) {
        let counts = Imbalance.counts(trainClasses)
        let inverse = Imbalance.inverseFrequency(counts)
        faceWeightOfClass = spec.train.classWeights == .balancedPerFace ? inverse : nil
        classWeights = spec.train.classWeights == .balancedPerClass ? inverse : nil
        logitShift = Float(spec.train.logitAdjustment) > 0 ? Imbalance.logPrior(counts).map { Float(spec.train.logitAdjustment) * $0 } : nil
        classBalancedSampling = spec.train.sampling == .classBalanced
        reweightFrom = spec.train.reweightFromEpoch
    }

    /// The remedies in force in `epoch`: before train.reweight_from_epoch
    /// (deferred re-weighting) the loss is unweighted.
    func at(epoch: Int) -> Imbalance {
        guard epoch < reweightFrom else { return self }
        var plain = self
        plain.faceWeightOfClass = nil
        plain.classWeights = nil
        return plain
    }

    /// A note when more than one remedy is on: each alone moves the predicted
    /// prior toward uniform, so together they overshoot toward the rare classes.
    static func stackedRemedies(_ spec: ExperimentSpec) -> String? {
        let on = [spec.train.classWeights != .none ? "train.class_weights" : nil,
                  spec.train.sampling == .classBalanced ? "train.sampling" : nil,
                  spec.train.logitAdjustment > 0 ? "train.logit_adjustment" : nil].compactMap { $0 }
        guard on.count > 1 else { return nil }
        return "note: \(on.joined(separator: " and ")) each rebalance the classes; together they correct the imbalance more than once"
    }

    static func counts(_ classes: [Int]) -> [Int] {
        var c = [Int](repeating: 0, count: Emotion.count)
        for k in classes { c[k] += 1 }
        return c
    }

    /// n / (K n_k); 0 for a class without faces (no face ever carries it).
    static func inverseFrequency(_ counts: [Int]) -> [Float] {
        let n = counts.reduce(0, +)
        return counts.map { $0 > 0 ? Float(n) / Float(Emotion.count * $0) : 0 }
    }

    /// log of the class prior. An absent class counts as one face: a prior
    /// of 0 would shift its logit to -inf and make any vote for it an infinite loss.
    static func logPrior(_ counts: [Int]) -> [Float] {
        let floored = counts.map { max($0, 1) }
        let n = Float(floored.reduce(0, +))
        return floored.map { logf(Float($0) / n) }
    }

    /// Per-face weights of a batch, [N], from the faces' majority classes; nil when faces are not weighted.
    func faceWeights(_ batchClasses: [Int]) -> [Float]? {
        faceWeightOfClass.map { w in batchClasses.map { w[$0] } }
    }

    func loss(_ model: Model, targets: UnsafePointer<Float>, faceWeights: [Float]?, N: Int) -> Float {
        classWeights.withOptionalPointer { cw in faceWeights.withOptionalPointer { fw in logitShift.withOptionalPointer { b in
            model.loss(targets: targets, classWeights: cw, sampleWeights: fw, logitShift: b, N: N)
        } } }
    }

    func backward(_ model: Model, targets: UnsafePointer<Float>, faceWeights: [Float]?, N: Int) {
        classWeights.withOptionalPointer { cw in faceWeights.withOptionalPointer { fw in
            model.backwardLoss(targets: targets, classWeights: cw, sampleWeights: fw, N: N, training: true)
        } }
    }

    /// The faces of one epoch, a pure function of (run seed, epoch) so that a
    /// resumed run draws what the uninterrupted one drew. "shuffle" permutes
    /// the split; "class_balanced" draws as many faces with replacement,
    /// each class equally likely, then a face uniformly within it.
    func epochOrder(_ train: [Int], classes: [Int], seed: UInt64, epoch: Int) -> [Int] {
        var rng = RNG(seed: RNG.mix(seed, UInt64(epoch), 2))
        guard classBalancedSampling else {
            var order = train
            order.shuffle(using: &rng)
            return order
        }
        var byClass = [[Int]](repeating: [], count: Emotion.count)
        for i in train { byClass[classes[i]].append(i) }
        let present = byClass.filter { !$0.isEmpty }
        return train.indices.map { _ in
            let pool = present[Int(rng.next() % UInt64(present.count))]
            return pool[Int(rng.next() % UInt64(pool.count))]
        }
    }
}
