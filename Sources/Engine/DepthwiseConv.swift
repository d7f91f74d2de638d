// Depthwise k x k convolution, stride 1, zero padding k/2, NHWC: one filter
// per channel, no bias (the first half of a separable convolution,
// ModelConfig.conv separable). Every loop runs over the channels of one
// pixel, contiguous in NHWC, and vectorizes. Forward adds tap by tap into
// the output row (in L1), each tap one run over the row's pixels; the
// weight gradient likewise into a per-tap row of C partial sums. Measured
// (one worker, batch 64, best of 5): summing the taps in registers per
// pixel instead made the forward slower (block1's 64x64x32: 9 -> 15 ms;
// its tap loops of 3 are too short), and the weight gradient summed over a
// row's pixels in registers per tap and 8 channels won at 32 channels (14.1
// -> 12.0 ms) and lost at 64 (4.1 -> 5.7 ms): not kept. The border is
// handled by each tap's range of pixels, not by a test per element.
// Weight layout: w[(ky, kx), c]; PyTorch's is [C, 1, k, k] (Parameter.swift).
// Rows of output (n, y) are independent: contiguous runs of them per worker.


/// out[n, y, x, c] = sum over (ky, kx) of inp[n, y+ky-p, x+kx-p, c] * w[(ky, kx), c];
/// with `accumulate`, added to out.
public func depthwiseConvForward(
    _ out: UnsafeMutablePointer<Float>,   // [N, H, W, C]
    _ inp: UnsafePointer<Float>,          // [N, H, W, C]
    _ weight: UnsafePointer<Float>,       // [k*k, C]
    N: Int, H: Int, W: Int, C: Int, k: Int,
    accumulate: Bool = false, workers: Int = 1
) {
    let p = k / 2
    forRowChunks(N * H, workers: rowWorkers(N * H, rowCost: W * C * k * k, workers: workers)) { _, r0, r1 in
        for r in r0..<r1 {
            let n = r / H, y = r % H
            let o = out + r * W * C
            if !accumulate { o.update(repeating: 0, count: W * C) }
            for ky in max(0, p - y)..<min(k, H + p - y) {
                let src = inp + (n * H + y + ky - p) * W * C
                for kx in 0..<k {
                    let wk = weight + (ky * k + kx) * C
                    // Output columns whose tap lies in the image: 0 <= x + kx - p < W.
                    for x in max(0, p - kx)..<min(W, W + p - kx) {
                        let s = src + (x + kx - p) * C, d = o + x * C
                        for c in 0..<C { d[c] += s[c] * wk[c] }
                    }
                }
            }
        }
    }
}

/// dinp is written (added to with `accumulate`); dweight accumulates. The
/// input gradient is the forward of the kernel rotated 180 degrees; the
/// weight gradient sums each worker's rows into its own partial, added in
/// worker order (deterministic for a worker count).
public func depthwiseConvBackward(
    _ dinp: UnsafeMutablePointer<Float>?,    // [N, H, W, C]; nil skips it
    _ dweight: UnsafeMutablePointer<Float>?, // [k*k, C], accumulated; nil skips it
    _ dout: UnsafePointer<Float>,            // [N, H, W, C]
    _ inp: UnsafePointer<Float>,             // [N, H, W, C]
    _ weight: UnsafePointer<Float>,          // [k*k, C]
    N: Int, H: Int, W: Int, C: Int, k: Int,
    accumulate: Bool = false, workers: Int = 1
) {
    let p = k / 2, taps = k * k
    if let dweight {
        let w = rowWorkers(N * H, rowCost: W * C * taps, workers: workers)
        let partials = UnsafeMutablePointer<Float>.allocate(capacity: w * taps * C)  // [w, k*k, C]
        defer { partials.deallocate() }
        partials.update(repeating: 0, count: w * taps * C)
        forRowChunks(N * H, workers: w) { chunk, r0, r1 in
            let part = partials + chunk * taps * C
            for r in r0..<r1 {
                let n = r / H, y = r % H
                let d = dout + r * W * C
                for ky in max(0, p - y)..<min(k, H + p - y) {
                    let src = inp + (n * H + y + ky - p) * W * C
                    for kx in 0..<k {
                        let g = part + (ky * k + kx) * C
                        for x in max(0, p - kx)..<min(W, W + p - kx) {
                            let s = src + (x + kx - p) * C, dd = d + x * C
                            for c in 0..<C { g[c] += dd[c] * s[c] }
                        }
                    }
                }
            }
        }
        for j in 0..<w { addInto(dweight, partials + j * taps * C, taps * C) }
    }
    if let dinp {
        let flipped = UnsafeMutablePointer<Float>.allocate(capacity: taps * C)  // [k*k, C]
        defer { flipped.deallocate() }
        for t in 0..<taps { (flipped + (taps - 1 - t) * C).update(from: weight + t * C, count: C) }
        depthwiseConvForward(dinp, dout, flipped, N: N, H: H, W: W, C: C, k: k, accumulate: accumulate, workers: workers)
    }
}
