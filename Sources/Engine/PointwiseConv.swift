// Pointwise (1x1) convolution, NHWC: over the M = N*H*W pixels it is one
// GEMM, out[M, OC] = inp[M, C] w[C, OC] (the second half of a separable
// convolution, and the projection shortcut). Rows are split into one
// contiguous chunk per worker, each running its own single-threaded GEMM
// (ConvWorkspace says why); smallGemm where OpenBLAS's packing does not pay
// (short K, as on the im2col path), OpenBLAS otherwise.
// Weight layout: w[C, OC]; PyTorch's is [OC, C, 1, 1] (Parameter.swift).

/// out = inp w + bias, or out += inp w (+ bias) with `accumulate`.
public func pointwiseConvForward(
    _ out: UnsafeMutablePointer<Float>,   // [M, OC]
    _ inp: UnsafePointer<Float>,          // [M, C]
    _ weight: UnsafePointer<Float>,       // [C, OC]
    _ bias: UnsafePointer<Float>?,        // [OC] or nil
    M: Int, C: Int, OC: Int,
    accumulate: Bool = false, workers: Int = 1
) {
    forRowChunks(M, workers: rowWorkers(M, rowCost: C * OC, workers: workers)) { _, m0, m1 in
        let rows = m1 - m0
        let o = out + m0 * OC, i = inp + m0 * C
        if rows == 0 { return }
        if bias == nil && !accumulate && OC % 8 == 0 && C <= 256 {
            smallGemm(m: rows, n: OC, k: C, i, lda: C, weight, ldb: OC, o, ldc: OC)
            return
        }
        if let bias {
            for m in 0..<rows { let row = o + m * OC; for c in 0..<OC { row[c] = (accumulate ? row[c] : 0) + bias[c] } }
        }
        gemm(transA: false, transB: false, m: rows, n: OC, k: C, i, lda: C, weight, ldb: OC,
             beta: bias != nil || accumulate ? 1 : 0, o, ldc: OC)
    }
}

/// dinp is written (added to with `accumulate`); dweight and dbias accumulate.
public func pointwiseConvBackward(
    _ dinp: UnsafeMutablePointer<Float>?,    // [M, C]; nil skips it
    _ dweight: UnsafeMutablePointer<Float>?, // [C, OC], accumulated; nil skips it
    _ dbias: UnsafeMutablePointer<Float>?,   // [OC], accumulated, or nil
    _ dout: UnsafePointer<Float>,            // [M, OC]
    _ inp: UnsafePointer<Float>,             // [M, C]
    _ weight: UnsafePointer<Float>,          // [C, OC]
    M: Int, C: Int, OC: Int,
    accumulate: Bool = false, workers: Int = 1
) {
    if let dbias {
        for m in 0..<M {
            let d = dout + m * OC
            for o in 0..<OC { dbias[o] += d[o] }
        }
    }
    let w = rowWorkers(M, rowCost: C * OC, workers: workers)
    if let dweight {
        // Each worker's rows into its own partial, added in worker order.
        let partials = UnsafeMutablePointer<Float>.allocate(capacity: w * C * OC)  // [w, C, OC]
        defer { partials.deallocate() }
        forRowChunks(M, workers: w) { chunk, m0, m1 in
            let part = partials + chunk * C * OC
            if m1 == m0 { part.update(repeating: 0, count: C * OC); return }
            gemm(transA: true, transB: false, m: C, n: OC, k: m1 - m0, inp + m0 * C, lda: C, dout + m0 * OC, ldb: OC,
                 beta: 0, part, ldc: OC)
        }
        for j in 0..<w { addInto(dweight, partials + j * C * OC, C * OC) }
    }
    if let dinp {
        // smallGemm reads B's rows in place: the weight transposed, [OC, C].
        // It wins for K = OC <= 32 only (one worker, batch 64, best of 5: 32 -> 32
        // at 64x64 6.3 ms against OpenBLAS's 11.6; 64 -> 64 at 32x32 8.2 against 6.3).
        let small = !accumulate && C % 8 == 0 && OC <= 32
        let wt = UnsafeMutablePointer<Float>.allocate(capacity: small ? C * OC : 1)
        defer { wt.deallocate() }
        if small { for c in 0..<C { for o in 0..<OC { wt[o * C + c] = weight[c * OC + o] } } }
        forRowChunks(M, workers: w) { _, m0, m1 in
            if m1 == m0 { return }
            if small {
                smallGemm(m: m1 - m0, n: C, k: OC, dout + m0 * OC, lda: OC, wt, ldb: C, dinp + m0 * C, ldc: C)
            } else {
                gemm(transA: false, transB: true, m: m1 - m0, n: C, k: OC, dout + m0 * OC, lda: OC, weight, ldb: OC,
                     beta: accumulate ? 1 : 0, dinp + m0 * C, ldc: C)
            }
        }
    }
}
