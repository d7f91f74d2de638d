import XCTest
@testable import Engine
import LabRandom

/// Every kernel's backward against finite differences of its own forward,
/// and the convolution's forward against a direct (non-GEMM) reference.
final class LayerGradientTests: XCTestCase {
    override func setUp() { BLAS.setThreads(1) }

    /// Direct 3x3 convolution, NHWC, zero padding: the independent reference.
    func directConv(_ x: [Float], _ w: [Float], _ b: [Float]?, N: Int, H: Int, W: Int, C: Int, OC: Int) -> [Float] {
        var out = [Float](repeating: 0, count: N * H * W * OC)
        for n in 0..<N { for y in 0..<H { for xx in 0..<W { for o in 0..<OC {
            var s = Double(b?[o] ?? 0)
            for ky in 0..<3 { for kx in 0..<3 {
                let iy = y + ky - 1, ix = xx + kx - 1
                guard iy >= 0, iy < H, ix >= 0, ix < W else { continue }
                for c in 0..<C {
                    s += Double(x[((n * H + iy) * W + ix) * C + c]) * Double(w[((ky * 3 + kx) * C + c) * OC + o])
                }
            } }
            out[((n * H + y) * W + xx) * OC + o] = Float(s)
        } } } }
        return out
    }

    func checkConv(N: Int, H: Int, W: Int, C: Int, OC: Int, bias: Bool, tileFloats: Int) {
        let ws = ConvWorkspace(tileFloats: tileFloats)
        var x = randomArray(N * H * W * C, seed: 1)
        var w = randomArray(9 * C * OC, seed: 2, scale: 0.5)
        var b = bias ? randomArray(OC, seed: 3) : []
        let r = randomArray(N * H * W * OC, seed: 4)
        func forward(_ x: [Float], _ w: [Float], _ b: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: N * H * W * OC)
            b.withUnsafeBufferPointer { bp in
                convForward(&out, x, w, bias ? bp.baseAddress : nil, N: N, H: H, W: W, C: C, OC: OC, workspace: ws)
            }
            return out
        }
        let out = forward(x, w, b)
        let ref = directConv(x, w, bias ? b : nil, N: N, H: H, W: W, C: C, OC: OC)
        XCTAssertLessThan(maxAbsDiff(out, ref), 1e-4, "conv forward vs direct \(N)x\(H)x\(W)x\(C)->\(OC)")

        var dx = [Float](repeating: 0, count: x.count), dw = [Float](repeating: 0, count: w.count)
        var db = [Float](repeating: 0, count: OC)
        db.withUnsafeMutableBufferPointer { dbp in
            convBackward(&dx, &dw, bias ? dbp.baseAddress : nil, r, x, w, N: N, H: H, W: W, C: C, OC: OC, workspace: ws)
        }
        let loss = { (x: [Float], w: [Float], b: [Float]) in dot(forward(x, w, b), r) }
        assertGradient("conv dx", x: &x, analytic: dx) { loss($0, w, b) }
        assertGradient("conv dw", x: &w, analytic: dw) { loss(x, $0, b) }
        if bias { assertGradient("conv db", x: &b, analytic: db) { loss(x, w, $0) } }
    }

    func testConv3x3() {
        checkConv(N: 2, H: 5, W: 4, C: 3, OC: 4, bias: true, tileFloats: 1 << 20)
        checkConv(N: 2, H: 5, W: 4, C: 3, OC: 4, bias: false, tileFloats: 1)  // one row per tile
        checkConv(N: 1, H: 3, W: 7, C: 2, OC: 3, bias: true, tileFloats: 3 * 7 * 18)  // tiles cross rows
        checkConv(N: 2, H: 2, W: 1, C: 2, OC: 2, bias: true, tileFloats: 1 << 20)   // W = 1 border case
        checkConv(N: 1, H: 1, W: 2, C: 3, OC: 2, bias: false, tileFloats: 1 << 20)  // W = 2, H = 1
    }

    /// Which convolutions take which path: the model's shapes at batch 64,
    /// and the borders of each rule.
    func testWinogradTileChoice() {
        XCTAssertEqual(ConvWorkspace.winogradTile(N: 64, H: 64, W: 64, C: 32, OC: 32), .f4x4)
        XCTAssertEqual(ConvWorkspace.winogradTile(N: 64, H: 16, W: 16, C: 128, OC: 128), .f4x4)
        XCTAssertEqual(ConvWorkspace.winogradTile(N: 64, H: 6, W: 10, C: 16, OC: 16), .f2x2, "6 and 10: 2x2 tiles only")
        XCTAssertNil(ConvWorkspace.winogradTile(N: 64, H: 64, W: 64, C: 3, OC: 32), "block1.conv1: 3 channels, im2col")
        XCTAssertNil(ConvWorkspace.winogradTile(N: 1, H: 8, W: 8, C: 128, OC: 128), "too few outputs for the kernel transform")
        XCTAssertEqual(ConvWorkspace.winogradWeightGradientTile(N: 64, H: 64, W: 64, C: 32, OC: 32), .f4x4)
        XCTAssertNil(ConvWorkspace.winogradWeightGradientTile(N: 64, H: 6, W: 10, C: 32, OC: 32), "F(2x2) below 64 channels: im2col's")
        XCTAssertEqual(ConvWorkspace.winogradWeightGradientTile(N: 64, H: 16, W: 16, C: 128, OC: 128), .f4x4)
    }

    /// Eval's fused unit, out = relu(scale * conv + bias + residual), on every
    /// path (F(4x4), F(2x2), im2col; cached and not) against the direct
    /// convolution followed by the same arithmetic; and the cache is remade
    /// when only the scale (batch norm's running statistics) changes.
    func testConvEpilogueMatchesDirect() {
        for (H, W, C, tile) in [(8, 8, 16, WinogradTile?.some(.f4x4)), (6, 10, 16, .f2x2), (8, 8, 3, nil)] {
            let (N, OC) = (2, 16)
            let ws = ConvWorkspace(workers: 2), cache = WinogradKernelCache()
            XCTAssertEqual(ConvWorkspace.winogradTile(N: N, H: H, W: W, C: C, OC: OC, cached: true), tile)
            let x = randomArray(N * H * W * C, seed: 150), w = randomArray(9 * C * OC, seed: 151, scale: 0.3)
            let b = randomArray(OC, seed: 152), res = randomArray(N * H * W * OC, seed: 153)
            var scale = randomArray(OC, seed: 154).map { 1 + 0.5 * $0 }
            let direct = directConv(x, w, nil, N: N, H: H, W: W, C: C, OC: OC)
            func expected() -> [Float] { direct.indices.map { i in max(0, direct[i] * scale[i % OC] + b[i % OC] + res[i]) } }
            for cached in [false, true] {
                var out = [Float](repeating: .nan, count: direct.count)
                convForward(&out, x, w, b, N: N, H: H, W: W, C: C, OC: OC, scale: scale, residual: res, relu: true,
                               kernelCache: cached ? cache : nil, workspace: ws)
                XCTAssertLessThan(maxAbsDiff(out, expected()), 1e-4, "\(H)x\(W)x\(C) cached: \(cached)")
                XCTAssertTrue(out.contains(0) && out.contains { $0 > 0 }, "the ReLU had something to clip")
            }
            scale[OC - 1] += 1
            var out = [Float](repeating: .nan, count: direct.count)
            convForward(&out, x, w, b, N: N, H: H, W: W, C: C, OC: OC, scale: scale, residual: res, relu: true,
                           kernelCache: cache, workspace: ws)
            XCTAssertLessThan(maxAbsDiff(out, expected()), 1e-4, "\(H)x\(W)x\(C): a changed scale remakes the kernel")
        }
    }

    /// The cached Winograd kernel is remade as soon as one weight changes:
    /// a stale kernel would still give plausible outputs, so compare to direct.
    func testWinogradKernelCacheFollowsTheWeights() {
        XCTAssertEqual(ConvWorkspace.winogradTile(N: 1, H: 8, W: 8, C: 128, OC: 128, cached: true), .f4x4, "one image, cached kernel")
        let (N, H, W, C, OC) = (1, 8, 8, 16, 24)
        let ws = ConvWorkspace(workers: 2), cache = WinogradKernelCache()
        let x = randomArray(N * H * W * C, seed: 91)
        var w = randomArray(9 * C * OC, seed: 92, scale: 0.3)
        func conv() -> [Float] {
            var out = [Float](repeating: 0, count: N * H * W * OC)
            convForward(&out, x, w, nil, N: N, H: H, W: W, C: C, OC: OC, kernelCache: cache, workspace: ws)
            return out
        }
        let first = conv()
        XCTAssertLessThan(maxAbsDiff(first, directConv(x, w, nil, N: N, H: H, W: W, C: C, OC: OC)), 1e-4)
        XCTAssertEqual(conv(), first, "same weights, same kernel")
        w[9 * C * OC - 1] += 1   // the last tap of the last channel pair
        let changed = conv()
        XCTAssertLessThan(maxAbsDiff(changed, directConv(x, w, nil, N: N, H: H, W: W, C: C, OC: OC)), 1e-4, "a changed weight remakes the kernel")
        XCTAssertGreaterThan(maxAbsDiff(changed, first), 0.1)
        // Same weights, the other tile: its own kernel, not the cached one.
        var f2 = [Float](repeating: 0, count: N * H * W * OC)
        conv3x3WinogradForward(&f2, x, w, nil, N: N, H: H, W: W, C: C, OC: OC, tile: .f2x2, kernelCache: cache, workspace: ws)
        XCTAssertLessThan(maxAbsDiff(f2, changed), 1e-4, "F(2x2) after F(4x4) on one cache")
    }

    /// conv3x3Backward as the model calls it (the rotated kernel, the tile
    /// each shape dispatches to) against im2col's, for both tiles. At 128
    /// channels the kernel transform, its adjoint and the partial sums are
    /// split across both workers (rowWorkers).
    func testConvBackwardThroughWinogradMatchesIm2col() {
        XCTAssertEqual(rowWorkers(128 * 128, rowCost: 36, workers: 2), 2)
        for (N, H, W, C, OC, tile) in [(8, 8, 8, 16, 16, WinogradTile.f4x4), (12, 6, 10, 16, 16, .f2x2), (64, 6, 6, 64, 64, .f2x2),
                                       (16, 16, 16, 128, 128, .f4x4)] {
            XCTAssertEqual(ConvWorkspace.winogradTile(N: N, H: H, W: W, C: OC, OC: C), tile)
            let x = randomArray(N * H * W * C, seed: 71), w = randomArray(9 * C * OC, seed: 72, scale: 0.3)
            let r = randomArray(N * H * W * OC, seed: 73)
            func backward(_ ws: ConvWorkspace) -> (dx: [Float], dw: [Float]) {
                var dx = randomArray(x.count, seed: 74), dw = randomArray(w.count, seed: 75)
                convBackward(&dx, &dw, nil, r, x, w, N: N, H: H, W: W, C: C, OC: OC, workspace: ws)
                return (dx, dw)
            }
            let im2col = ConvWorkspace(workers: 1); im2col.winograd = false
            let ref = backward(im2col), got = backward(ConvWorkspace(workers: 2))
            // 1e-4 for outputs up to 5, as elsewhere; at 128 channels they reach about 12 and the error grows with them.
            XCTAssertLessThan(maxAbsDiff(got.dx, ref.dx), 2e-5 * max(5, ref.dx.map(abs).max()!), "dx \(tile) \(N)x\(H)x\(W)x\(C)->\(OC)")
            XCTAssertLessThan(maxAbsDiff(got.dw, ref.dw), 2e-5 * max(1, ref.dw.map(abs).max()!), "dw \(tile) \(N)x\(H)x\(W)x\(C)->\(OC)")
        }
    }

    /// Both Winograd tiles against the direct convolution, over chunk splits
    /// and workers: forward with bias, accumulate, the input gradient (the
    /// forward of the rotated kernel) and the weight gradient (its own
    /// transform, accumulated) against im2col's.
    func testWinogradMatchesDirectConvolution() {
        // F(4x4)'s transforms carry constants up to 8 and 1/24: its float32
        // error is about 20x F(2x2)'s (measured here, outputs up to |6|: max
        // 1.6-2.5e-5 against 1e-6). 1e-4 holds both; a wrong tap or
        // coefficient is off by about the size of an output.
        // tileFloats sets the chunk size: 5200 gives chunks of 3 tile rows,
        // several per worker and a short last one; N = 1 at 4x4 leaves a worker idle.
        let shapes: [(Int, Int, Int, Int, Int, Int, Int, WinogradTile)] = [
            (8, 8, 8, 16, 16, 1 << 17, 1, .f2x2), (4, 16, 16, 24, 16, 5200, 2, .f2x2), (6, 6, 10, 16, 16, 700, 2, .f2x2),
            (8, 8, 8, 16, 16, 1 << 17, 1, .f4x4), (4, 16, 16, 24, 16, 5200, 2, .f4x4), (6, 8, 12, 16, 24, 700, 3, .f4x4),
            (1, 4, 4, 32, 16, 1 << 17, 2, .f4x4),
        ]
        for (N, H, W, C, OC, tileFloats, workers, tile) in shapes {
            let tag = "F(\(tile.m)x\(tile.m)) \(N)x\(H)x\(W)x\(C)->\(OC), \(workers) workers"
            let ws = ConvWorkspace(tileFloats: tileFloats, workers: workers)
            let x = randomArray(N * H * W * C, seed: 81), w = randomArray(9 * C * OC, seed: 82, scale: 0.3)
            let b = randomArray(OC, seed: 83), prior = randomArray(N * H * W * OC, seed: 84)
            let ref = directConv(x, w, b, N: N, H: H, W: W, C: C, OC: OC)
            var out = prior
            conv3x3WinogradForward(&out, x, w, b, N: N, H: H, W: W, C: C, OC: OC, tile: tile, accumulate: true, workspace: ws)
            XCTAssertLessThan(maxAbsDiff(out, zip(ref, prior).map { $0 + $1 }), 1e-4, "accumulate \(tag)")
            conv3x3WinogradForward(&out, x, w, b, N: N, H: H, W: W, C: C, OC: OC, tile: tile, workspace: ws)
            XCTAssertLessThan(maxAbsDiff(out, ref), 1e-4, tag)

            let r = randomArray(N * H * W * OC, seed: 85)
            let wf = (0..<(9 * OC * C)).map { i -> Float in   // the rotated kernel, [(2-ky, 2-kx, oc), c]
                let k = i / (OC * C), o = (i / C) % OC, c = i % C
                return w[((8 - k) * C + c) * OC + o]
            }
            var dx = [Float](repeating: 0, count: x.count)
            conv3x3WinogradForward(&dx, r, wf, nil, N: N, H: H, W: W, C: OC, OC: C, tile: tile, accumulate: true, workspace: ws)
            let dwPrior = randomArray(w.count, seed: 86)
            var dw = dwPrior
            conv3x3WinogradWeightGradient(&dw, r, x, N: N, H: H, W: W, C: C, OC: OC, tile: tile, workspace: ws)
            var dxRef = [Float](repeating: 0, count: x.count), dwRef = dwPrior
            let im2col = ConvWorkspace(workers: 1); im2col.winograd = false
            convBackward(&dxRef, &dwRef, nil, r, x, w, N: N, H: H, W: W, C: C, OC: OC, workspace: im2col)
            XCTAssertLessThan(maxAbsDiff(dx, dxRef), 1e-4, "dx \(tag)")
            // dw sums N*H*W products per entry: the tolerance scales with its size.
            let scale = dwRef.map(abs).max()!
            XCTAssertLessThan(maxAbsDiff(dw, dwRef), 2e-5 * max(1, scale), "dw \(tag), max |dw| \(scale)")
        }
    }

    func checkBatchNorm(training: Bool, residual: Bool, C: Int) {
        let M = 13
        // Seeds by C: data with an output within eps of the ReLU kink fails finite differences with no bug.
        var x = randomArray(M * C, seed: UInt64(40 + C), scale: 2).enumerated().map { $0.element + Float($0.offset % 3) }  // channel means 0, 1, 2 (larger ones cost the finite differences their precision)
        var g = randomArray(C, seed: 11).map { 1 + 0.3 * $0 }
        var be = randomArray(C, seed: 12, scale: 0.5)
        var res = randomArray(M * C, seed: UInt64(43 + C))
        let r = randomArray(M * C, seed: 14)
        let rm0 = randomArray(C, seed: 15, scale: 0.3), rv0 = randomArray(C, seed: 16).map { 1 + 0.5 * $0 }
        func forward(_ x: [Float], _ g: [Float], _ be: [Float], _ res: [Float]) -> (out: [Float], mean: [Float], rstd: [Float]) {
            var mean = [Float](repeating: 0, count: C), rstd = mean, rm = rm0, rv = rv0
            batchNormStatistics(mean: &mean, rstd: &rstd, runningMean: &rm, runningVar: &rv, x, M: M, C: C, training: training)
            var out = [Float](repeating: 0, count: M * C)
            res.withUnsafeBufferPointer { rp in
                batchNormReLUForward(&out, x, residual: residual ? rp.baseAddress : nil, gamma: g, beta: be,
                                     mean: mean, rstd: rstd, M: M, C: C)
            }
            return (out, mean, rstd)
        }
        let f = forward(x, g, be, res)
        var dx = [Float](repeating: 0, count: M * C), dg = [Float](repeating: 0, count: C), db = dg
        var dres = [Float](repeating: 0, count: M * C)
        dres.withUnsafeMutableBufferPointer { dp in
            batchNormReLUBackward(&dx, dresidual: residual ? dp.baseAddress : nil, dgamma: &dg, dbeta: &db, r,
                                  out: f.out, inp: x, gamma: g, mean: f.mean, rstd: f.rstd, M: M, C: C, training: training)
        }
        let tag = "bn(training: \(training), residual: \(residual), C: \(C))"
        let loss = { (x: [Float], g: [Float], be: [Float], res: [Float]) in dot(forward(x, g, be, res).out, r) }
        assertGradient("\(tag) dx", x: &x, analytic: dx, eps: 1e-3) { loss($0, g, be, res) }
        assertGradient("\(tag) dgamma", x: &g, analytic: dg, eps: 1e-3) { loss(x, $0, be, res) }
        assertGradient("\(tag) dbeta", x: &be, analytic: db, eps: 1e-3) { loss(x, g, $0, res) }
        if residual { assertGradient("\(tag) dres", x: &res, analytic: dres, eps: 1e-3) { loss(x, g, be, $0) } }
    }

    func testBatchNormReLU() {
        // BatchNorm.swift's vector loops read 32 floats at a time: 3 channels take the scalar loops; 8
        // and 16 pack 4 and 2 rows per read (13 rows leave one over); 35 is 32 in registers and a scalar tail.
        for C in [3, 8, 16, 35] { for training in [true, false] { for residual in [false, true] {
            checkBatchNorm(training: training, residual: residual, C: C)
        } } }
    }

    /// More workers than rows (M = 256 rows over 28 workers leaves the last
    /// chunks empty): every row in exactly one chunk, chunks in order.
    func testRowChunksCoverEveryRowOnce() {
        for (M, workers) in [(256, 28), (256, 300), (7, 3), (1, 2), (262_144, 2)] {
            let w = max(1, min(workers, M))
            var ranges = [(Int, Int)](repeating: (-1, -1), count: w)
            ranges.withUnsafeMutableBufferPointer { r in
                let slots = r.baseAddress!
                forRowChunks(M, workers: workers) { k, m0, m1 in slots[k] = (m0, m1) }
            }
            XCTAssertEqual(ranges.first?.0, 0, "M \(M), \(workers) workers")
            XCTAssertEqual(ranges.last?.1, M, "M \(M), \(workers) workers")
            for k in 1..<w { XCTAssertEqual(ranges[k].0, ranges[k - 1].1, "M \(M), \(workers) workers: chunk \(k)") }
            XCTAssertTrue(ranges.allSatisfy { $0.0 <= $0.1 }, "M \(M), \(workers) workers")
        }
    }

    func testBatchNormRunningStatistics() {
        // Running mean/var move by momentum 0.1 toward the batch mean and the unbiased variance.
        let M = 4, C = 1
        let x: [Float] = [1, 2, 3, 6]
        var mean: [Float] = [0], rstd: [Float] = [0], rm: [Float] = [0], rv: [Float] = [1]
        batchNormStatistics(mean: &mean, rstd: &rstd, runningMean: &rm, runningVar: &rv, x, M: M, C: C, training: true)
        XCTAssertEqual(mean[0], 3, accuracy: 1e-6)
        XCTAssertEqual(rstd[0], 1 / (3.5 + 1e-5).squareRoot(), accuracy: 1e-6)   // biased var 14/4
        XCTAssertEqual(rm[0], 0.3, accuracy: 1e-6)
        XCTAssertEqual(rv[0], 0.9 + 0.1 * 14 / 3, accuracy: 1e-6)                   // unbiased 14/3
    }

    func testMaxPool() {
        let N = 2, H = 4, W = 6, C = 3
        // Distinct values, spaced wider than eps, so no max changes under the perturbation.
        var rng = RNG(seed: 30)
        var x = (0..<(N * H * W * C)).map { Float($0) * 0.1 }
        x.shuffle(using: &rng)
        let r = randomArray(N * H * W * C / 4, seed: 31)
        func forward(_ x: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: N * H * W * C / 4)
            maxPool2x2Forward(&out, x, N: N, H: H, W: W, C: C)
            return out
        }
        let out = forward(x)
        XCTAssertEqual(out[0], [x[0], x[C], x[W * C], x[W * C + C]].max()!)
        var dx = [Float](repeating: 0, count: x.count)
        maxPool2x2Backward(&dx, r, inp: x, out: out, N: N, H: H, W: W, C: C)
        assertGradient("maxpool dx", x: &x, analytic: dx, eps: 1e-2) { dot(forward($0), r) }
    }

    func testGlobalAvgPool() {
        let N = 2, HW = 6, C = 3
        var x = randomArray(N * HW * C, seed: 40)
        let r = randomArray(N * C, seed: 41)
        func forward(_ x: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: N * C)
            globalAvgPoolForward(&out, x, N: N, HW: HW, C: C)
            return out
        }
        var dx = [Float](repeating: 0, count: x.count)
        globalAvgPoolBackward(&dx, r, N: N, HW: HW, C: C)
        assertGradient("gap dx", x: &x, analytic: dx) { dot(forward($0), r) }
    }

    func testDenseAndReLU() {
        let N = 3, IN = 5, OUT = 4
        var x = randomArray(N * IN, seed: 50), w = randomArray(OUT * IN, seed: 51), b = randomArray(OUT, seed: 52)
        let r = randomArray(N * OUT, seed: 53)
        func forward(_ x: [Float], _ w: [Float], _ b: [Float]) -> [Float] {
            var z = [Float](repeating: 0, count: N * OUT), a = z
            denseForward(&z, x, w, b, N: N, IN: IN, OUT: OUT)
            activationForward(.relu, &a, z, count: N * OUT)
            return a
        }
        let a = forward(x, w, b)
        var dz = [Float](repeating: 0, count: N * OUT)
        activationBackward(.relu, &dz, r, inp: a, out: a, count: N * OUT)
        var dx = [Float](repeating: 0, count: x.count), dw = [Float](repeating: 0, count: w.count), db = [Float](repeating: 0, count: OUT)
        denseBackward(&dx, &dw, &db, dz, x, w, N: N, IN: IN, OUT: OUT)
        assertGradient("dense dx", x: &x, analytic: dx, eps: 1e-3) { dot(forward($0, w, b), r) }
        assertGradient("dense dw", x: &w, analytic: dw, eps: 1e-3) { dot(forward(x, $0, b), r) }
        assertGradient("dense db", x: &b, analytic: db, eps: 1e-3) { dot(forward(x, w, $0), r) }
    }

    func testDropout() {
        let n = 1000
        var x = randomArray(n, seed: 60)
        let r = randomArray(n, seed: 61)
        var out = [Float](repeating: 0, count: n), mask = out
        var rng = RNG(seed: 62)
        dropoutForward(&out, mask: &mask, x, count: n, p: 0.5, training: true, rng: &rng)
        let kept = mask.filter { $0 != 0 }.count
        XCTAssertTrue((400...600).contains(kept), "kept \(kept) of 1000 at p=0.5")
        XCTAssertTrue(mask.allSatisfy { $0 == 0 || $0 == 2 })
        var dx = [Float](repeating: 0, count: n)
        dropoutBackward(&dx, r, mask: mask, count: n)
        assertGradient("dropout dx", x: &x, analytic: dx, samples: 50) { x in
            var o = [Float](repeating: 0, count: n)
            for i in 0..<n { o[i] = x[i] * mask[i] }
            return dot(o, r)
        }
        var evalOut = [Float](repeating: 0, count: n)
        dropoutForward(&evalOut, mask: &mask, x, count: n, p: 0.5, training: false, rng: &rng)
        XCTAssertEqual(evalOut, x)
    }

    func testSoftmaxCrossEntropy() {
        let N = 3, L = 6
        var z = randomArray(N * L, seed: 70, scale: 3)
        var t = randomArray(N * L, seed: 71).map { abs($0) }
        for n in 0..<N { let s = t[(n * L)..<((n + 1) * L)].reduce(0, +); for k in 0..<L { t[n * L + k] /= s } }
        for weights in [nil, randomArray(L, seed: 72).map { 1 + abs($0) }] as [[Float]?] {
            func loss(_ z: [Float]) -> Double {
                var p = [Float](repeating: 0, count: N * L)
                return Double(weights.withOptionalPointer { softmaxCrossEntropyForward(probs: &p, z, targets: t, classWeights: $0, N: N, L: L) })
            }
            var p = [Float](repeating: 0, count: N * L)
            _ = weights.withOptionalPointer { softmaxCrossEntropyForward(probs: &p, z, targets: t, classWeights: $0, N: N, L: L) }
            var dz = [Float](repeating: 0, count: N * L)
            weights.withOptionalPointer { softmaxCrossEntropyBackward(&dz, probs: p, targets: t, classWeights: $0, N: N, L: L) }
            assertGradient("softmax-ce dz (weights: \(weights != nil))", x: &z, analytic: dz, eps: 1e-3) { loss($0) }
        }
        // Hand-worked: uniform logits, one-hot target -> log(L).
        var p = [Float](repeating: 0, count: L)
        let l = softmaxCrossEntropyForward(probs: &p, [Float](repeating: 0, count: L), targets: [1, 0, 0, 0, 0, 0],
                                           classWeights: nil, N: 1, L: L)
        XCTAssertEqual(l, log(6), accuracy: 1e-6)
    }

    /// Per-face weights and a logit shift: the gradient w.r.t. the unshifted
    /// logits, and the loss as the batch's weighted mean.
    func testSoftmaxCrossEntropyFaceWeightsAndShift() {
        let N = 4, L = 6
        var z = randomArray(N * L, seed: 73, scale: 3)
        var t = randomArray(N * L, seed: 74).map { abs($0) }
        for n in 0..<N { let s = t[(n * L)..<((n + 1) * L)].reduce(0, +); for k in 0..<L { t[n * L + k] /= s } }
        let s: [Float] = [0.34, 5.8, 1, 0.7]
        let b = randomArray(L, seed: 75, scale: 2)
        func loss(_ z: [Float]) -> Double {
            var p = [Float](repeating: 0, count: N * L)
            return Double(softmaxCrossEntropyForward(probs: &p, z, targets: t, classWeights: nil, sampleWeights: s, logitShift: b, N: N, L: L))
        }
        var p = [Float](repeating: 0, count: N * L)
        let l = softmaxCrossEntropyForward(probs: &p, z, targets: t, classWeights: nil, sampleWeights: s, logitShift: b, N: N, L: L)
        var dz = [Float](repeating: 0, count: N * L)
        softmaxCrossEntropyBackward(&dz, probs: p, targets: t, classWeights: nil, sampleWeights: s, N: N, L: L)
        assertGradient("softmax-ce dz (face weights, shift)", x: &z, analytic: dz, eps: 1e-3) { loss($0) }
        // The weighted mean of the per-face losses, each computed alone.
        var expected = 0.0
        for n in 0..<N {
            var q = [Float](repeating: 0, count: L)
            let zn = (0..<L).map { z[n * L + $0] + b[$0] }
            expected += Double(s[n]) * Double(softmaxCrossEntropyForward(probs: &q, zn, targets: Array(t[(n * L)..<((n + 1) * L)]),
                                                                          classWeights: nil, N: 1, L: L))
        }
        XCTAssertEqual(Double(l), expected / Double(s.reduce(0, +)), accuracy: 1e-5)
    }

    /// The hand-worked face: votes 0.9 happiness / 0.1 fear, class
    /// weights 0.34 (happiness) and 5.8 (fear). Weighting the face by its
    /// majority class keeps happiness on top at the minimizer; the same
    /// weights inside the loss put fear on top (0.1 x 5.8 > 0.9 x 0.34).
    func testBalancedFaceWeightKeepsSoftTargetArgmax() {
        let L = 6, hap = 0, fear = 5
        var t = [Float](repeating: 0, count: L); t[hap] = 0.9; t[fear] = 0.1
        var w = [Float](repeating: 1, count: L); w[hap] = 0.34; w[fear] = 5.8
        let faceWeight: [Float] = [w[hap]]  // the face's majority class is happiness

        func minimize(classWeights: [Float]?, sampleWeights: [Float]?) -> [Float] {
            var z = [Float](repeating: 0, count: L), p = z, dz = z
            var numericChecked = false
            for _ in 0..<4000 {
                _ = classWeights.withOptionalPointer { cw in sampleWeights.withOptionalPointer { sw in
                    softmaxCrossEntropyForward(probs: &p, z, targets: t, classWeights: cw, sampleWeights: sw, N: 1, L: L) } }
                classWeights.withOptionalPointer { cw in sampleWeights.withOptionalPointer { sw in
                    softmaxCrossEntropyBackward(&dz, probs: p, targets: t, classWeights: cw, sampleWeights: sw, N: 1, L: L) } }
                if !numericChecked {
                    var z0 = z
                    assertGradient("hand-worked dz (class \(classWeights != nil), face \(sampleWeights != nil))", x: &z0, analytic: dz, eps: 1e-3) { z in
                        var q = [Float](repeating: 0, count: L)
                        return Double(classWeights.withOptionalPointer { cw in sampleWeights.withOptionalPointer { sw in
                            softmaxCrossEntropyForward(probs: &q, z, targets: t, classWeights: cw, sampleWeights: sw, N: 1, L: L) } })
                    }
                    numericChecked = true
                }
                for k in 0..<L { z[k] -= 2 * dz[k] }
            }
            return p
        }

        let perFace = minimize(classWeights: nil, sampleWeights: faceWeight)
        XCTAssertGreaterThan(perFace[hap], perFace[fear])
        XCTAssertEqual(perFace[hap], 0.9, accuracy: 0.02, "the face weight keeps the target's shape")
        XCTAssertEqual(perFace[fear], 0.1, accuracy: 0.02)

        let perClass = minimize(classWeights: w, sampleWeights: nil)
        XCTAssertGreaterThan(perClass[fear], perClass[hap], "per-class weights move the argmax to the rare vote")
        // Minimizer q_k ∝ w_k t_k: fear 0.58 / 0.886, happiness 0.306 / 0.886.
        XCTAssertEqual(perClass[fear], 0.58 / 0.886, accuracy: 0.02)
    }

    /// Batch norm and max-pool split across workers once the work pays for
    /// a dispatch (rowWorkers): the same numbers as one worker, up to the
    /// order of the statistics' partial sums.
    func testBatchNormAndPoolSplitAcrossWorkers() {
        XCTAssertEqual(rowWorkers(4096, rowCost: 32, workers: 2), 1, "one image's block1 batch norm stays on one worker")
        XCTAssertEqual(rowWorkers(16384, rowCost: 32, workers: 3), 2)
        let N = 3, H = 66, W = 64, C = 64  // 99 pooled rows: 3 workers, 33 rows each
        XCTAssertEqual(rowWorkers(N * H / 2, rowCost: 2 * W * C, workers: 3), 3)
        let x = randomArray(N * H * W * C, seed: 140), r = randomArray(N * H * W * C / 4, seed: 141)
        func pool(_ workers: Int) -> ([Float], [Float]) {
            var out = [Float](repeating: .nan, count: r.count), dx = [Float](repeating: .nan, count: x.count)
            maxPool2x2Forward(&out, x, N: N, H: H, W: W, C: C, workers: workers)
            maxPool2x2Backward(&dx, r, inp: x, out: out, N: N, H: H, W: W, C: C, workers: workers)
            return (out, dx)
        }
        let one = pool(1), three = pool(3)
        XCTAssertEqual(three.0, one.0); XCTAssertEqual(three.1, one.1)

        // Batch norm: 32-channel slabs (64), 2 rows per slab (16), slabs and a scalar tail (35).
        for C in [16, 35, 64] { checkBatchNormSplit(M: N * H * W * 64 / C, C: C) }
    }

    func checkBatchNormSplit(M: Int, C: Int) {
        XCTAssertEqual(rowWorkers(M, rowCost: C, workers: 3), 3)
        let x = randomArray(M * C, seed: 140), g = randomArray(C, seed: 142).map { 1 + 0.3 * $0 }, be = randomArray(C, seed: 143)
        func bn(_ workers: Int) -> [[Float]] {
            var mean = [Float](repeating: 0, count: C), rstd = mean, rm = mean, rv = [Float](repeating: 1, count: C)
            batchNormStatistics(mean: &mean, rstd: &rstd, runningMean: &rm, runningVar: &rv, x, M: M, C: C,
                                training: true, workers: workers)
            var out = [Float](repeating: 0, count: M * C), dx = out, dres = out
            var dg = [Float](repeating: 0, count: C), db = dg
            batchNormReLUForward(&out, x, residual: x, gamma: g, beta: be, mean: mean, rstd: rstd, M: M, C: C, workers: workers)
            batchNormReLUBackward(&dx, dresidual: &dres, dgamma: &dg, dbeta: &db, x, out: out, inp: x,
                                  gamma: g, mean: mean, rstd: rstd, M: M, C: C, training: true, workers: workers)
            return [mean, rstd, rm, rv, out, dx, dres, dg, db]
        }
        for (k, (a, b)) in zip(bn(1), bn(3)).enumerated() {
            let scale = max(1, a.map(abs).max() ?? 0)
            XCTAssertLessThanOrEqual(maxAbsDiff(a, b), 1e-5 * scale, "batch norm output \(k), C \(C): 1 vs 3 workers")
        }
    }
}

extension Optional where Wrapped == [Float] {
    func withOptionalPointer<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        switch self {
        case .none: return body(nil)
        case .some(let a): return a.withUnsafeBufferPointer { body($0.baseAddress) }
        }
    }

}
