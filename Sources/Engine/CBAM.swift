// CBAM (Woo et al. 2018, as the authors' code) on a block's last
// convolution, after its batch norm:
//   cg  = sigmoid(mlp(avgpool(y)) + mlp(maxpool(y)))     per image and channel (channelMLP*, SqueezeExcitation.swift)
//   y1  = y * cg
//   sg  = sigmoid(bn(conv7x7([max_c y1, mean_c y1])))    per pixel; 2 -> 1 channel, padding 3, no bias
//   out = act(y1 * sg + s)                               gatedActivationForward (Activation.swift)
// Here are the passes over the activations and the 7x7 convolution; the
// model strings them together (Block.swift). Each pass is split by images
// or pixels across workers. Reductions over channels run 8 channels at a
// time in vector registers (a float sum does not vectorize on its own).
//
// Buffers (P = H*W pixels):
//   pools     [2N, C]  rows 0..<N: mean over pixels; N..<2N: maximum over pixels
//   maxPixel  [N, C]   the pixel each maximum came from (the first, on a tie)
//   planes    [N, 2, H+6, W+6]  max and mean over channels of y1, zero-bordered by the conv's padding
//   maxChannel [N, P]  the channel each max came from

@inline(__always) private func load(_ p: UnsafePointer<Float>) -> V8 { UnsafeRawPointer(p).loadUnaligned(as: V8.self) }

/// sum of a[i] * b[i], 8 at a time.
@inline(__always)
private func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = V8(), i = 0
    while i + 8 <= n { acc = acc.addingProduct(load(a + i), load(b + i)); i += 8 }
    var s = acc.sum()
    while i < n { s += a[i] * b[i]; i += 1 }
    return s
}

/// Mean and maximum over pixels per image and channel: 8 channels at a
/// time with the sums, maxima and their pixels in registers over the
/// image's pixels (a select on a pixel index does not vectorize on its own).
func cbamChannelPools(
    _ pools: UnsafeMutablePointer<Float>,      // [2N, C] written
    maxPixel: UnsafeMutablePointer<Int32>,     // [N, C] written
    _ y: UnsafePointer<Float>,                 // [N, P, C]
    N: Int, P: Int, C: Int, workers: Int
) {
    let invP = 1 / Float(P)
    forRowChunks(N, workers: rowWorkers(N, rowCost: P * C, workers: workers)) { _, n0, n1 in
        for n in n0..<n1 {
            let avg = pools + n * C, mx = pools + (N + n) * C, ix = maxPixel + n * C
            let first = y + n * P * C
            var c = 0
            while c + 8 <= C {
                var s = V8(), m = V8(repeating: -.infinity), at = SIMD8<Int32>(repeating: 0)
                for p in 0..<P {
                    let v = load(first + p * C + c), better = v .> m
                    s += v
                    m.replace(with: v, where: better)
                    at.replace(with: Int32(p), where: better)
                }
                for l in 0..<8 { avg[c + l] = s[l] * invP; mx[c + l] = m[l]; ix[c + l] = at[l] }
                c += 8
            }
            while c < C {
                var s: Float = 0, m = -Float.infinity, at: Int32 = 0
                for p in 0..<P {
                    let v = first[p * C + c]
                    s += v
                    if v > m { m = v; at = Int32(p) }
                }
                avg[c] = s * invP; mx[c] = m; ix[c] = at
                c += 1
            }
        }
    }
}

/// dy = dy1 * cg + d(mean)/P, plus d(max) at the pixel each maximum came
/// from; dy holds dy1 on entry (in place).
func cbamChannelPoolsBackward(
    _ dy: UnsafeMutablePointer<Float>,         // [N, P, C] in: dy1, out: dy
    channelGate: UnsafePointer<Float>,         // [N, C]
    dpools: UnsafePointer<Float>,              // [2N, C] gradients of the means and the maxima
    maxPixel: UnsafePointer<Int32>,            // [N, C]
    N: Int, P: Int, C: Int, workers: Int
) {
    let invP = 1 / Float(P)
    forRowChunks(N, workers: rowWorkers(N, rowCost: P * C, workers: workers)) { _, n0, n1 in
        for n in n0..<n1 {
            let g = channelGate + n * C, da = dpools + n * C, dm = dpools + (N + n) * C
            for p in 0..<P {
                let d = dy + (n * P + p) * C
                for c in 0..<C { d[c] = d[c] * g[c] + da[c] * invP }
            }
            for c in 0..<C { dy[(n * P + Int(maxPixel[n * C + c])) * C + c] += dm[c] }
        }
    }
}

/// Per pixel, the maximum (and its channel) and the mean over channels of
/// y1 = y * cg, into the interior of the zero-bordered planes.
func cbamSpatialPools(
    _ planes: UnsafeMutablePointer<Float>,     // [N, 2, H+6, W+6] interior written
    maxChannel: UnsafeMutablePointer<Int32>,   // [N, P] written
    _ y: UnsafePointer<Float>,                 // [N, P, C]
    channelGate: UnsafePointer<Float>,         // [N, C]
    N: Int, H: Int, W: Int, C: Int, workers: Int
) {
    let P = H * W, PW = W + 6, plane = (H + 6) * PW
    let lanes = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
    forRowChunks(N * P, workers: rowWorkers(N * P, rowCost: C, workers: workers)) { _, m0, m1 in
        for m in m0..<m1 {
            let n = m / P, p = m % P
            let x = y + m * C, g = channelGate + n * C
            var best = V8(repeating: -.infinity), at = SIMD8<Int32>(repeating: Int32.max), sum = V8()
            var c = 0
            while c + 8 <= C {
                let v = load(x + c) * load(g + c)
                let better = v .> best
                best.replace(with: v, where: better)
                at.replace(with: lanes &+ Int32(c), where: better)
                sum += v
                c += 8
            }
            // The lanes' maximum and the first channel holding it, then the tail.
            var mx = best.max(), ix = Int32.max, s = sum.sum()
            for l in 0..<8 where best[l] == mx { ix = min(ix, at[l]) }
            while c < C {
                let v = x[c] * g[c]
                if v > mx || ix == Int32.max { mx = v; ix = Int32(c) }
                s += v
                c += 1
            }
            let cell = n * 2 * plane + (p / W + 3) * PW + p % W + 3
            planes[cell] = mx
            planes[cell + plane] = s / Float(C)
            maxChannel[m] = ix
        }
    }
}

/// dsg[m] = sum over channels of dv * y1 (the spatial gate's gradient), with
/// dv copied to dshortcut on the way.
func cbamSpatialGateGradient(
    _ dsg: UnsafeMutablePointer<Float>,        // [N, P] written
    dshortcut: UnsafeMutablePointer<Float>?,   // [N, P, C] written (= dv), or nil
    _ dv: UnsafePointer<Float>,                // [N, P, C] gradient of y1 * sg + s
    _ y: UnsafePointer<Float>,                 // [N, P, C]
    channelGate: UnsafePointer<Float>,         // [N, C]
    N: Int, P: Int, C: Int, workers: Int
) {
    forRowChunks(N * P, workers: rowWorkers(N * P, rowCost: C, workers: workers)) { _, m0, m1 in
        for m in m0..<m1 {
            let d = dv + m * C, x = y + m * C, g = channelGate + (m / P) * C
            var acc = V8(), c = 0
            while c + 8 <= C { acc = acc.addingProduct(load(d + c), load(x + c) * load(g + c)); c += 8 }
            var s = acc.sum()
            while c < C { s += d[c] * (x[c] * g[c]); c += 1 }
            dsg[m] = s
            dshortcut.map { ($0 + m * C).update(from: d, count: C) }
        }
    }
}

/// dy1 = dv * sg + d(mean plane)/C, plus d(max plane) at the channel the
/// maximum came from, written; dgate[n, c] = sum over pixels of dy1 * y
/// (the channel gate's gradient), written.
func cbamChannelGateGradient(
    _ dy1: UnsafeMutablePointer<Float>,        // [N, P, C] written
    dgate: UnsafeMutablePointer<Float>,        // [N, C] written
    _ dv: UnsafePointer<Float>,                // [N, P, C]
    _ y: UnsafePointer<Float>,                 // [N, P, C]
    spatialGate: UnsafePointer<Float>,         // [N, P]
    dplanes: UnsafePointer<Float>,             // [N, 2, P] gradients of the max and mean planes
    maxChannel: UnsafePointer<Int32>,          // [N, P]
    N: Int, P: Int, C: Int, workers: Int
) {
    let invC = 1 / Float(C)
    forRowChunks(N, workers: rowWorkers(N, rowCost: P * C, workers: workers)) { _, n0, n1 in
        for n in n0..<n1 {
            let dg = dgate + n * C
            for c in 0..<C { dg[c] = 0 }
            for p in 0..<P {
                let m = n * P + p
                let d = dv + m * C, x = y + m * C, o = dy1 + m * C
                let s = spatialGate[m], dmean = dplanes[(2 * n + 1) * P + p] * invC
                for c in 0..<C {
                    let v = d[c] * s + dmean
                    o[c] = v
                    dg[c] += v * x[c]
                }
                let ix = Int(maxChannel[m]), dmax = dplanes[2 * n * P + p]
                o[ix] += dmax
                dg[ix] += dmax * x[ix]
            }
        }
    }
}

/// out[n, y, x] = bias + sum over (c, ky, kx) of planes[n, c, y+ky, x+kx] * w[c, ky, kx]:
/// the 7x7 convolution, 2 -> 1 channel, on the zero-bordered planes
/// (padding 3). Each tap is a run over a row, so the loops vectorize.
func cbamSpatialConvForward(
    _ out: UnsafeMutablePointer<Float>,        // [N, H, W]
    _ planes: UnsafePointer<Float>,            // [N, 2, H+6, W+6]
    _ weight: UnsafePointer<Float>,            // [2, 7, 7] (PyTorch's [1, 2, 7, 7])
    bias: Float,
    N: Int, H: Int, W: Int, workers: Int
) {
    let PW = W + 6, plane = (H + 6) * PW
    forRowChunks(N * H, workers: rowWorkers(N * H, rowCost: 98 * W, workers: workers)) { _, r0, r1 in
        for r in r0..<r1 {
            let n = r / H, y = r % H
            let o = out + r * W
            for x in 0..<W { o[x] = bias }
            for c in 0..<2 { for ky in 0..<7 {
                let src = planes + n * 2 * plane + c * plane + (y + ky) * PW
                for kx in 0..<7 {
                    let w = weight[(c * 7 + ky) * 7 + kx], s = src + kx
                    for x in 0..<W { o[x] += w * s[x] }
                }
            } }
        }
    }
}

/// dplanes is written (the interior, unpadded); dweight and dbias accumulate.
/// The planes' gradient is the forward of the rotated kernel over the
/// output gradient bordered by zeros; the weight gradient sums each
/// worker's rows into its own partial, added in worker order.
func cbamSpatialConvBackward(
    _ dplanes: UnsafeMutablePointer<Float>,    // [N, 2, P] written
    dweight: UnsafeMutablePointer<Float>?,     // [2, 7, 7] accumulated, or nil
    dbias: UnsafeMutablePointer<Float>?,       // [1] accumulated, or nil
    _ dout: UnsafePointer<Float>,              // [N, H, W]
    _ planes: UnsafePointer<Float>,            // [N, 2, H+6, W+6]
    _ weight: UnsafePointer<Float>,            // [2, 7, 7]
    N: Int, H: Int, W: Int, workers: Int
) {
    let PW = W + 6, plane = (H + 6) * PW, P = H * W
    let w = rowWorkers(N * H, rowCost: 98 * W, workers: workers)
    if let dbias { for i in 0..<(N * P) { dbias[0] += dout[i] } }
    if let dweight {
        let partials = UnsafeMutablePointer<Float>.allocate(capacity: w * 98)
        defer { partials.deallocate() }
        partials.update(repeating: 0, count: w * 98)
        forRowChunks(N * H, workers: w) { chunk, r0, r1 in
            let part = partials + chunk * 98
            for r in r0..<r1 {
                let n = r / H, y = r % H, d = dout + r * W
                for c in 0..<2 { for ky in 0..<7 {
                    let src = planes + n * 2 * plane + c * plane + (y + ky) * PW
                    for kx in 0..<7 { part[(c * 7 + ky) * 7 + kx] += dot(d, src + kx, W) }
                } }
            }
        }
        for j in 0..<w { for i in 0..<98 { dweight[i] += partials[j * 98 + i] } }
    }
    // dplanes[n, c, y, x] = sum over (ky, kx) of w[c, 6-ky, 6-kx] * dpad[n, y+ky, x+kx].
    let dpad = UnsafeMutablePointer<Float>.allocate(capacity: N * plane)   // [N, H+6, W+6]
    defer { dpad.deallocate() }
    dpad.update(repeating: 0, count: N * plane)
    for r in 0..<(N * H) {
        let n = r / H, y = r % H
        (dpad + n * plane + (y + 3) * PW + 3).update(from: dout + r * W, count: W)
    }
    forRowChunks(N * H, workers: w) { _, r0, r1 in
        for r in r0..<r1 {
            let n = r / H, y = r % H
            for c in 0..<2 {
                let o = dplanes + (n * 2 + c) * P + y * W
                for x in 0..<W { o[x] = 0 }
                for ky in 0..<7 {
                    let src = dpad + n * plane + (y + ky) * PW
                    for kx in 0..<7 {
                        let wv = weight[(c * 7 + 6 - ky) * 7 + 6 - kx], s = src + kx
                        for x in 0..<W { o[x] += wv * s[x] }
                    }
                }
            }
        }
    }
}

extension CBAMLayer {
    /// out = act((y * cg) * sg + shortcut): the channel gate from the pooled
    /// features through the shared MLP, the spatial gate from the pooled
    /// channels through the 7x7 convolution and its batch norm (batch
    /// statistics in training). Its buffers keep what backward reads.
    func forward(
        _ out: UnsafeMutablePointer<Float>,             // [N, H, W, C]
        preactivation: UnsafeMutablePointer<Float>?,    // [N, H, W, C] act's input, kept for SiLU, or nil
        _ y: UnsafePointer<Float>,                      // [N, H, W, C] the last convolution's batch-normed output
        shortcut: UnsafePointer<Float>?,                // [N, H, W, C] or nil
        activation: Nonlinearity, N: Int, training: Bool, workers: Int
    ) {
        let P = H * W
        cbamChannelPools(pools.data, maxPixel: maxPixel.data, y, N: N, P: P, C: C, workers: workers)
        channelMLPForward(mlp.data, hidden: hidden.data, pools.data, w1: fc1w.value.data, b1: fc1b.value.data,
                          w2: fc2w.value.data, b2: fc2b.value.data, B: 2 * N, C: C, R: R)
        for i in 0..<(N * C) { gate[i] = mlp[i] + mlp[N * C + i] }
        activationForward(.sigmoid, gate.data, gate.data, count: N * C)
        cbamSpatialPools(planes.data, maxChannel: maxChannel.data, y, channelGate: gate.data, N: N, H: H, W: W, C: C, workers: workers)
        cbamSpatialConvForward(sconv.data, planes.data, spatialWeight.value.data, bias: spatialBias?.value[0] ?? 0,
                               N: N, H: H, W: W, workers: workers)
        if let bn = spatialBN {
            bn.statistics(sconv.data, M: N * P, training: training, workers: workers)
            batchNormActivationForward(.sigmoid, sgate.data, sconv.data, residual: nil, gamma: bn.gamma.value.data,
                                       beta: bn.beta.value.data, mean: bn.mean.data, rstd: bn.rstd.data, M: N * P, C: 1,
                                       workers: workers)
        } else {
            activationForward(.sigmoid, sgate.data, sconv.data, count: N * P)
        }
        gatedActivationForward(activation, out, preactivation: preactivation, y, channelGate: gate.data, spatialGate: sgate.data,
                               residual: shortcut, N: N, P: P, C: C, workers: workers)
    }

    /// From dv, the gradient of (y * cg) * sg + shortcut (act's gradient
    /// already applied): the spatial gate's gradient through its batch norm
    /// and 7x7 convolution to the pooled planes, then the channel gate's
    /// through the shared MLP, then dy. dy and the shortcut's share are
    /// written; parameter gradients accumulate (the 7x7 convolution's only
    /// with `parameterGradients`).
    func backward(
        _ dy: UnsafeMutablePointer<Float>,              // [N, H, W, C] written
        dshortcut: UnsafeMutablePointer<Float>?,        // [N, H, W, C] written, or nil
        _ dv: UnsafePointer<Float>,                     // [N, H, W, C]
        _ y: UnsafePointer<Float>,                      // [N, H, W, C]
        N: Int, training: Bool, parameterGradients: Bool = true, workers: Int
    ) {
        let P = H * W
        let scratch = Tensor([4 * N * P + 5 * N * C + 2 * N * R], zero: false)
        let dsg = scratch.data, dsconv = dsg + N * P, dplanes = dsconv + N * P   // [N, P], [N, P], [N, 2, P]
        let dgate = dplanes + 2 * N * P, dmlp = dgate + N * C                     // [N, C], [2N, C]
        let dpools = dmlp + 2 * N * C, dhidden = dpools + 2 * N * C              // [2N, C], [2N, R]
        cbamSpatialGateGradient(dsg, dshortcut: dshortcut, dv, y, channelGate: gate.data, N: N, P: P, C: C, workers: workers)
        activationBackward(.sigmoid, dsg, dsg, inp: sgate.data, out: sgate.data, count: N * P)
        if let bn = spatialBN {
            batchNormBackward(dsconv, dresidual: nil, dgamma: bn.gamma.grad.data, dbeta: bn.beta.grad.data, dsg,
                              inp: sconv.data, gamma: bn.gamma.value.data, mean: bn.mean.data, rstd: bn.rstd.data,
                              M: N * P, C: 1, training: training, workers: workers)
        } else {
            dsconv.update(from: dsg, count: N * P)
        }
        cbamSpatialConvBackward(dplanes, dweight: parameterGradients ? spatialWeight.grad.data : nil,
                                dbias: parameterGradients ? spatialBias?.grad.data : nil, dsconv, planes.data,
                                spatialWeight.value.data, N: N, H: H, W: W, workers: workers)
        cbamChannelGateGradient(dy, dgate: dgate, dv, y, spatialGate: sgate.data, dplanes: dplanes,
                                maxChannel: maxChannel.data, N: N, P: P, C: C, workers: workers)
        activationBackward(.sigmoid, dgate, dgate, inp: gate.data, out: gate.data, count: N * C)
        // The gate is mlp(avg) + mlp(max): both halves get its gradient.
        dmlp.update(from: dgate, count: N * C)
        (dmlp + N * C).update(from: dgate, count: N * C)
        channelMLPBackward(dpools, dhidden: dhidden, dw1: fc1w.grad.data, db1: fc1b.grad.data, dw2: fc2w.grad.data,
                           db2: fc2b.grad.data, dmlp, pools.data, hidden: hidden.data, w1: fc1w.value.data, w2: fc2w.value.data,
                           B: 2 * N, C: C, R: R)
        cbamChannelPoolsBackward(dy, channelGate: gate.data, dpools: dpools, maxPixel: maxPixel.data, N: N, P: P, C: C, workers: workers)
    }
}
