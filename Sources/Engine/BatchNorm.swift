import Dispatch

// Batch normalization over the channel axis of an NHWC activation seen as
// [M = N*H*W, C], fused with the residual add and the activation that follow
// it in every conv unit: out = act(gamma * xhat + beta [+ residual]). One
// pass over memory for the statistics, one for the output; backward
// re-derives xhat from the pre-BN input instead of storing it. Rows are
// split into `workers` contiguous chunks; per-chunk partial sums are
// combined in chunk order, so results depend on the worker count but not on
// timing. Backward masks by ReLU in its own passes (the baseline's path);
// any other activation's gradient is applied to dout first
// (activationBackward) and batchNormBackward then runs unmasked.

/// Workers worth waking for `rows` rows of `rowCost` element operations
/// each: a dispatch costs tens of microseconds (one image's block1 batch
/// norm, 131,072 elements, took 60 us on two workers and 30 us on one), so
/// each worker gets at least 2^18 operations.
func rowWorkers(_ rows: Int, rowCost: Int, workers: Int) -> Int {
    max(1, min(workers, rows, (rows * rowCost) >> 18))
}

/// Runs body(chunk, rowStart, rowEnd) over `workers` contiguous row chunks.
@inline(__always)
func forRowChunks(_ M: Int, workers: Int, _ body: (Int, Int, Int) -> Void) {
    let w = max(1, min(workers, M))
    if w == 1 { body(0, 0, M); return }
    let per = (M + w - 1) / w
    // Late chunks can be empty (e.g. M = 256 rows over 28 workers): clamp both ends.
    concurrently(w) { k in body(k, min(M, k * per), min(M, (k + 1) * per)) }
}

@inline(__always) private func load(_ p: UnsafePointer<Float>) -> V8 { UnsafeRawPointer(p).loadUnaligned(as: V8.self) }

/// The vector loops below read 32 floats (a slab) at a time: 32 channels of
/// one row when C >= 32, or whole rows when C is 8 or 16 (32/C rows per
/// slab; the quickstart's first block has 16 channels). Channels past a
/// multiple of 32, other channel counts and rows left over go one channel
/// at a time.
private struct Slabs {
    let span: Int   // channels one slab covers
    let rows: Int   // rows one slab covers
    let vector: Bool
    init(C: Int) {
        let packed = C < 32 && 32 % C == 0 && C % 8 == 0
        span = packed ? C : 32; rows = packed ? 32 / C : 1
        vector = packed || C >= 32
    }
}

/// d[(8 k + l) mod span] += lane l of vector k (doubles).
@inline(__always)
private func addLanes(_ d: UnsafeMutablePointer<Double>, span: Int, _ v0: V8, _ v1: V8, _ v2: V8, _ v3: V8) {
    for l in 0..<8 {
        d[l % span] += Double(v0[l]); d[(8 + l) % span] += Double(v1[l])
        d[(16 + l) % span] += Double(v2[l]); d[(24 + l) % span] += Double(v3[l])
    }
}

/// The traversal both sum kernels share: rows [m0, m1) in blocks of 256
/// (float partial sums, folded into doubles by the caller per block), each
/// block slab by slab. `vector(c0, b0, b1)` sums channels c0..<c0+span over
/// whole slabs from row b0 and returns the first row it left; `scalar(c0,
/// c1, r0, r1)` does channels c0..<c1 over rows r0..<r1 one at a time.
@inline(__always)
private func forEachSlab(_ m0: Int, _ m1: Int, C: Int, _ slab: Slabs,
                         vector: (_ c0: Int, _ b0: Int, _ b1: Int) -> Int,
                         scalar: (_ c0: Int, _ c1: Int, _ r0: Int, _ r1: Int) -> Void) {
    var b0 = m0
    while b0 < m1 {
        let b1 = min(m1, b0 + 256)
        var c0 = 0
        while slab.vector && c0 + slab.span <= C {
            scalar(c0, c0 + slab.span, vector(c0, b0, b1), b1)
            c0 += slab.span
        }
        scalar(c0, C, b0, b1)
        b0 = b1
    }
}

/// Sums of v and v*v per channel over rows [m0, m1), in float blocks of 256
/// rows folded into doubles (M reaches 262,144 in block 1 at batch 64).
/// Slab by slab with the sums in registers (sums kept in memory, updated
/// every row, ran at half the memory bandwidth).
@inline(__always)
private func channelSums(_ inp: UnsafePointer<Float>, _ m0: Int, _ m1: Int, C: Int,
                         _ s: UnsafeMutablePointer<Double>, _ q: UnsafeMutablePointer<Double>) {
    for c in 0..<C { s[c] = 0; q[c] = 0 }
    let slab = Slabs(C: C)
    @inline(__always) func scalar(_ c0: Int, _ c1: Int, _ r0: Int, _ r1: Int) {
        for c in c0..<c1 {
            var ps: Float = 0, pq: Float = 0
            for m in r0..<r1 { let v = inp[m * C + c]; ps += v; pq += v * v }
            s[c] += Double(ps); q[c] += Double(pq)
        }
    }
    forEachSlab(m0, m1, C: C, slab, vector: { c0, b0, b1 in
        var s0 = V8(), s1 = V8(), s2 = V8(), s3 = V8(), q0 = V8(), q1 = V8(), q2 = V8(), q3 = V8()
        var m = b0
        while m + slab.rows <= b1 {
            let p = inp + m * C + c0
            let v0 = load(p), v1 = load(p + 8), v2 = load(p + 16), v3 = load(p + 24)
            s0 += v0; s1 += v1; s2 += v2; s3 += v3
            q0 = q0.addingProduct(v0, v0); q1 = q1.addingProduct(v1, v1)
            q2 = q2.addingProduct(v2, v2); q3 = q3.addingProduct(v3, v3)
            m += slab.rows
        }
        addLanes(s + c0, span: slab.span, s0, s1, s2, s3); addLanes(q + c0, span: slab.span, q0, q1, q2, q3)
        return m
    }, scalar: scalar)
}

/// Pass 1 of the batch norm backward over rows [m0, m1): the masked gradient
/// dz = dout where out > 0 (`relu`; dz = dout without), written to dresidual
/// when there is one, and per channel sum(dz) and sum(dz * (x - mean)); slab
/// by slab like channelSums. Always inlined with a constant `relu`.
@inline(__always)
private func maskedGradientSums(
    relu: Bool,
    _ ds: UnsafeMutablePointer<Double>, _ dx: UnsafeMutablePointer<Double>, // [C] written
    dresidual: UnsafeMutablePointer<Float>?,
    _ dout: UnsafePointer<Float>, out: UnsafePointer<Float>, inp: UnsafePointer<Float>, mean: UnsafePointer<Float>,
    _ m0: Int, _ m1: Int, C: Int
) {
    for c in 0..<C { ds[c] = 0; dx[c] = 0 }
    let slab = Slabs(C: C)
    @inline(__always) func scalar(_ c0: Int, _ c1: Int, _ r0: Int, _ r1: Int) {
        for c in c0..<c1 {
            var bs: Float = 0, bx: Float = 0
            for m in r0..<r1 {
                let i = m * C + c, dv = dout[i], ov = relu ? out[i] : 1
                let dz = ov > 0 ? dv : 0
                bs += dz; bx += dz * (inp[i] - mean[c])
                dresidual?[i] = dz
            }
            ds[c] += Double(bs); dx[c] += Double(bx)
        }
    }
    forEachSlab(m0, m1, C: C, slab, vector: { c0, b0, b1 in
        var s0 = V8(), s1 = V8(), s2 = V8(), s3 = V8(), x0 = V8(), x1 = V8(), x2 = V8(), x3 = V8()
        @inline(__always) func mu(_ k: Int) -> V8 { load(mean + c0 + (8 * k) % slab.span) }
        let mu0 = mu(0), mu1 = mu(1), mu2 = mu(2), mu3 = mu(3)
        var m = b0
        while m + slab.rows <= b1 {
            let i = m * C + c0
            // Loads before the select: no conditional loads, no branches.
            @inline(__always) func dz(_ k: Int) -> V8 {
                relu ? load(dout + i + k).replacing(with: 0, where: load(out + i + k) .<= 0) : load(dout + i + k)
            }
            let z0 = dz(0), z1 = dz(8), z2 = dz(16), z3 = dz(24)
            s0 += z0; s1 += z1; s2 += z2; s3 += z3
            x0 = x0.addingProduct(z0, load(inp + i) - mu0); x1 = x1.addingProduct(z1, load(inp + i + 8) - mu1)
            x2 = x2.addingProduct(z2, load(inp + i + 16) - mu2); x3 = x3.addingProduct(z3, load(inp + i + 24) - mu3)
            if let dresidual {
                let r = UnsafeMutableRawPointer(dresidual + i)
                r.storeBytes(of: z0, as: V8.self); r.storeBytes(of: z1, toByteOffset: 32, as: V8.self)
                r.storeBytes(of: z2, toByteOffset: 64, as: V8.self); r.storeBytes(of: z3, toByteOffset: 96, as: V8.self)
            }
            m += slab.rows
        }
        addLanes(ds + c0, span: slab.span, s0, s1, s2, s3); addLanes(dx + c0, span: slab.span, x0, x1, x2, x3)
        return m
    }, scalar: scalar)
}

/// Per-channel statistics for this batch. Training: batch mean and biased
/// variance normalize; running averages move by `momentum` using the
/// unbiased variance (PyTorch's convention). Eval: the running statistics.
public func batchNormStatistics(
    mean: UnsafeMutablePointer<Float>,        // [C] out
    rstd: UnsafeMutablePointer<Float>,        // [C] out, 1/sqrt(var + eps)
    runningMean: UnsafeMutablePointer<Float>, // [C] updated in training
    runningVar: UnsafeMutablePointer<Float>,  // [C] updated in training
    _ inp: UnsafePointer<Float>,              // [M, C]
    M: Int, C: Int, training: Bool, momentum: Float = 0.1, eps: Float = 1e-5, workers: Int = 1
) {
    guard training else {
        for c in 0..<C {
            mean[c] = runningMean[c]
            rstd[c] = 1 / (runningVar[c] + eps).squareRoot()
        }
        return
    }
    let w = rowWorkers(M, rowCost: C, workers: workers)
    let sums = UnsafeMutablePointer<Double>.allocate(capacity: 2 * w * C)
    defer { sums.deallocate() }
    forRowChunks(M, workers: w) { k, m0, m1 in
        channelSums(inp, m0, m1, C: C, sums + 2 * k * C, sums + (2 * k + 1) * C)
    }
    let inv = 1 / Double(M)
    let unbias = M > 1 ? Double(M) / Double(M - 1) : 1
    for c in 0..<C {
        var s = 0.0, q = 0.0
        for k in 0..<w { s += sums[2 * k * C + c]; q += sums[(2 * k + 1) * C + c] }
        let mu = s * inv
        let v = max(0, q * inv - mu * mu)
        mean[c] = Float(mu)
        rstd[c] = Float(1 / (v + Double(eps)).squareRoot())
        runningMean[c] = (1 - momentum) * runningMean[c] + momentum * Float(mu)
        runningVar[c] = (1 - momentum) * runningVar[c] + momentum * Float(v * unbias)
    }
}

/// out = act(gamma * (inp - mean) * rstd + beta [+ residual]); with
/// `preactivation`, act's argument is kept there (SiLU's backward reads it).
public func batchNormActivationForward(
    _ act: Nonlinearity,
    _ out: UnsafeMutablePointer<Float>,     // [M, C]
    preactivation: UnsafeMutablePointer<Float>? = nil, // [M, C] written, or nil
    _ inp: UnsafePointer<Float>,            // [M, C] pre-BN (conv output)
    residual: UnsafePointer<Float>?,        // [M, C] or nil
    gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, // [C]
    mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,  // [C]
    M: Int, C: Int, workers: Int = 1
) {
    // Folded into one multiply-add per element.
    let sc = UnsafeMutablePointer<Float>.allocate(capacity: 2 * C), sh = sc + C
    defer { sc.deallocate() }
    for c in 0..<C {
        sc[c] = gamma[c] * rstd[c]
        sh[c] = beta[c] - mean[c] * sc[c]
    }
    affineActivationForward(act, out, preactivation: preactivation, inp, scale: sc, shift: sh, residual: residual,
                            M: M, C: C, workers: workers)
}

/// out = relu(gamma * (inp - mean) * rstd + beta [+ residual]).
public func batchNormReLUForward(
    _ out: UnsafeMutablePointer<Float>,     // [M, C]
    _ inp: UnsafePointer<Float>,            // [M, C] pre-BN (conv output)
    residual: UnsafePointer<Float>?,        // [M, C] or nil
    gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, // [C]
    mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,  // [C]
    M: Int, C: Int, workers: Int = 1
) {
    batchNormActivationForward(.relu, out, inp, residual: residual, gamma: gamma, beta: beta, mean: mean, rstd: rstd,
                               M: M, C: C, workers: workers)
}

/// Backward of batchNormReLUForward. Input and residual gradients are
/// written, parameter gradients accumulate (Engine.swift). In eval mode the
/// statistics are constants, so the input gradient is a per-channel scale
/// (Grad-CAM backpropagates in eval mode).
public func batchNormReLUBackward(
    _ dinp: UnsafeMutablePointer<Float>,     // [M, C] written
    dresidual: UnsafeMutablePointer<Float>?, // [M, C] written, or nil
    dgamma: UnsafeMutablePointer<Float>, dbeta: UnsafeMutablePointer<Float>, // [C] accumulated
    _ dout: UnsafePointer<Float>,            // [M, C]
    out: UnsafePointer<Float>,               // [M, C] forward output (post-ReLU): the mask
    inp: UnsafePointer<Float>,               // [M, C] pre-BN input
    gamma: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, // [C]
    M: Int, C: Int, training: Bool, workers: Int = 1
) {
    batchNormBackward(relu: true, dinp, dresidual: dresidual, dgamma: dgamma, dbeta: dbeta, dout, out: out, inp: inp,
                      gamma: gamma, mean: mean, rstd: rstd, M: M, C: C, training: training, workers: workers)
}

/// Backward of batch norm with nothing after it (or an activation whose
/// gradient is already in dout): batchNormReLUBackward without the mask.
public func batchNormBackward(
    _ dinp: UnsafeMutablePointer<Float>,     // [M, C] written
    dresidual: UnsafeMutablePointer<Float>?, // [M, C] written (= dout), or nil
    dgamma: UnsafeMutablePointer<Float>, dbeta: UnsafeMutablePointer<Float>, // [C] accumulated
    _ dout: UnsafePointer<Float>,            // [M, C]
    inp: UnsafePointer<Float>,               // [M, C] pre-BN input
    gamma: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, // [C]
    M: Int, C: Int, training: Bool, workers: Int = 1
) {
    batchNormBackward(relu: false, dinp, dresidual: dresidual, dgamma: dgamma, dbeta: dbeta, dout, out: dout, inp: inp,
                      gamma: gamma, mean: mean, rstd: rstd, M: M, C: C, training: training, workers: workers)
}

/// Both backwards; always inlined with a constant `relu` (`out` is read only with it).
@inline(__always)
private func batchNormBackward(
    relu: Bool,
    _ dinp: UnsafeMutablePointer<Float>, dresidual: UnsafeMutablePointer<Float>?,
    dgamma: UnsafeMutablePointer<Float>, dbeta: UnsafeMutablePointer<Float>,
    _ dout: UnsafePointer<Float>, out: UnsafePointer<Float>, inp: UnsafePointer<Float>,
    gamma: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
    M: Int, C: Int, training: Bool, workers: Int
) {
    let w = rowWorkers(M, rowCost: C, workers: workers)
    let sums = UnsafeMutablePointer<Double>.allocate(capacity: 2 * w * C)
    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 3 * C)
    defer { sums.deallocate(); scratch.deallocate() }
    // Pass 1: masked gradient dz, the residual's share of it, and per channel
    // sum(dz) and sum(dz * (x - mean)).
    forRowChunks(M, workers: w) { k, m0, m1 in
        maskedGradientSums(relu: relu, sums + 2 * k * C, sums + (2 * k + 1) * C, dresidual: dresidual, dout, out: out, inp: inp,
                           mean: mean, m0, m1, C: C)
    }
    // dinp = gamma*rstd * (dz - mean(dz) - xhat * mean(dz*xhat)).
    let k = scratch, a = k + C, b = a + C
    let invM = 1 / Float(M)
    for c in 0..<C {
        var s = 0.0, x = 0.0
        for j in 0..<w { s += sums[2 * j * C + c]; x += sums[(2 * j + 1) * C + c] }
        let sdz = Float(s), sdzx = Float(x) * rstd[c]   // sum(dz * xhat)
        dbeta[c] += sdz
        dgamma[c] += sdzx
        k[c] = gamma[c] * rstd[c]
        a[c] = training ? sdz * invM : 0
        b[c] = training ? sdzx * invM * rstd[c] : 0    // applied to (x - mean)
    }
    forRowChunks(M, workers: w) { _, m0, m1 in
        for m in m0..<m1 {
            let d = dout + m * C, o = out + m * C, x = inp + m * C, di = dinp + m * C
            for c in 0..<C {
                let dv = d[c], ov = relu ? o[c] : 1
                let dz = ov > 0 ? dv : 0
                di[c] = k[c] * (dz - a[c] - (x[c] - mean[c]) * b[c])
            }
        }
    }
}
