import Foundation

// Softmax cross-entropy against soft targets, with the three ways the
// training loop may reshape it for class imbalance:
//   q_n   = softmax(z_n + b)                        b: logit shift [L] (logit adjustment), 0 if nil
//   CE_n  = sum_k -w_k t_nk log q_nk                w: per-class weights [L], 1 if nil
//   loss  = sum_n s_n CE_n / sum_n s_n              s: per-face weights [N], 1 if nil
// With w = s = 1 this is the mean soft-target cross-entropy, gradient (q - t)/N.
// In general d loss / d z_nk = s_n (q_nk sum_j w_j t_nj - w_k t_nk) / sum_m s_m.
// s is PyTorch's weighted mean (reduction over the batch's total weight); it
// scales a face's whole CE, so the target's shape survives. w is
// CrossEntropyLoss(weight=w) with probability targets: its minimizer is
// q_k ∝ w_k t_k, which moves the argmax of soft targets (see the tests).
// b only shifts the logits, so dz equals the gradient w.r.t. the shifted ones.

/// One row's softmax; returns log(sum exp(z - max z)) and max z, from which
/// the cross-entropy takes its log-probabilities without log(0).
@inline(__always)
func softmaxRow(_ p: UnsafeMutablePointer<Float>, _ z: UnsafePointer<Float>, L: Int) -> (max: Float, logSum: Float) {
    var mx = z[0]
    for k in 1..<L { mx = max(mx, z[k]) }
    var s: Float = 0
    for k in 0..<L { p[k] = expf(z[k] - mx); s += p[k] }
    for k in 0..<L { p[k] /= s }
    return (mx, logf(s))
}

/// Softmax of every row.
public func softmaxForward(
    probs: UnsafeMutablePointer<Float>,  // [N, L] written
    _ logits: UnsafePointer<Float>,      // [N, L]
    N: Int, L: Int
) {
    for n in 0..<N { _ = softmaxRow(probs + n * L, logits + n * L, L: L) }
}

/// Returns the (weighted) mean loss; writes probabilities of the shifted logits.
@discardableResult
public func softmaxCrossEntropyForward(
    probs: UnsafeMutablePointer<Float>,   // [N, L] written: softmax(z + b)
    _ logits: UnsafePointer<Float>,       // [N, L] z
    targets: UnsafePointer<Float>,        // [N, L] t
    classWeights: UnsafePointer<Float>?,  // [L] w or nil
    sampleWeights: UnsafePointer<Float>? = nil, // [N] s or nil
    logitShift: UnsafePointer<Float>? = nil,    // [L] b or nil
    N: Int, L: Int
) -> Float {
    var total: Double = 0, weightSum: Double = 0
    var shifted = [Float](repeating: 0, count: L)
    for n in 0..<N {
        let t = targets + n * L
        for k in 0..<L { shifted[k] = logits[n * L + k] + (logitShift?[k] ?? 0) }
        let (mx, logS) = softmaxRow(probs + n * L, shifted, L: L)
        var ce: Double = 0
        for k in 0..<L where t[k] != 0 {
            ce -= Double((classWeights?[k] ?? 1) * t[k] * (shifted[k] - mx - logS))
        }
        let s = Double(sampleWeights?[n] ?? 1)
        total += s * ce; weightSum += s
    }
    return weightSum > 0 ? Float(total / weightSum) : 0
}

/// dlogits is WRITTEN (the loss is the graph's root).
public func softmaxCrossEntropyBackward(
    _ dlogits: UnsafeMutablePointer<Float>,     // [N, L] written
    probs: UnsafePointer<Float>,                // [N, L] softmax(z + b) from the forward
    targets: UnsafePointer<Float>,              // [N, L] t
    classWeights: UnsafePointer<Float>?,        // [L] w or nil
    sampleWeights: UnsafePointer<Float>? = nil, // [N] s or nil
    N: Int, L: Int
) {
    var weightSum: Float = 0
    for n in 0..<N { weightSum += sampleWeights?[n] ?? 1 }
    let inv = weightSum > 0 ? 1 / weightSum : 0
    for n in 0..<N {
        let p = probs + n * L, t = targets + n * L, d = dlogits + n * L
        let scale = (sampleWeights?[n] ?? 1) * inv
        var wt: Float = 0
        for k in 0..<L { wt += (classWeights?[k] ?? 1) * t[k] }
        for k in 0..<L { d[k] = (p[k] * wt - (classWeights?[k] ?? 1) * t[k]) * scale }
    }
}
