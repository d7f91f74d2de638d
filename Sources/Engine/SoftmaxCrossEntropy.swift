import Foundation

// Softmax cross-entropy against soft targets, optionally class-weighted:
//   loss = (1/N) sum_n sum_k -w_k t_nk log p_nk
// With w = 1 and rows of t summing to 1 the gradient is (p - t)/N; in
// general d loss / d logit_nk = (p_nk * sum_j w_j t_nj - w_k t_nk) / N.
// This is PyTorch's CrossEntropyLoss(weight=w) with probability targets.

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

/// Returns the mean loss; writes probabilities.
@discardableResult
public func softmaxCrossEntropyForward(
    probs: UnsafeMutablePointer<Float>,  // [N, L] written
    _ logits: UnsafePointer<Float>,      // [N, L]
    targets: UnsafePointer<Float>,       // [N, L]
    classWeights: UnsafePointer<Float>?, // [L] or nil
    N: Int, L: Int
) -> Float {
    var total: Double = 0
    for n in 0..<N {
        let z = logits + n * L, t = targets + n * L
        let (mx, logS) = softmaxRow(probs + n * L, z, L: L)
        for k in 0..<L {
            let w = classWeights?[k] ?? 1
            if t[k] != 0 { total -= Double(w * t[k] * (z[k] - mx - logS)) }
        }
    }
    return Float(total / Double(N))
}

/// dlogits is WRITTEN (the loss is the graph's root).
public func softmaxCrossEntropyBackward(
    _ dlogits: UnsafeMutablePointer<Float>, // [N, L] written
    probs: UnsafePointer<Float>,            // [N, L]
    targets: UnsafePointer<Float>,          // [N, L]
    classWeights: UnsafePointer<Float>?,    // [L] or nil
    N: Int, L: Int
) {
    let invN = 1 / Float(N)
    for n in 0..<N {
        let p = probs + n * L, t = targets + n * L, d = dlogits + n * L
        var wt: Float = 0
        for k in 0..<L { wt += (classWeights?[k] ?? 1) * t[k] }
        for k in 0..<L { d[k] = (p[k] * wt - (classWeights?[k] ?? 1) * t[k]) * invN }
    }
}
