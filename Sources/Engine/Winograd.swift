// Winograd convolution for the 3x3 "same" convolution (Lavin & Gray 2016):
// each m x m output tile is computed from an (m+2) x (m+2) input tile with
// (m+2)^2 element-wise products per channel pair, and the products for all
// tiles become (m+2)^2 GEMMs [tiles, C] x [C, OC] in the transformed domain.
// Multiplications per output against im2col's 9: F(2x2,3x3) 4 (2.25x fewer),
// F(4x4,3x3) 2.25 (4x fewer; its transforms carry larger constants, so its
// float32 error is a few times F(2x2)'s: see the tests' tolerances).
//
//   V = B^T d B          (input tile d)      F(2x2): below; F(4x4): Winograd4x4.swift
//   U = G g G^T          (kernel g: 3x3)
//   Y = A^T (U .* V) A   (output tile)
//
// Layouts: V [T, a, C], U [a, C, OC], products [T, a, OC]; a = (m+2)^2,
// T = tiles in a chunk. Tile-major, so a transform reads and writes one
// contiguous run per tile; the GEMM of point k reads every a-th row (lda = a C). Chunks of tile rows go
// round-robin to workers, as in im2col.
//
// F(2x2): B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
//         G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
//         A^T = [1 1 1 0; 0 1 -1 -1]

import Dispatch
import Foundation  // memcmp

/// The output tile of a Winograd convolution.
public enum WinogradTile: Sendable {
    case f2x2, f4x4

    var m: Int { self == .f2x2 ? 2 : 4 }
    /// Transformed-domain points: (m+2)^2.
    var points: Int { (m + 2) * (m + 2) }
    var G: [[Float]] { self == .f2x2 ? winogradG2 : winogradG4 }
}

/// What an output transform does with each output Y = A^T P A:
/// out = relu?(Y + bias + residual), or out += Y + bias when accumulating.
/// Eval folds batch norm's scale into the kernel and its shift into the
/// bias, so one pass writes the unit's activation.
struct WinogradEpilogue {
    var bias: UnsafePointer<Float>?       // [OC]
    var residual: UnsafePointer<Float>?   // [N, H, W, OC], same layout as out
    var relu = false
    var accumulate = false
}

extension ConvWorkspace {
    /// Winograd pays off once the GEMMs, not the transforms, dominate: wide
    /// enough channels, and enough outputs to amortize the kernel transform
    /// (a * C * OC, redone every call since training changes the weights).
    /// Measured (lab bench, batch 64): F(2x2) inference 1.2x im2col's; at
    /// batch 1 the kernel transform made block 2-3 slower, hence the output
    /// count. F(4x4) wherever the image divides into 4x4 tiles.
    /// With a kernel cache the transform is paid once per weights, so the
    /// output count does not matter (eval: latency, Grad-CAM).
    static func winogradTile(N: Int, H: Int, W: Int, C: Int, OC: Int, cached: Bool = false) -> WinogradTile? {
        guard C >= 16, OC >= 16, C % 8 == 0, OC % 8 == 0, H >= 4, W >= 4,
              cached || N * H * W >= 32 * max(C, OC) else { return nil }
        if H % 4 == 0 && W % 4 == 0 { return .f4x4 }
        if H % 2 == 0 && W % 2 == 0 { return .f2x2 }
        return nil
    }

    /// The weight gradient's GEMMs are [C, tiles] x [tiles, OC]. With
    /// F(2x2) at 32 channels their outputs are too small to beat im2col's one
    /// long GEMM (lab bench, 2 threads: block1.conv2 backward 88 ms against
    /// 85), from 64 on they win (block3 convolutions 57 -> 44 ms). F(4x4)
    /// halves the products again and wins at 32 too (1 thread: block1.conv2
    /// backward 221 -> 150-170 ms).
    static func winogradWeightGradientTile(N: Int, H: Int, W: Int, C: Int, OC: Int) -> WinogradTile? {
        guard let tile = winogradTile(N: N, H: H, W: W, C: C, OC: OC) else { return nil }
        return tile == .f4x4 || min(C, OC) >= 64 ? tile : nil
    }
}

/// G of U = G g G^T; its transpose takes the weight gradient back (dw = G^T dU G).
let winogradG2: [[Float]] = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]

/// U[k, c, oc] for k = a i + j (a = G's rows) from w[(ky, kx, c), oc].
/// Split over (c, oc) across workers: at 128 channels this is millions of
/// multiply-adds, redone every training step.
/// With `scale`, output channel oc is multiplied by scale[oc] (the
/// convolution is linear in its kernel: batch norm folded in, eval).
func winogradKernel(_ u: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>, G: [[Float]], C: Int, OC: Int,
                    scale: UnsafePointer<Float>? = nil, workers: Int = 1) {
    let a = G.count, CO = C * OC
    forRowChunks(CO, workers: rowWorkers(CO, rowCost: a * a, workers: workers)) { _, e0, e1 in
        for i in 0..<a { for j in 0..<a {
            let dst = u + (i * a + j) * CO
            for e in e0..<e1 { dst[e] = 0 }
            for ky in 0..<3 { for kx in 0..<3 {
                let g = G[i][ky] * G[j][kx]
                if g == 0 { continue }
                let src = w + (ky * 3 + kx) * CO
                for e in e0..<e1 { dst[e] += g * src[e] }
            } }
            if let scale { for e in e0..<e1 { dst[e] *= scale[e % OC] } }
        } }
    }
}

/// dw[(ky, kx, c), oc] += (G^T dU G)[ky, kx]: the kernel transform's adjoint.
func winogradKernelGradient(_ dw: UnsafeMutablePointer<Float>, _ dU: UnsafePointer<Float>, G: [[Float]], C: Int, OC: Int,
                            workers: Int = 1) {
    let a = G.count, CO = C * OC
    forRowChunks(CO, workers: rowWorkers(CO, rowCost: a * a, workers: workers)) { _, e0, e1 in
        for ky in 0..<3 { for kx in 0..<3 {
            let dst = dw + (ky * 3 + kx) * CO
            for i in 0..<a { for j in 0..<a {
                let g = G[i][ky] * G[j][kx]
                if g == 0 { continue }
                let src = dU + (i * a + j) * CO
                for e in e0..<e1 { dst[e] += g * src[e] }
            } }
        } }
    }
}

/// A layer's transformed kernel, kept while its weights stay the same
/// (evaluation, Grad-CAM, the latency of one image). Whether they did is
/// decided by comparing the weights themselves with the copy it was made
/// from, not by a version counter every writer would have to bump: a missed
/// bump would be a silently stale kernel, the comparison costs one read of
/// 9 C OC floats against the transform's 36 C OC writes.
public final class WinogradKernelCache {
    private var source = UnsafeMutablePointer<Float>.allocate(capacity: 1)  // [9*C + OC] the weights and scale U was made from
    private var U = UnsafeMutablePointer<Float>.allocate(capacity: 1)       // [a, C, OC]
    private var shape = (C: 0, OC: 0), tile: WinogradTile?

    public init() {}
    deinit { source.deallocate(); U.deallocate() }

    func kernel(_ weight: UnsafePointer<Float>, scale: UnsafePointer<Float>?, C: Int, OC: Int, tile: WinogradTile) -> UnsafePointer<Float> {
        let n = 9 * C * OC, bytes = MemoryLayout<Float>.size
        var ones = [Float](repeating: 1, count: OC)
        return ones.withUnsafeMutableBufferPointer { one in
            let sc = scale ?? UnsafePointer(one.baseAddress!)
            if tile == self.tile && shape == (C, OC) && memcmp(source, weight, n * bytes) == 0
                && memcmp(source + n, sc, OC * bytes) == 0 { return UnsafePointer(U) }
            if shape != (C, OC) {
                source.deallocate(); U.deallocate()
                source = .allocate(capacity: n + OC); U = .allocate(capacity: 4 * n)  // 36 / 9
                shape = (C, OC)
            }
            source.update(from: weight, count: n)
            (source + n).update(from: sc, count: OC)
            winogradKernel(U, weight, G: tile.G, C: C, OC: OC, scale: scale)
            self.tile = tile
            return UnsafePointer(U)
        }
    }
}

/// Tile rows per chunk: transformed input and products stay cache-sized
/// (2 im2col tiles, 1 MiB by default, per transformed buffer: larger chunks
/// than im2col's, because the GEMMs per chunk have K = C only and need many
/// rows to run well), and every worker gets a chunk. Measured with F(4x4),
/// lab bench, 2 threads, one sitting: 4 MiB 167-177 training img/s, 1 MiB
/// 174-187, 512 KiB 179-182.
private func winogradChunkRows(_ tile: WinogradTile, tileRows: Int, W: Int, C: Int, OC: Int, workspace ws: ConvWorkspace) -> Int {
    let perRow = tile.points * (W / tile.m) * max(C, OC)
    return max(1, min(2 * ws.tileFloats / perRow, (tileRows + ws.workers - 1) / ws.workers))
}

public func conv3x3WinogradForward(
    _ out: UnsafeMutablePointer<Float>,   // [N, H, W, OC]
    _ inp: UnsafePointer<Float>,          // [N, H, W, C]
    _ weight: UnsafePointer<Float>,       // [9*C, OC]
    _ bias: UnsafePointer<Float>?,        // [OC] or nil
    N: Int, H: Int, W: Int, C: Int, OC: Int,
    tile: WinogradTile,
    scale: UnsafePointer<Float>? = nil,     // [OC]: out = relu?(scale * conv + bias + residual)
    residual: UnsafePointer<Float>? = nil,  // [N, H, W, OC]
    relu: Bool = false,
    accumulate: Bool = false,
    kernelCache: WinogradKernelCache? = nil,
    workspace ws: ConvWorkspace
) {
    let m = tile.m, a = tile.points
    let epilogue = WinogradEpilogue(bias: bias, residual: residual, relu: relu, accumulate: accumulate)
    precondition(H % m == 0 && W % m == 0, "Winograd F(\(m)x\(m),3x3) needs H and W divisible by \(m)")
    let TW = W / m, tileRows = N * (H / m)
    let R = winogradChunkRows(tile, tileRows: tileRows, W: W, C: C, OC: OC, workspace: ws)
    let chunks = (tileRows + R - 1) / R
    let T = R * TW
    ws.reserveColumns(2 * a * T * max(C, OC) + C)
    ws.reserveWeights(36 * C * OC)
    let U = kernelCache?.kernel(weight, scale: scale, C: C, OC: OC, tile: tile) ?? {
        winogradKernel(ws.flipped2, weight, G: tile.G, C: C, OC: OC, scale: scale, workers: ws.workers)
        return UnsafePointer(ws.flipped2)
    }()
    ws.parallel { worker in
        let V = ws.cols[worker]                    // [T, a, C]
        let P = V + a * T * max(C, OC)             // [T, a, OC]
        let zero = P + a * T * max(C, OC)          // [C] of zeros: the padding
        zero.update(repeating: 0, count: C)
        let scratch = WinogradScratch()
        defer { scratch.deallocate() }
        for chunk in stride(from: worker, to: chunks, by: ws.workers) {
            let r0 = chunk * R, r1 = min(tileRows, r0 + R)
            let tiles = (r1 - r0) * TW
            switch tile {
            case .f2x2: winogradInputTransform(V, inp, r0: r0, r1: r1, H: H, W: W, C: C, zero: zero, taps: scratch.taps)
            case .f4x4: winograd4InputTransform(V, inp, r0: r0, r1: r1, H: H, W: W, C: C, zero: zero, scratch: scratch)
            }
            for k in 0..<a {
                smallGemm(m: tiles, n: OC, k: C, V + k * C, lda: a * C, U + k * C * OC, ldb: OC, P + k * OC, ldc: a * OC)
            }
            switch tile {
            case .f2x2: winogradOutputTransform(out, P, epilogue, r0: r0, r1: r1, H: H, W: W, OC: OC)
            case .f4x4: winograd4OutputTransform(out, P, epilogue, r0: r0, r1: r1, H: H, W: W, OC: OC, scratch: scratch)
            }
        }
    }
}

/// Per-worker scratch of the transforms: tap pointers and one tile of
/// intermediate rows (spilled on purpose: 36 vectors exceed the registers).
final class WinogradScratch {
    let taps = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: 36)
    let z = UnsafeMutablePointer<SIMD8<Float>>.allocate(capacity: 36)
    func deallocate() { taps.deallocate(); z.deallocate() }
}

/// Y = A^T P A for every 2x2 tile in tile rows r0..<r1, through the
/// epilogue into out; vectorized over output channels.
@inline(__always)
func winogradOutputTransform(
    _ out: UnsafeMutablePointer<Float>,   // [N, H, W, OC]
    _ P: UnsafePointer<Float>,            // [T, 16, OC]
    _ epilogue: WinogradEpilogue,
    r0: Int, r1: Int, H: Int, W: Int, OC: Int
) {
    let TW = W / 2
    for r in r0..<r1 {
        let n = r / (H / 2), ty = r % (H / 2)
        for tx in 0..<TW {
            let t = (r - r0) * TW + tx
            let p = P + t * 16 * OC, s = OC
            let y00 = out + ((n * H + 2 * ty) * W + 2 * tx) * OC
            let y01 = y00 + OC, y10 = y00 + W * OC, y11 = y10 + OC
            var o = 0
            while o < OC {
                @inline(__always) func ld(_ k: Int) -> SIMD8<Float> { UnsafeRawPointer(p + k * s + o).loadUnaligned(as: SIMD8<Float>.self) }
                // The epilogue here, not in a shared function: a debug build compiles
                // file by file, and a call into another file is not inlined.
                let bias = epilogue.bias.map { UnsafeRawPointer($0 + o).loadUnaligned(as: SIMD8<Float>.self) } ?? SIMD8<Float>()
                @inline(__always) func put(_ y: UnsafeMutablePointer<Float>, _ v: SIMD8<Float>) {
                    let dst = UnsafeMutableRawPointer(y + o)
                    var r = v + bias
                    if epilogue.accumulate { r += dst.loadUnaligned(as: SIMD8<Float>.self) }
                    if let res = epilogue.residual { r += UnsafeRawPointer(res + (y + o - out)).loadUnaligned(as: SIMD8<Float>.self) }
                    dst.storeBytes(of: epilogue.relu ? r.replacing(with: 0, where: r .< 0) : r, as: SIMD8<Float>.self)
                }
                let m4 = ld(4), m5 = ld(5), m6 = ld(6), m7 = ld(7), m8 = ld(8), m9 = ld(9), m10 = ld(10), m11 = ld(11)
                // A^T m over rows, then over columns.
                let a0 = ld(0) + m4 + m8, a1 = ld(1) + m5 + m9, a2 = ld(2) + m6 + m10, a3 = ld(3) + m7 + m11
                let b0 = m4 - m8 - ld(12), b1 = m5 - m9 - ld(13), b2 = m6 - m10 - ld(14), b3 = m7 - m11 - ld(15)
                put(y00, a0 + a1 + a2); put(y01, a1 - a2 - a3)
                put(y10, b0 + b1 + b2); put(y11, b1 - b2 - b3)
                o += 8
            }
        }
    }
}

/// V[t, k, c] = (B^T d B)[k] for the 4x4 input tile d of every output tile
/// t in tile rows r0..<r1 (r = n * H/2 + ty), vectorized over channels.
/// Out-of-image taps read `zero` (C zeros), so the inner loop has no branches.
@inline(__always)
func winogradInputTransform(
    _ V: UnsafeMutablePointer<Float>,     // [T, 16, C] written
    _ inp: UnsafePointer<Float>,          // [N, H, W, C]
    r0: Int, r1: Int, H: Int, W: Int, C: Int,
    zero: UnsafeMutablePointer<Float>,    // [C] zeros
    taps: UnsafeMutablePointer<UnsafePointer<Float>>  // [16] scratch
) {
    let TW = W / 2
    for r in r0..<r1 {
        let n = r / (H / 2), ty = r % (H / 2)
        for tx in 0..<TW {
            let t = (r - r0) * TW + tx
            winogradTaps(taps, inp, zero: zero, size: 4, n: n, y0: 2 * ty - 1, x0: 2 * tx - 1, H: H, W: W, C: C)
            let q0 = taps[0], q1 = taps[1], q2 = taps[2], q3 = taps[3], q4 = taps[4], q5 = taps[5], q6 = taps[6], q7 = taps[7]
            let q8 = taps[8], q9 = taps[9], q10 = taps[10], q11 = taps[11], q12 = taps[12], q13 = taps[13], q14 = taps[14], q15 = taps[15]
            // Explicit SIMD: with 16 input and 16 output streams the
            // auto-vectorizer gives up on the aliasing checks.
            let o = V + t * 16 * C, st = C
            var c = 0
            while c < C {
                @inline(__always) func ld(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
                    UnsafeRawPointer(p + c).loadUnaligned(as: SIMD8<Float>.self)
                }
                @inline(__always) func st8(_ k: Int, _ v: SIMD8<Float>) {
                    UnsafeMutableRawPointer(o + k * st + c).storeBytes(of: v, as: SIMD8<Float>.self)
                }
                let d4 = ld(q4), d5 = ld(q5), d6 = ld(q6), d7 = ld(q7), d8 = ld(q8), d9 = ld(q9), d10 = ld(q10), d11 = ld(q11)
                let t00 = ld(q0) - d8, t01 = ld(q1) - d9, t02 = ld(q2) - d10, t03 = ld(q3) - d11
                let t10 = d4 + d8, t11 = d5 + d9, t12 = d6 + d10, t13 = d7 + d11
                let t20 = d8 - d4, t21 = d9 - d5, t22 = d10 - d6, t23 = d11 - d7
                let t30 = d4 - ld(q12), t31 = d5 - ld(q13), t32 = d6 - ld(q14), t33 = d7 - ld(q15)
                st8(0, t00 - t02); st8(1, t01 + t02); st8(2, t02 - t01); st8(3, t01 - t03)
                st8(4, t10 - t12); st8(5, t11 + t12); st8(6, t12 - t11); st8(7, t11 - t13)
                st8(8, t20 - t22); st8(9, t21 + t22); st8(10, t22 - t21); st8(11, t21 - t23)
                st8(12, t30 - t32); st8(13, t31 + t32); st8(14, t32 - t31); st8(15, t31 - t33)
                c += 8
            }
        }
    }
}

/// taps[size i + j] = the pixel (y0 + i, x0 + j) of image n, or `zero` outside the image.
@inline(__always)
func winogradTaps(
    _ taps: UnsafeMutablePointer<UnsafePointer<Float>>,  // [size * size] written
    _ inp: UnsafePointer<Float>,                         // [N, H, W, C]
    zero: UnsafeMutablePointer<Float>,                   // [C] zeros
    size: Int, n: Int, y0: Int, x0: Int, H: Int, W: Int, C: Int
) {
    for i in 0..<size {
        let y = y0 + i
        for j in 0..<size {
            let x = x0 + j
            taps[i * size + j] = (y < 0 || y >= H || x < 0 || x >= W) ? UnsafePointer(zero) : inp + ((n * H + y) * W + x) * C
        }
    }
}

/// The weight gradient in the Winograd domain. Forward, P[k] = V[k] U[k] and
/// y = A^T P A per tile, so dP = A dy A^T (the output-gradient tile lifted
/// to the transformed domain: M below), dU[k] = sum over tiles V[k]^T M[k],
/// and dw = G^T dU G: (m+2)^2 * C * OC products per m x m output tile where
/// im2col + GEMM takes 9 m^2.
public func conv3x3WinogradWeightGradient(
    _ dweight: UnsafeMutablePointer<Float>,  // [9*C, OC], accumulated
    _ dout: UnsafePointer<Float>,            // [N, H, W, OC]
    _ inp: UnsafePointer<Float>,             // [N, H, W, C]
    N: Int, H: Int, W: Int, C: Int, OC: Int,
    tile: WinogradTile,
    workspace ws: ConvWorkspace
) {
    let m = tile.m, a = tile.points
    precondition(H % m == 0 && W % m == 0, "Winograd F(\(m)x\(m),3x3) needs H and W divisible by \(m)")
    let TW = W / m, tileRows = N * (H / m), CO = C * OC
    let R = winogradChunkRows(tile, tileRows: tileRows, W: W, C: C, OC: OC, workspace: ws)
    let chunks = (tileRows + R - 1) / R
    let T = R * TW
    ws.reserveColumns(2 * a * T * max(C, OC) + C)
    ws.reserveWeights(36 * CO)
    ws.parallel { worker in
        let V = ws.cols[worker]                    // [T, a, C]
        let M = V + a * T * max(C, OC)             // [T, a, OC]
        let zero = M + a * T * max(C, OC)          // [C] of zeros: the padding
        zero.update(repeating: 0, count: C)
        let dU = ws.dws[worker]                    // [a, C, OC]: this worker's partial sum
        dU.update(repeating: 0, count: a * CO)
        let scratch = WinogradScratch()
        defer { scratch.deallocate() }
        for chunk in stride(from: worker, to: chunks, by: ws.workers) {
            let r0 = chunk * R, r1 = min(tileRows, r0 + R)
            switch tile {
            case .f2x2:
                winogradInputTransform(V, inp, r0: r0, r1: r1, H: H, W: W, C: C, zero: zero, taps: scratch.taps)
                winogradOutputGradientTransform(M, dout, r0: r0, r1: r1, H: H, W: W, OC: OC)
            case .f4x4:
                winograd4InputTransform(V, inp, r0: r0, r1: r1, H: H, W: W, C: C, zero: zero, scratch: scratch)
                winograd4OutputGradientTransform(M, dout, r0: r0, r1: r1, H: H, W: W, OC: OC, scratch: scratch)
            }
            for k in 0..<a {
                gemm(transA: true, transB: false, m: C, n: OC, k: (r1 - r0) * TW,
                     V + k * C, lda: a * C, M + k * OC, ldb: a * OC, beta: 1, dU + k * CO, ldc: OC)
            }
        }
    }
    // Partials in worker order (deterministic), then back to 3x3.
    let dU = ws.dws[0]
    forRowChunks(a * CO, workers: rowWorkers(a * CO, rowCost: ws.workers, workers: ws.workers)) { _, e0, e1 in
        for w in 1..<ws.workers { addInto(dU + e0, ws.dws[w] + e0, e1 - e0) }
    }
    winogradKernelGradient(dweight, dU, G: tile.G, C: C, OC: OC, workers: ws.workers)
}

/// M[t, k, oc] = (A dy A^T)[k] for the 2x2 output-gradient tile dy of every
/// tile t in tile rows r0..<r1; A = [1 0; 1 1; 1 -1; 0 -1] (A^T of the forward).
@inline(__always)
func winogradOutputGradientTransform(
    _ M: UnsafeMutablePointer<Float>,     // [T, 16, OC] written
    _ dout: UnsafePointer<Float>,         // [N, H, W, OC]
    r0: Int, r1: Int, H: Int, W: Int, OC: Int
) {
    let TW = W / 2, s = OC
    for r in r0..<r1 {
        let n = r / (H / 2), ty = r % (H / 2)
        for tx in 0..<TW {
            let t = (r - r0) * TW + tx
            let y00 = dout + ((n * H + 2 * ty) * W + 2 * tx) * OC
            let y01 = y00 + OC, y10 = y00 + W * OC, y11 = y10 + OC
            let m = M + t * 16 * OC
            var o = 0
            while o < OC {
                @inline(__always) func ld(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
                    UnsafeRawPointer(p + o).loadUnaligned(as: SIMD8<Float>.self)
                }
                @inline(__always) func put(_ k: Int, _ v: SIMD8<Float>) {
                    UnsafeMutableRawPointer(m + k * s + o).storeBytes(of: v, as: SIMD8<Float>.self)
                }
                let a = ld(y00), b = ld(y01), c = ld(y10), d = ld(y11)
                // Rows: Z = A dy (4x2); then columns: M = Z A^T (4x4).
                let z00 = a, z01 = b, z10 = a + c, z11 = b + d, z20 = a - c, z21 = b - d, z30 = -c, z31 = -d
                put(0, z00); put(1, z00 + z01); put(2, z00 - z01); put(3, -z01)
                put(4, z10); put(5, z10 + z11); put(6, z10 - z11); put(7, -z11)
                put(8, z20); put(9, z20 + z21); put(10, z20 - z21); put(11, -z21)
                put(12, z30); put(13, z30 + z31); put(14, z30 - z31); put(15, -z31)
                o += 8
            }
        }
    }
}
