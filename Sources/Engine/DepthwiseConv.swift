// Depthwise k x k convolution, stride 1, zero padding k/2, NHWC: one filter
// per channel, no bias (the first half of a separable convolution,
// ModelConfig.conv separable). Every loop runs over the channels of one
// pixel, contiguous in NHWC. Forward adds tap by tap into the output row
// (in L1), each tap one long run over the row's pixels: measured 9 ms for
// block1's 64x64x32 at batch 64 against 15 with the taps summed in
// registers per pixel, whose tap loops are too short. The weight gradient
// sums a row's pixels in registers, 8 channels at a time, per tap (11 ms
// against 15 added into memory every pixel); channels past a multiple of 8
// (the image's 3) go one at a time. The border is handled by each tap's
// range of pixels, not by a test per element.
// Weight layout: w[(ky, kx), c]; PyTorch's is [C, 1, k, k] (Parameter.swift).
// Rows of output (n, y) are independent: contiguous runs of them per worker.

@inline(__always) private func load(_ p: UnsafePointer<Float>) -> V8 { UnsafeRawPointer(p).loadUnaligned(as: V8.self) }
@inline(__always) private func store(_ p: UnsafeMutablePointer<Float>, _ v: V8) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V8.self) }

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
                        // Output columns whose tap lies in the image: 0 <= x + kx - p < W.
                        let x0 = max(0, p - kx), x1 = min(W, W + p - kx)
                        let g = part + (ky * k + kx) * C, s = src + (kx - p) * C
                        var c = 0
                        while c + 8 <= C {
                            var acc = V8()
                            for x in x0..<x1 { acc = acc.addingProduct(load(d + x * C + c), load(s + x * C + c)) }
                            store(g + c, load(g + c) + acc)
                            c += 8
                        }
                        while c < C {
                            var acc: Float = 0
                            for x in x0..<x1 { acc += d[x * C + c] * s[x * C + c] }
                            g[c] += acc
                            c += 1
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
