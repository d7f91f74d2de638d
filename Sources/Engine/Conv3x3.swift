// 3x3 convolution, stride 1, zero padding 1, NHWC.
// Forward: tiled im2col then one GEMM per tile, so the column buffer stays
// cache-sized instead of N*H*W*9*C floats. Backward: per tile, the weight
// gradient is one GEMM against the (recomputed) columns and the input
// gradient one GEMM into a column buffer scattered back by col2im.
//
// Weight layout inside the engine: w[K = (ky, kx, c), OC] (HWIO), so the
// forward GEMM needs no transpose. Checkpoints convert to PyTorch's
// [OC, C, 3, 3] (Checkpoint.swift).

/// Reused column buffers for every convolution of a model; grows, never shrinks.
public final class ConvWorkspace {
    /// Upper bound on floats per column tile. Measured with `lab bench` on
    /// 2 Zen 4 cores: 2^17 (512 KiB, about L2) beat 2^16, 2^18, 2^20 and 2^22.
    public var tileFloats: Int
    private(set) var col: UnsafeMutablePointer<Float>
    private(set) var dcol: UnsafeMutablePointer<Float>
    private var capacity: Int

    public init(tileFloats: Int = 1 << 17) {
        self.tileFloats = tileFloats
        capacity = 0
        col = .allocate(capacity: 1)
        dcol = .allocate(capacity: 1)
    }

    deinit { col.deallocate(); dcol.deallocate() }

    /// Rows of output (one image row of W pixels each) per tile.
    func rowsPerTile(W: Int, K: Int) -> Int { max(1, tileFloats / (W * K)) }

    func reserve(_ floats: Int) {
        guard floats > capacity else { return }
        col.deallocate(); dcol.deallocate()
        col = .allocate(capacity: floats)
        dcol = .allocate(capacity: floats)
        capacity = floats
    }
}

/// Columns for output rows r0..<r1 (r = n*H + y): col[(r-r0)*W + x, (ky, kx, c)].
/// Each (ky) patch row is 3*C contiguous input floats except at the left and
/// right border, so the interior is three-wide block copies.
@inline(__always)
private func im2colRows(
    _ col: UnsafeMutablePointer<Float>,   // [(r1-r0)*W, 9*C]
    _ inp: UnsafePointer<Float>,          // [N, H, W, C]
    r0: Int, r1: Int, H: Int, W: Int, C: Int
) {
    let K = 9 * C, C3 = 3 * C
    for r in r0..<r1 {
        let n = r / H, y = r % H
        let rowBase = col + (r - r0) * W * K
        for ky in 0..<3 {
            let iy = y + ky - 1
            if iy < 0 || iy >= H {
                for x in 0..<W { (rowBase + x * K + ky * C3).update(repeating: 0, count: C3) }
                continue
            }
            let src = inp + (n * H + iy) * W * C
            // x = 0: left neighbour is padding.
            var dst = rowBase + ky * C3
            dst.update(repeating: 0, count: C)
            (dst + C).update(from: src, count: min(2, W) * C)
            if W == 1 { (dst + 2 * C).update(repeating: 0, count: C); continue }
            if W > 2 {
                for x in 1..<(W - 1) {
                    (rowBase + x * K + ky * C3).update(from: src + (x - 1) * C, count: C3)
                }
            }
            // x = W-1: right neighbour is padding.
            dst = rowBase + (W - 1) * K + ky * C3
            dst.update(from: src + (W - 2) * C, count: 2 * C)
            (dst + 2 * C).update(repeating: 0, count: C)
        }
    }
}

/// Adjoint of im2colRows: dinp += scatter(dcol).
@inline(__always)
private func col2imRows(
    _ dinp: UnsafeMutablePointer<Float>,  // [N, H, W, C], accumulated
    _ dcol: UnsafePointer<Float>,         // [(r1-r0)*W, 9*C]
    r0: Int, r1: Int, H: Int, W: Int, C: Int
) {
    let K = 9 * C, C3 = 3 * C
    for r in r0..<r1 {
        let n = r / H, y = r % H
        let rowBase = dcol + (r - r0) * W * K
        for ky in 0..<3 {
            let iy = y + ky - 1
            if iy < 0 || iy >= H { continue }
            let dst = dinp + (n * H + iy) * W * C
            // x = 0 touches input columns 0 and 1 only.
            addInto(dst, rowBase + ky * C3 + C, min(2, W) * C)
            if W == 1 { continue }
            if W > 2 {
                for x in 1..<(W - 1) {
                    addInto(dst + (x - 1) * C, rowBase + x * K + ky * C3, C3)
                }
            }
            addInto(dst + (W - 2) * C, rowBase + (W - 1) * K + ky * C3, 2 * C)
        }
    }
}

@inline(__always)
func addInto(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int) {
    for i in 0..<n { dst[i] += src[i] }
}

public func conv3x3Forward(
    _ out: UnsafeMutablePointer<Float>,   // [N, H, W, OC]
    _ inp: UnsafePointer<Float>,          // [N, H, W, C]
    _ weight: UnsafePointer<Float>,       // [9*C, OC]
    _ bias: UnsafePointer<Float>?,        // [OC] or nil
    N: Int, H: Int, W: Int, C: Int, OC: Int,
    workspace ws: ConvWorkspace
) {
    let K = 9 * C
    let rows = N * H
    let R = ws.rowsPerTile(W: W, K: K)
    ws.reserve(R * W * K)
    var r0 = 0
    while r0 < rows {
        let r1 = min(rows, r0 + R)
        let M = (r1 - r0) * W
        let o = out + r0 * W * OC
        im2colRows(ws.col, inp, r0: r0, r1: r1, H: H, W: W, C: C)
        if let bias {
            for m in 0..<M { (o + m * OC).update(from: bias, count: OC) }
        }
        gemm(transA: false, transB: false, m: M, n: OC, k: K,
             ws.col, lda: K, weight, ldb: OC, beta: bias == nil ? 0 : 1, o, ldc: OC)
        r0 = r1
    }
}

public func conv3x3Backward(
    _ dinp: UnsafeMutablePointer<Float>?,  // [N, H, W, C], accumulated; nil for the network input
    _ dweight: UnsafeMutablePointer<Float>, // [9*C, OC], accumulated
    _ dbias: UnsafeMutablePointer<Float>?,  // [OC], accumulated, or nil
    _ dout: UnsafePointer<Float>,           // [N, H, W, OC]
    _ inp: UnsafePointer<Float>,            // [N, H, W, C]
    _ weight: UnsafePointer<Float>,         // [9*C, OC]
    N: Int, H: Int, W: Int, C: Int, OC: Int,
    workspace ws: ConvWorkspace
) {
    let K = 9 * C
    let rows = N * H
    let R = ws.rowsPerTile(W: W, K: K)
    ws.reserve(R * W * K)
    if let dbias {
        for m in 0..<(rows * W) {
            let d = dout + m * OC
            for o in 0..<OC { dbias[o] += d[o] }
        }
    }
    var r0 = 0
    while r0 < rows {
        let r1 = min(rows, r0 + R)
        let M = (r1 - r0) * W
        let d = dout + r0 * W * OC
        im2colRows(ws.col, inp, r0: r0, r1: r1, H: H, W: W, C: C)
        gemm(transA: true, transB: false, m: K, n: OC, k: M,
             ws.col, lda: K, d, ldb: OC, beta: 1, dweight, ldc: OC)
        if let dinp {
            gemm(transA: false, transB: true, m: M, n: K, k: OC,
                 d, lda: OC, weight, ldb: OC, beta: 0, ws.dcol, ldc: K)
            col2imRows(dinp, ws.dcol, r0: r0, r1: r1, H: H, W: W, C: C)
        }
        r0 = r1
    }
}
