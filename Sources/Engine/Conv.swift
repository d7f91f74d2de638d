import Dispatch

// k x k convolution (k odd: 3 or 5), stride 1, zero padding k/2 ("same"),
// NHWC. 3x3 takes Winograd where it applies (Winograd.swift); otherwise,
// and for every k, tiled im2col then one GEMM per tile, so the column
// buffer stays cache-sized instead of N*H*W*k*k*C floats. Backward: per
// tile, the weight gradient is one GEMM against the (recomputed) columns;
// the input gradient is the forward of the rotated kernel (flipKernel).
//
// Weight layout inside the engine: w[K = (ky, kx, c), OC] (HWIO), so the
// forward GEMM needs no transpose. Checkpoints convert to PyTorch's
// [OC, C, k, k] (Parameter.swift).

/// Column buffers for every convolution of a model, one set per worker;
/// grows, never shrinks, so a training step allocates nothing.
///
/// Why workers: OpenBLAS splits the skinny GEMMs of a small CNN (N = 32..128
/// columns) badly across threads. Measured on 2 Zen 4 cores at
/// M=4096, N=32, K=288: 90 GFLOP/s on one thread, 65 on two. So each worker
/// runs single-threaded GEMMs on its own tiles, and tiles go round-robin to
/// workers: deterministic for a given worker count.
public final class ConvWorkspace {
    /// Upper bound on floats per column tile (512 KiB, about L2).
    public var tileFloats: Int
    public let workers: Int
    /// Use Winograd F(4x4,3x3) or F(2x2,3x3) where it pays (Winograd.swift); im2col otherwise.
    public var winograd = true
    private(set) var cols: [UnsafeMutablePointer<Float>]
    private(set) var dws: [UnsafeMutablePointer<Float>]    // per-worker weight-gradient partials
    private(set) var flipped: UnsafeMutablePointer<Float>  // [k*k*OC, C] weights for the input gradient
    private(set) var flipped2: UnsafeMutablePointer<Float> // [36, C, OC] Winograd-transformed weights
    private var colCapacity = 0, dwCapacity = 0

    public init(tileFloats: Int = 1 << 17, workers: Int = 1) {
        self.tileFloats = tileFloats
        self.workers = max(1, workers)
        cols = (0..<self.workers).map { _ in .allocate(capacity: 1) }
        dws = (0..<self.workers).map { _ in .allocate(capacity: 1) }
        flipped = .allocate(capacity: 1)
        flipped2 = .allocate(capacity: 1)
    }

    deinit { cols.forEach { $0.deallocate() }; dws.forEach { $0.deallocate() }; flipped.deallocate(); flipped2.deallocate() }

    /// Rows of output (one image row of W pixels each) per tile: cache-sized,
    /// and small enough that every worker gets a tile.
    func rowsPerTile(rows: Int, W: Int, K: Int) -> Int {
        let byCache = max(1, tileFloats / (W * K))
        let byWorkers = max(1, (rows + workers - 1) / workers)
        return min(byCache, byWorkers)
    }

    func reserveColumns(_ floats: Int) {
        guard floats > colCapacity else { return }
        for i in 0..<workers { cols[i].deallocate(); cols[i] = .allocate(capacity: floats) }
        colCapacity = floats
    }

    func reserveWeights(_ floats: Int) {
        guard floats > dwCapacity else { return }
        for i in 0..<workers { dws[i].deallocate(); dws[i] = .allocate(capacity: floats) }
        flipped.deallocate(); flipped = .allocate(capacity: floats)
        flipped2.deallocate(); flipped2 = .allocate(capacity: floats)
        dwCapacity = floats
    }

    /// Runs body(worker) on every worker, in parallel when there are several.
    @inline(__always)
    func parallel(_ body: (Int) -> Void) {
        if workers == 1 { body(0) } else { concurrently(workers, body) }
    }
}

/// Columns for output rows r0..<r1 (r = n*H + y): col[(r-r0)*W + x, (ky, kx, c)].
/// Each (ky) patch row is k*C contiguous input floats except within k/2 of
/// the left and right border, so the interior is k-wide block copies.
@inline(__always)
private func im2colRows(
    _ col: UnsafeMutablePointer<Float>,   // [(r1-r0)*W, k*k*C]
    _ inp: UnsafePointer<Float>,          // [N, H, W, C]
    r0: Int, r1: Int, H: Int, W: Int, C: Int, k: Int
) {
    let p = k / 2, K = k * k * C, kC = k * C
    // Output columns whose patch row lies inside the image: [x0, x1).
    let x0 = min(p, W), x1 = max(x0, W - p)
    for r in r0..<r1 {
        let n = r / H, y = r % H
        let rowBase = col + (r - r0) * W * K
        for ky in 0..<k {
            let iy = y + ky - p
            if iy < 0 || iy >= H {
                for x in 0..<W { (rowBase + x * K + ky * kC).update(repeating: 0, count: kC) }
                continue
            }
            let src = inp + (n * H + iy) * W * C
            // Near the borders: tap by tap, padding where the patch leaves the image.
            @inline(__always) func border(_ x: Int) {
                let dst = rowBase + x * K + ky * kC
                for kx in 0..<k {
                    let ix = x + kx - p
                    if ix < 0 || ix >= W {
                        (dst + kx * C).update(repeating: 0, count: C)
                    } else {
                        (dst + kx * C).update(from: src + ix * C, count: C)
                    }
                }
            }
            for x in 0..<x0 { border(x) }
            for x in x0..<x1 { copyRun(rowBase + x * K + ky * kC, src + (x - p) * C, kC) }
            for x in x1..<W { border(x) }
        }
    }
}

/// dst[0..<n] = src[0..<n] for the short runs of im2col (k C floats: 9 in
/// block1.conv1), in 8-float vectors, the last one overlapping: a memmove
/// call per run cost more than the copy (2.3% of a 1-thread quickstart epoch).
@inline(__always)
private func copyRun(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int) {
    guard n >= 8 else { dst.update(from: src, count: n); return }
    typealias V = SIMD8<Float>
    var i = 0
    while i + 8 < n {
        UnsafeMutableRawPointer(dst + i).storeBytes(of: UnsafeRawPointer(src + i).loadUnaligned(as: V.self), as: V.self)
        i += 8
    }
    UnsafeMutableRawPointer(dst + n - 8).storeBytes(of: UnsafeRawPointer(src + n - 8).loadUnaligned(as: V.self), as: V.self)
}

@inline(__always)
func addInto(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int) {
    for i in 0..<n { dst[i] += src[i] }
}

/// out = relu?(scale * conv(inp) + bias + residual), or out += conv(inp) (+ bias)
/// with `accumulate` (the input-gradient pass). Eval passes batch norm as
/// scale and bias, so one call writes a unit's activation.
public func convForward(
    _ out: UnsafeMutablePointer<Float>,   // [N, H, W, OC]
    _ inp: UnsafePointer<Float>,          // [N, H, W, C]
    _ weight: UnsafePointer<Float>,       // [k*k*C, OC]
    _ bias: UnsafePointer<Float>?,        // [OC] or nil
    N: Int, H: Int, W: Int, C: Int, OC: Int, k: Int = 3,
    scale: UnsafePointer<Float>? = nil,     // [OC] or nil
    residual: UnsafePointer<Float>? = nil,  // [N, H, W, OC] or nil
    relu: Bool = false,
    accumulate: Bool = false,
    kernelCache: WinogradKernelCache? = nil, // this layer's, for its Winograd kernel
    workspace ws: ConvWorkspace
) {
    precondition(!accumulate || (scale == nil && residual == nil && !relu), "accumulate takes no epilogue")
    precondition(k % 2 == 1, "convolutions have odd kernels")
    if k == 3, ws.winograd, let tile = ConvWorkspace.winogradTile(N: N, H: H, W: W, C: C, OC: OC, cached: kernelCache != nil) {
        conv3x3WinogradForward(out, inp, weight, bias, N: N, H: H, W: W, C: C, OC: OC, tile: tile, scale: scale,
                               residual: residual, relu: relu, accumulate: accumulate, kernelCache: kernelCache, workspace: ws)
        return
    }
    let K = k * k * C
    let rows = N * H
    let R = ws.rowsPerTile(rows: rows, W: W, K: K)
    let tiles = (rows + R - 1) / R
    let epilogue = scale != nil || residual != nil || relu
    ws.reserveColumns(R * W * K)
    ws.parallel { worker in
        let col = ws.cols[worker]
        for t in stride(from: worker, to: tiles, by: ws.workers) {
            let r0 = t * R, r1 = min(rows, r0 + R)
            let M = (r1 - r0) * W
            let o = out + r0 * W * OC
            im2colRows(col, inp, r0: r0, r1: r1, H: H, W: W, C: C, k: k)
            if (bias == nil || epilogue) && !accumulate && OC % 8 == 0 && K <= 256 {
                // block1.conv1: K = 27 is too short for OpenBLAS's packing to pay. Long
                // K (wide layers at small N) stays in OpenBLAS, which blocks over K.
                smallGemm(m: M, n: OC, k: K, col, lda: K, weight, ldb: OC, o, ldc: OC)
            } else {
                if let bias, !epilogue {
                    for m in 0..<M { let row = o + m * OC; for c in 0..<OC { row[c] = (accumulate ? row[c] : 0) + bias[c] } }
                }
                gemm(transA: false, transB: false, m: M, n: OC, k: K,
                     col, lda: K, weight, ldb: OC, beta: (bias != nil && !epilogue) || accumulate ? 1 : 0, o, ldc: OC)
            }
            if epilogue {
                convEpilogue(o, scale: scale, bias: bias, residual: residual.map { $0 + r0 * W * OC }, relu: relu, M: M, OC: OC)
            }
        }
    }
}

/// out = relu?(scale * out + bias + residual) over M rows, in place: the
/// im2col path's epilogue (Winograd's is in its output transforms).
private func convEpilogue(_ out: UnsafeMutablePointer<Float>, scale: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                          residual: UnsafePointer<Float>?, relu: Bool, M: Int, OC: Int) {
    // Identity scale and zero bias in place of nil: no optionals in the loops, which then vectorize.
    let ones = [Float](repeating: 1, count: OC), zeros = [Float](repeating: 0, count: OC)
    let floor: Float = relu ? 0 : -.infinity
    ones.withUnsafeBufferPointer { one in zeros.withUnsafeBufferPointer { zero in
        let sc = scale ?? one.baseAddress!, b = bias ?? zero.baseAddress!
        for m in 0..<M {
            let row = out + m * OC
            if let residual {
                let r = residual + m * OC
                for c in 0..<OC { row[c] = max(floor, row[c] * sc[c] + b[c] + r[c]) }
            } else {
                for c in 0..<OC { row[c] = max(floor, row[c] * sc[c] + b[c]) }
            }
        }
    } }
}

/// The input gradient of a k x k "same" convolution is itself a k x k "same"
/// convolution of the output gradient with the kernel rotated 180 degrees
/// and its channel axes swapped: wf[(k-1-ky, k-1-kx, oc), c] = w[(ky, kx, c), oc].
/// Computing it that way writes disjoint output rows per tile (no col2im
/// scatter, so tiles run in parallel) and keeps GEMM shapes as wide as the
/// forward's.
@inline(__always)
func flipKernel(_ wf: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>, C: Int, OC: Int, k: Int = 3) {
    let taps = k * k
    for t in 0..<taps {
        let tf = taps - 1 - t
        for c in 0..<C {
            let src = w + (t * C + c) * OC
            for o in 0..<OC { wf[(tf * OC + o) * C + c] = src[o] }
        }
    }
}

/// dinp is written, or added to with `accumulate` (a block's first
/// activation, whose skip wrote its share first); dweight and dbias accumulate.
public func convBackward(
    _ dinp: UnsafeMutablePointer<Float>?,  // [N, H, W, C]; nil for the network input
    _ dweight: UnsafeMutablePointer<Float>?, // [k*k*C, OC], accumulated; nil skips it
    _ dbias: UnsafeMutablePointer<Float>?,  // [OC], accumulated, or nil
    _ dout: UnsafePointer<Float>,           // [N, H, W, OC]
    _ inp: UnsafePointer<Float>,            // [N, H, W, C]
    _ weight: UnsafePointer<Float>,         // [k*k*C, OC]
    N: Int, H: Int, W: Int, C: Int, OC: Int, k: Int = 3,
    accumulate: Bool = false,
    workspace ws: ConvWorkspace
) {
    let K = k * k * C
    let rows = N * H
    if let dbias {
        for m in 0..<(rows * W) {
            let d = dout + m * OC
            for o in 0..<OC { dbias[o] += d[o] }
        }
    }
    // Weight gradient: each worker sums its tiles into its own partial,
    // then the partials are added in worker order (deterministic).
    let R = ws.rowsPerTile(rows: rows, W: W, K: K)
    let tiles = (rows + R - 1) / R
    ws.reserveColumns(R * W * K)
    // Room for the Winograd-transformed kernel too: the input-gradient
    // convolution below may take that path, and growing the buffers then
    // would free `flipped` while it is being read.
    ws.reserveWeights(max(36, k * k) * C * OC)
    if let dweight, k == 3, ws.winograd, let tile = ConvWorkspace.winogradWeightGradientTile(N: N, H: H, W: W, C: C, OC: OC) {
        conv3x3WinogradWeightGradient(dweight, dout, inp, N: N, H: H, W: W, C: C, OC: OC, tile: tile, workspace: ws)
    } else if let dweight {
        ws.parallel { worker in
            let col = ws.cols[worker], dw = ws.dws[worker]
            dw.update(repeating: 0, count: K * OC)
            for t in stride(from: worker, to: tiles, by: ws.workers) {
                let r0 = t * R, r1 = min(rows, r0 + R)
                im2colRows(col, inp, r0: r0, r1: r1, H: H, W: W, C: C, k: k)
                gemm(transA: true, transB: false, m: K, n: OC, k: (r1 - r0) * W,
                     col, lda: K, dout + r0 * W * OC, ldb: OC, beta: 1, dw, ldc: OC)
            }
        }
        for w in 0..<ws.workers { addInto(dweight, ws.dws[w], K * OC) }
    }
    if let dinp {
        flipKernel(ws.flipped, weight, C: C, OC: OC, k: k)
        convForward(dinp, dout, ws.flipped, nil, N: N, H: H, W: W, C: OC, OC: C, k: k, accumulate: accumulate, workspace: ws)
    }
}
