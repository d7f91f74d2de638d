// Batch normalization over the channel axis of an NHWC activation seen as
// [M = N*H*W, C], fused with the residual add and the ReLU that follow it in
// every conv unit: out = relu(gamma * xhat + beta [+ residual]). One pass
// over memory for the statistics, one for the output; backward re-derives
// xhat from the pre-BN input instead of storing it.

/// Per-channel statistics for this batch. Training: batch mean and biased
/// variance normalize; running averages move by `momentum` using the
/// unbiased variance (PyTorch's convention). Eval: the running statistics.
public func batchNormStatistics(
    mean: UnsafeMutablePointer<Float>,        // [C] out
    rstd: UnsafeMutablePointer<Float>,        // [C] out, 1/sqrt(var + eps)
    runningMean: UnsafeMutablePointer<Float>, // [C] updated in training
    runningVar: UnsafeMutablePointer<Float>,  // [C] updated in training
    _ inp: UnsafePointer<Float>,              // [M, C]
    M: Int, C: Int, training: Bool, momentum: Float = 0.1, eps: Float = 1e-5
) {
    guard training else {
        for c in 0..<C {
            mean[c] = runningMean[c]
            rstd[c] = 1 / (runningVar[c] + eps).squareRoot()
        }
        return
    }
    // Sums in Double per channel: M reaches 262,144 in block 1 at batch 64,
    // where float accumulation loses digits of the variance.
    var sum = [Double](repeating: 0, count: C)
    var sq = [Double](repeating: 0, count: C)
    sum.withUnsafeMutableBufferPointer { s in
        sq.withUnsafeMutableBufferPointer { q in
            // Accumulate float partials over row blocks, then fold into doubles.
            let block = 256
            var ps = [Float](repeating: 0, count: C), pq = [Float](repeating: 0, count: C)
            ps.withUnsafeMutableBufferPointer { ps in
                pq.withUnsafeMutableBufferPointer { pq in
                    var m0 = 0
                    while m0 < M {
                        let m1 = min(M, m0 + block)
                        for c in 0..<C { ps[c] = 0; pq[c] = 0 }
                        for m in m0..<m1 {
                            let row = inp + m * C
                            for c in 0..<C { let v = row[c]; ps[c] += v; pq[c] += v * v }
                        }
                        for c in 0..<C { s[c] += Double(ps[c]); q[c] += Double(pq[c]) }
                        m0 = m1
                    }
                }
            }
        }
    }
    let inv = 1 / Double(M)
    let unbias = M > 1 ? Double(M) / Double(M - 1) : 1
    for c in 0..<C {
        let mu = sum[c] * inv
        let v = max(0, sq[c] * inv - mu * mu)
        mean[c] = Float(mu)
        rstd[c] = Float(1 / (v + Double(eps)).squareRoot())
        runningMean[c] = (1 - momentum) * runningMean[c] + momentum * Float(mu)
        runningVar[c] = (1 - momentum) * runningVar[c] + momentum * Float(v * unbias)
    }
}

/// out = relu(gamma * (inp - mean) * rstd + beta [+ residual]).
public func batchNormReLUForward(
    _ out: UnsafeMutablePointer<Float>,     // [M, C]
    _ inp: UnsafePointer<Float>,            // [M, C] pre-BN (conv output)
    residual: UnsafePointer<Float>?,        // [M, C] or nil
    gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, // [C]
    mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,  // [C]
    M: Int, C: Int
) {
    // Folded into one multiply-add per element.
    var scale = [Float](repeating: 0, count: C), shift = [Float](repeating: 0, count: C)
    for c in 0..<C {
        scale[c] = gamma[c] * rstd[c]
        shift[c] = beta[c] - mean[c] * scale[c]
    }
    scale.withUnsafeBufferPointer { sc in
        shift.withUnsafeBufferPointer { sh in
            let sc = sc.baseAddress!, sh = sh.baseAddress!
            if let residual {
                for m in 0..<M {
                    let i = inp + m * C, o = out + m * C, r = residual + m * C
                    for c in 0..<C { o[c] = max(0, i[c] * sc[c] + sh[c] + r[c]) }
                }
            } else {
                for m in 0..<M {
                    let i = inp + m * C, o = out + m * C
                    for c in 0..<C { o[c] = max(0, i[c] * sc[c] + sh[c]) }
                }
            }
        }
    }
}

/// Backward of batchNormReLUForward. `dinp` is OVERWRITTEN (the conv output
/// it belongs to has this single consumer); gamma/beta/residual gradients
/// accumulate. In eval mode the statistics are constants, so the input
/// gradient is a per-channel scale (Grad-CAM backpropagates in eval mode).
public func batchNormReLUBackward(
    _ dinp: UnsafeMutablePointer<Float>,     // [M, C] written
    dresidual: UnsafeMutablePointer<Float>?, // [M, C] accumulated, or nil
    dgamma: UnsafeMutablePointer<Float>, dbeta: UnsafeMutablePointer<Float>, // [C] accumulated
    _ dout: UnsafePointer<Float>,            // [M, C]
    out: UnsafePointer<Float>,               // [M, C] forward output (post-ReLU): the mask
    inp: UnsafePointer<Float>,               // [M, C] pre-BN input
    gamma: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, // [C]
    M: Int, C: Int, training: Bool
) {
    var sdz = [Float](repeating: 0, count: C), sdzx = [Float](repeating: 0, count: C)
    sdz.withUnsafeMutableBufferPointer { sdzB in
        sdzx.withUnsafeMutableBufferPointer { sdzxB in
            let sdz = sdzB.baseAddress!, sdzx = sdzxB.baseAddress!
            // Pass 1: masked gradient, residual gradient, the two reductions.
            // Partial sums per row block keep float error bounded.
            var bs = [Float](repeating: 0, count: C), bx = [Float](repeating: 0, count: C)
            var ds = [Double](repeating: 0, count: C), dx = [Double](repeating: 0, count: C)
            bs.withUnsafeMutableBufferPointer { bsB in
                bx.withUnsafeMutableBufferPointer { bxB in
                    let bs = bsB.baseAddress!, bx = bxB.baseAddress!
                    var m0 = 0
                    while m0 < M {
                        let m1 = min(M, m0 + 256)
                        for c in 0..<C { bs[c] = 0; bx[c] = 0 }
                        for m in m0..<m1 {
                            let d = dout + m * C, o = out + m * C, x = inp + m * C
                            // Loads before the select: a conditional load blocks vectorization.
                            for c in 0..<C {
                                let dv = d[c], ov = o[c], xv = x[c]
                                let dz = ov > 0 ? dv : 0
                                bs[c] += dz
                                bx[c] += dz * (xv - mean[c])
                            }
                            if let dresidual {
                                let r = dresidual + m * C
                                for c in 0..<C { let dv = d[c], ov = o[c]; r[c] += ov > 0 ? dv : 0 }
                            }
                        }
                        for c in 0..<C { ds[c] += Double(bs[c]); dx[c] += Double(bx[c]) }
                        m0 = m1
                    }
                }
            }
            for c in 0..<C {
                sdz[c] = Float(ds[c])
                sdzx[c] = Float(dx[c]) * rstd[c]   // sum(dz * xhat)
                dbeta[c] += sdz[c]
                dgamma[c] += sdzx[c]
            }
            // Pass 2: dinp = gamma*rstd * (dz - mean(dz) - xhat * mean(dz*xhat)).
            var k = [Float](repeating: 0, count: C)
            var a = [Float](repeating: 0, count: C), b = [Float](repeating: 0, count: C)
            let invM = 1 / Float(M)
            for c in 0..<C {
                k[c] = gamma[c] * rstd[c]
                a[c] = training ? sdz[c] * invM : 0
                b[c] = training ? sdzx[c] * invM * rstd[c] : 0   // applied to (x - mean)
            }
            k.withUnsafeBufferPointer { kB in
                a.withUnsafeBufferPointer { aB in
                    b.withUnsafeBufferPointer { bB in
                        let k = kB.baseAddress!, a = aB.baseAddress!, b = bB.baseAddress!
                        for m in 0..<M {
                            let d = dout + m * C, o = out + m * C, x = inp + m * C, di = dinp + m * C
                            for c in 0..<C {
                                let dv = d[c], ov = o[c]
                                let dz = ov > 0 ? dv : 0
                                di[c] = k[c] * (dz - a[c] - (x[c] - mean[c]) * b[c])
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Without batch norm the conv carries a bias and the unit is
/// out = relu(inp [+ residual]).
public func addReLUForward(
    _ out: UnsafeMutablePointer<Float>,  // [M*C]
    _ inp: UnsafePointer<Float>,         // [M*C]
    residual: UnsafePointer<Float>?,     // [M*C] or nil
    count: Int
) {
    if let residual {
        for i in 0..<count { out[i] = max(0, inp[i] + residual[i]) }
    } else {
        for i in 0..<count { out[i] = max(0, inp[i]) }
    }
}

/// `dinp` is OVERWRITTEN; `dresidual` accumulates.
public func addReLUBackward(
    _ dinp: UnsafeMutablePointer<Float>,     // [M*C] written
    dresidual: UnsafeMutablePointer<Float>?, // [M*C] accumulated, or nil
    _ dout: UnsafePointer<Float>,            // [M*C]
    out: UnsafePointer<Float>,               // [M*C] forward output: the mask
    count: Int
) {
    for i in 0..<count { let d = dout[i], o = out[i]; dinp[i] = o > 0 ? d : 0 }
    if let dresidual {
        for i in 0..<count { dresidual[i] += dinp[i] }
    }
}
