// Inverted dropout: kept units are scaled by 1/(1-p) in training so eval
// is the identity. The mask holds 0 or 1/(1-p) and serves the backward.

import LabRandom

public func dropoutForward(
    _ out: UnsafeMutablePointer<Float>,   // [count]
    mask: UnsafeMutablePointer<Float>,    // [count] written
    _ inp: UnsafePointer<Float>,          // [count]
    count: Int, p: Float, training: Bool, rng: inout RNG
) {
    guard training && p > 0 else {
        for i in 0..<count { out[i] = inp[i]; mask[i] = 1 }
        return
    }
    let keep = 1 / (1 - p)
    for i in 0..<count {
        mask[i] = rng.uniform() >= p ? keep : 0
        out[i] = inp[i] * mask[i]
    }
}

/// dinp is written.
public func dropoutBackward(
    _ dinp: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>,
    mask: UnsafePointer<Float>, count: Int
) {
    for i in 0..<count { dinp[i] = dout[i] * mask[i] }
}
