import Foundation
import XCTest
@testable import Engine
import LabRandom

/// The layers of the architecture vocabulary (ModelConfig's §9 keys), each
/// alone: forward against a direct (loop-by-loop) reference where there is
/// one, backward against finite differences of its own forward.
final class ArchitectureLayerTests: XCTestCase {
    override func setUp() { BLAS.setThreads(1) }

    static let activations: [Nonlinearity] = [.identity, .relu, .leakyReLU, .elu, .silu, .sigmoid]

    /// Each nonlinearity in Double, as PyTorch defines it.
    static func reference(_ act: Nonlinearity, _ x: Double) -> Double {
        switch act {
        case .identity: return x
        case .relu: return max(0, x)
        case .leakyReLU: return x > 0 ? x : 0.01 * x
        case .elu: return x > 0 ? x : expm1(x)
        case .silu: return x / (1 + exp(-x))
        case .sigmoid: return 1 / (1 + exp(-x))
        }
    }

    // MARK: activations

    /// The polynomial exp behind ELU, SiLU and sigmoid, across float's range.
    func testActivationsMatchTheirDefinitions() {
        let xs = stride(from: -30.0, through: 30.0, by: 0.003).map { Float($0) } + [-100, -88, -87.3, -1e-6, -1e-30, 0, 1e-30, 1e-6, 88, 100]
        for act in Self.activations {
            var out = [Float](repeating: .nan, count: xs.count)
            activationForward(act, &out, xs, count: xs.count)
            var worst = 0.0
            for (x, o) in zip(xs, out) {
                let ref = Self.reference(act, Double(x))
                worst = max(worst, abs(Double(o) - ref) / max(1e-30, abs(ref), 1e-6))
            }
            XCTAssertLessThan(worst, 1e-6, "\(act): worst error relative to max(|f|, 1e-6)")
        }
        // expm1, not exp - 1: ELU keeps its relative precision near 0.
        var out: [Float] = [0]
        activationForward(.elu, &out, [-1e-6], count: 1)
        XCTAssertEqual(Double(out[0]), expm1(-1e-6), accuracy: 1e-13)
    }

    /// out = act(x * scale + shift + residual) and its gradient through
    /// activationBackward, for every nonlinearity, with and without the
    /// preactivation kept (SiLU reads it; the others read the output).
    func testAffineActivationAndItsGradient() {
        let M = 7, C = 5
        for act in Self.activations {
            for keep in [false, true] {
                var x = randomArray(M * C, seed: 200, scale: 2), res = randomArray(M * C, seed: 201)
                let sc = randomArray(C, seed: 202).map { 1 + 0.5 * $0 }, sh = randomArray(C, seed: 203, scale: 0.5)
                let r = randomArray(M * C, seed: 204)
                func forward(_ x: [Float], _ res: [Float]) -> (out: [Float], z: [Float]) {
                    var out = [Float](repeating: .nan, count: M * C), z = out
                    z.withUnsafeMutableBufferPointer { zp in
                        affineActivationForward(act, &out, preactivation: keep ? zp.baseAddress : nil, x, scale: sc, shift: sh,
                                                residual: res, M: M, C: C, workers: 1)
                    }
                    return (out, z)
                }
                let f = forward(x, res)
                for i in 0..<(M * C) {
                    let z = Double(x[i]) * Double(sc[i % C]) + Double(sh[i % C]) + Double(res[i])
                    XCTAssertEqual(Double(f.out[i]), Self.reference(act, z), accuracy: 1e-5 * max(1, abs(z)), "\(act)")
                    if keep { XCTAssertEqual(Double(f.z[i]), z, accuracy: 1e-5 * max(1, abs(z))) }
                }
                if act.needsInput && !keep { continue }   // SiLU's gradient needs z
                var dz = [Float](repeating: .nan, count: M * C)
                activationBackward(act, &dz, r, inp: keep ? f.z : f.out, out: f.out, count: M * C)
                let dx = (0..<(M * C)).map { dz[$0] * sc[$0 % C] }
                assertGradient("\(act) keep \(keep) dx", x: &x, analytic: dx, eps: 1e-3) { dot(forward($0, res).out, r) }
                assertGradient("\(act) keep \(keep) dres", x: &res, analytic: dz, eps: 1e-3) { dot(forward(x, $0).out, r) }
            }
        }
    }

    /// A conv unit's batch norm with each activation, the way the model runs
    /// it: forward fused, backward the activation's gradient in place, then
    /// batchNormBackward unmasked (batchNormReLUBackward has its own test).
    func testBatchNormWithEachActivation() {
        let M = 13
        for act in [Nonlinearity.identity, .leakyReLU, .elu, .silu] { for C in [3, 16, 35] { for training in [true, false] {
            var x = randomArray(M * C, seed: UInt64(60 + C), scale: 2).enumerated().map { $0.element + Float($0.offset % 3) }
            var g = randomArray(C, seed: 61).map { 1 + 0.3 * $0 }, be = randomArray(C, seed: 62, scale: 0.5)
            var res = randomArray(M * C, seed: 63)
            let r = randomArray(M * C, seed: 64)
            let rm0 = randomArray(C, seed: 65, scale: 0.3), rv0 = randomArray(C, seed: 66).map { 1 + 0.5 * $0 }
            func forward(_ x: [Float], _ g: [Float], _ be: [Float], _ res: [Float]) -> (out: [Float], z: [Float], mean: [Float], rstd: [Float]) {
                var mean = [Float](repeating: 0, count: C), rstd = mean, rm = rm0, rv = rv0
                batchNormStatistics(mean: &mean, rstd: &rstd, runningMean: &rm, runningVar: &rv, x, M: M, C: C, training: training)
                var out = [Float](repeating: 0, count: M * C), z = out
                batchNormActivationForward(act, &out, preactivation: &z, x, residual: res, gamma: g, beta: be, mean: mean, rstd: rstd,
                                           M: M, C: C)
                return (out, z, mean, rstd)
            }
            // The residual moves every activation input at least 0.1 from the kink (leaky ReLU's):
            // finite differences across it measure the kink, not the gradient.
            let z0 = forward(x, g, be, res).z
            for i in 0..<(M * C) where abs(z0[i]) < 0.1 { res[i] += z0[i] < 0 ? -0.2 : 0.2 }
            let f = forward(x, g, be, res)
            XCTAssertGreaterThan(f.z.map(abs).min()!, 0.05)
            var d = r, dx = [Float](repeating: .nan, count: M * C), dres = dx
            var dg = [Float](repeating: 0, count: C), db = dg
            activationBackward(act, &d, d, inp: act.needsInput ? f.z : f.out, out: f.out, count: M * C)
            batchNormBackward(&dx, dresidual: &dres, dgamma: &dg, dbeta: &db, d, inp: x, gamma: g, mean: f.mean, rstd: f.rstd,
                              M: M, C: C, training: training)
            let tag = "bn \(act) (training: \(training), C: \(C))"
            let loss = { (x: [Float], g: [Float], be: [Float], res: [Float]) in dot(forward(x, g, be, res).out, r) }
            assertGradient("\(tag) dx", x: &x, analytic: dx, eps: 1e-3) { loss($0, g, be, res) }
            assertGradient("\(tag) dgamma", x: &g, analytic: dg, eps: 1e-3) { loss(x, $0, be, res) }
            assertGradient("\(tag) dbeta", x: &be, analytic: db, eps: 1e-3) { loss(x, g, $0, res) }
            assertGradient("\(tag) dres", x: &res, analytic: dres, eps: 1e-3) { loss(x, g, be, $0) }
        } } }
    }

    // MARK: average pool

    func testAvgPool() {
        let N = 2, H = 4, W = 6, C = 5
        var x = randomArray(N * H * W * C, seed: 210)
        let r = randomArray(N * H * W * C / 4, seed: 211)
        func forward(_ x: [Float]) -> [Float] {
            var out = [Float](repeating: .nan, count: r.count)
            avgPool2x2Forward(&out, x, N: N, H: H, W: W, C: C)
            return out
        }
        let out = forward(x)
        XCTAssertEqual(out[0], (x[0] + x[C] + x[W * C] + x[W * C + C]) / 4)
        XCTAssertEqual(out[C + 1], (x[2 * C + 1] + x[3 * C + 1] + x[W * C + 2 * C + 1] + x[W * C + 3 * C + 1]) / 4)
        var dx = [Float](repeating: .nan, count: x.count)
        avgPool2x2Backward(&dx, r, N: N, H: H, W: W, C: C)
        assertGradient("avgpool dx", x: &x, analytic: dx) { dot(forward($0), r) }
    }

    // MARK: k x k convolution

    /// Direct k x k convolution, NHWC, zero padding k/2: the independent reference.
    static func directConv(_ x: [Float], _ w: [Float], _ b: [Float]?, N: Int, H: Int, W: Int, C: Int, OC: Int, k: Int) -> [Float] {
        var out = [Float](repeating: 0, count: N * H * W * OC)
        let p = k / 2
        for n in 0..<N { for y in 0..<H { for xx in 0..<W { for o in 0..<OC {
            var s = Double(b?[o] ?? 0)
            for ky in 0..<k { for kx in 0..<k {
                let iy = y + ky - p, ix = xx + kx - p
                guard iy >= 0, iy < H, ix >= 0, ix < W else { continue }
                for c in 0..<C { s += Double(x[((n * H + iy) * W + ix) * C + c]) * Double(w[((ky * k + kx) * C + c) * OC + o]) }
            } }
            out[((n * H + y) * W + xx) * OC + o] = Float(s)
        } } } }
        return out
    }

    /// 5x5 takes im2col + GEMM (smallGemm or OpenBLAS) at every size, borders
    /// of two pixels included; images narrower than the kernel too.
    func testConv5x5() {
        for (N, H, W, C, OC, bias, tileFloats, workers) in [(2, 6, 7, 3, 8, true, 1 << 20, 1), (2, 5, 4, 4, 3, false, 1, 2),
                                                            (1, 3, 2, 2, 16, true, 1 << 20, 1), (3, 8, 8, 16, 16, false, 4000, 2)] {
            let ws = ConvWorkspace(tileFloats: tileFloats, workers: workers)
            let tag = "conv5x5 \(N)x\(H)x\(W)x\(C)->\(OC) bias \(bias) workers \(workers)"
            var x = randomArray(N * H * W * C, seed: 220), w = randomArray(25 * C * OC, seed: 221, scale: 0.3)
            var b = bias ? randomArray(OC, seed: 222) : []
            let r = randomArray(N * H * W * OC, seed: 223)
            func forward(_ x: [Float], _ w: [Float], _ b: [Float]) -> [Float] {
                var out = [Float](repeating: .nan, count: N * H * W * OC)
                b.withUnsafeBufferPointer { bp in
                    convForward(&out, x, w, bias ? bp.baseAddress : nil, N: N, H: H, W: W, C: C, OC: OC, k: 5, workspace: ws)
                }
                return out
            }
            let ref = Self.directConv(x, w, bias ? b : nil, N: N, H: H, W: W, C: C, OC: OC, k: 5)
            XCTAssertLessThan(maxAbsDiff(forward(x, w, b), ref), 1e-4, tag)
            var dx = [Float](repeating: .nan, count: x.count), dw = [Float](repeating: 0, count: w.count), db = [Float](repeating: 0, count: OC)
            db.withUnsafeMutableBufferPointer { dbp in
                convBackward(&dx, &dw, bias ? dbp.baseAddress : nil, r, x, w, N: N, H: H, W: W, C: C, OC: OC, k: 5, workspace: ws)
            }
            let loss = { (x: [Float], w: [Float], b: [Float]) in dot(forward(x, w, b), r) }
            assertGradient("\(tag) dx", x: &x, analytic: dx, samples: 60) { loss($0, w, b) }
            assertGradient("\(tag) dw", x: &w, analytic: dw, samples: 60) { loss(x, $0, b) }
            if bias { assertGradient("\(tag) db", x: &b, analytic: db) { loss(x, w, $0) } }
            // The input gradient added to what is there (a block's first activation).
            var acc = randomArray(x.count, seed: 224)
            let prior = acc
            convBackward(&acc, nil, nil, r, x, w, N: N, H: H, W: W, C: C, OC: OC, k: 5, accumulate: true, workspace: ws)
            XCTAssertLessThan(maxAbsDiff(acc, zip(prior, dx).map { $0 + $1 }), 1e-4, "\(tag) accumulate")
        }
    }

    /// Eval's folded unit, relu(scale * conv + shift + residual), at 5x5 (the im2col epilogue).
    func testConv5x5Epilogue() {
        let (N, H, W, C, OC) = (2, 6, 6, 8, 16)
        let ws = ConvWorkspace(workers: 2)
        let x = randomArray(N * H * W * C, seed: 225), w = randomArray(25 * C * OC, seed: 226, scale: 0.3)
        let b = randomArray(OC, seed: 227), res = randomArray(N * H * W * OC, seed: 228)
        let scale = randomArray(OC, seed: 229).map { 1 + 0.5 * $0 }
        let direct = Self.directConv(x, w, nil, N: N, H: H, W: W, C: C, OC: OC, k: 5)
        var out = [Float](repeating: .nan, count: direct.count)
        convForward(&out, x, w, b, N: N, H: H, W: W, C: C, OC: OC, k: 5, scale: scale, residual: res, relu: true, workspace: ws)
        XCTAssertLessThan(maxAbsDiff(out, direct.indices.map { max(0, direct[$0] * scale[$0 % OC] + b[$0 % OC] + res[$0]) }), 1e-4)
    }

    // MARK: depthwise and pointwise

    static func directDepthwise(_ x: [Float], _ w: [Float], N: Int, H: Int, W: Int, C: Int, k: Int) -> [Float] {
        var out = [Float](repeating: 0, count: N * H * W * C)
        let p = k / 2
        for n in 0..<N { for y in 0..<H { for xx in 0..<W { for c in 0..<C {
            var s = 0.0
            for ky in 0..<k { for kx in 0..<k {
                let iy = y + ky - p, ix = xx + kx - p
                guard iy >= 0, iy < H, ix >= 0, ix < W else { continue }
                s += Double(x[((n * H + iy) * W + ix) * C + c]) * Double(w[(ky * k + kx) * C + c])
            } }
            out[((n * H + y) * W + xx) * C + c] = Float(s)
        } } } }
        return out
    }

    func testDepthwiseConv() {
        for (N, H, W, C, k, workers) in [(2, 5, 6, 3, 3, 1), (2, 4, 3, 13, 5, 2), (1, 2, 7, 8, 5, 1), (3, 8, 8, 32, 3, 3)] {
            let tag = "depthwise \(k)x\(k) \(N)x\(H)x\(W)x\(C), \(workers) workers"
            var x = randomArray(N * H * W * C, seed: 230), w = randomArray(k * k * C, seed: 231)
            let r = randomArray(x.count, seed: 232)
            func forward(_ x: [Float], _ w: [Float]) -> [Float] {
                var out = [Float](repeating: .nan, count: x.count)
                depthwiseConvForward(&out, x, w, N: N, H: H, W: W, C: C, k: k, workers: workers)
                return out
            }
            XCTAssertLessThan(maxAbsDiff(forward(x, w), Self.directDepthwise(x, w, N: N, H: H, W: W, C: C, k: k)), 1e-5, tag)
            var dx = [Float](repeating: .nan, count: x.count), dw = [Float](repeating: 0, count: w.count)
            depthwiseConvBackward(&dx, &dw, r, x, w, N: N, H: H, W: W, C: C, k: k, workers: workers)
            assertGradient("\(tag) dx", x: &x, analytic: dx, samples: 60) { dot(forward($0, w), r) }
            assertGradient("\(tag) dw", x: &w, analytic: dw, samples: 60) { dot(forward(x, $0), r) }
            var acc = randomArray(x.count, seed: 233)
            let prior = acc
            depthwiseConvBackward(&acc, nil, r, x, w, N: N, H: H, W: W, C: C, k: k, accumulate: true, workers: workers)
            XCTAssertLessThan(maxAbsDiff(acc, zip(prior, dx).map { $0 + $1 }), 1e-5, "\(tag) accumulate")
        }
        XCTAssertEqual(rowWorkers(3 * 8, rowCost: 8 * 32 * 9, workers: 3), 1, "one image's rows stay on one worker")
        XCTAssertEqual(rowWorkers(64 * 64, rowCost: 64 * 32 * 9, workers: 3), 3)
    }

    func testPointwiseConv() {
        for (M, C, OC, bias, workers) in [(37, 5, 8, false, 1), (37, 5, 7, true, 2), (4000, 40, 24, false, 3), (4000, 300, 16, false, 2)] {
            let tag = "pointwise \(M)x\(C)->\(OC) bias \(bias), \(workers) workers"
            var x = randomArray(M * C, seed: 240), w = randomArray(C * OC, seed: 241, scale: 0.3)
            var b = bias ? randomArray(OC, seed: 242) : []
            let r = randomArray(M * OC, seed: 243)
            func forward(_ x: [Float], _ w: [Float], _ b: [Float]) -> [Float] {
                var out = [Float](repeating: .nan, count: M * OC)
                b.withUnsafeBufferPointer { bp in
                    pointwiseConvForward(&out, x, w, bias ? bp.baseAddress : nil, M: M, C: C, OC: OC, workers: workers)
                }
                return out
            }
            let ref = Self.directConv(x, w, bias ? b : nil, N: 1, H: M, W: 1, C: C, OC: OC, k: 1)
            XCTAssertLessThan(maxAbsDiff(forward(x, w, b), ref), 1e-4, tag)
            var dx = [Float](repeating: .nan, count: x.count), dw = [Float](repeating: 0, count: w.count), db = [Float](repeating: 0, count: OC)
            db.withUnsafeMutableBufferPointer { dbp in
                pointwiseConvBackward(&dx, &dw, bias ? dbp.baseAddress : nil, r, x, w, M: M, C: C, OC: OC, workers: workers)
            }
            let loss = { (x: [Float], w: [Float], b: [Float]) in dot(forward(x, w, b), r) }
            assertGradient("\(tag) dx", x: &x, analytic: dx, samples: 40, eps: 1e-2, rtol: 3e-2, atol: 3e-3) { loss($0, w, b) }
            assertGradient("\(tag) dw", x: &w, analytic: dw, samples: 40, eps: 1e-2, rtol: 3e-2, atol: 3e-3) { loss(x, $0, b) }
            if bias { assertGradient("\(tag) db", x: &b, analytic: db, eps: 1e-2, rtol: 3e-2, atol: 3e-3) { loss(x, w, $0) } }
            var acc = randomArray(x.count, seed: 244)
            let prior = acc
            pointwiseConvBackward(&acc, nil, nil, r, x, w, M: M, C: C, OC: OC, accumulate: true, workers: workers)
            XCTAssertLessThan(maxAbsDiff(acc, zip(prior, dx).map { $0 + $1 }), 1e-4, "\(tag) accumulate")
        }
    }

    // MARK: squeeze-and-excitation

    /// The block's ending with SE: out = act(y * gate + s), backward as the
    /// model runs it (act's gradient first, then the layer's).
    func checkSE(act: Nonlinearity, shortcut: Bool, workers: Int) {
        let N = 3, H = 3, W = 4, C = 12, R = 3, P = H * W
        let se = SqueezeExcitationLayer(block: 1, C: C, R: R, H: H, W: W)
        se.allocate(batch: N)
        var rng = RNG(seed: 250)
        for p in se.parameters { for i in 0..<p.value.count { p.value[i] = rng.uniform(-0.8, 0.8) } }
        var y = randomArray(N * P * C, seed: 251, scale: 2), s = randomArray(N * P * C, seed: 252)
        let r = randomArray(N * P * C, seed: 253)
        func forward(_ y: [Float], _ s: [Float]) -> (out: [Float], z: [Float]) {
            var out = [Float](repeating: .nan, count: y.count), z = out
            s.withUnsafeBufferPointer { sp in
                se.forward(&out, preactivation: &z, y, shortcut: shortcut ? sp.baseAddress : nil, activation: act, N: N, workers: workers)
            }
            return (out, z)
        }
        // Against the definition, image by image.
        let f = forward(y, s)
        for n in 0..<N {
            let pooled = (0..<C).map { c in (0..<P).reduce(0.0) { $0 + Double(y[(n * P + $1) * C + c]) } / Double(P) }
            let hidden = (0..<R).map { j in max(0, Double(se.fc1b.value[j]) + (0..<C).reduce(0.0) { $0 + Double(se.fc1w.value[j * C + $1]) * pooled[$1] }) }
            let gate = (0..<C).map { c in 1 / (1 + exp(-(Double(se.fc2b.value[c]) + (0..<R).reduce(0.0) { $0 + Double(se.fc2w.value[c * R + $1]) * hidden[$1] }))) }
            for p in 0..<P { for c in 0..<C {
                let i = (n * P + p) * C + c
                let v = Double(y[i]) * gate[c] + (shortcut ? Double(s[i]) : 0)
                XCTAssertEqual(Double(f.out[i]), Self.reference(act, v), accuracy: 1e-5, "SE forward")
            } }
        }
        se.parameters.forEach { $0.grad.zero() }
        var dv = [Float](repeating: 0, count: y.count), dy = [Float](repeating: .nan, count: y.count), ds = dy
        activationBackward(act, &dv, r, inp: act.needsInput ? f.z : f.out, out: f.out, count: y.count)
        ds.withUnsafeMutableBufferPointer { dsp in
            se.backward(&dy, dshortcut: shortcut ? dsp.baseAddress : nil, dv, y, N: N, workers: workers)
        }
        let tag = "SE \(act) shortcut \(shortcut) workers \(workers)"
        assertGradient("\(tag) dy", x: &y, analytic: dy, samples: 80, eps: 1e-3) { dot(forward($0, s).out, r) }
        if shortcut { assertGradient("\(tag) ds", x: &s, analytic: ds, samples: 40, eps: 1e-3) { dot(forward(y, $0).out, r) } }
        for p in se.parameters {
            var v = p.value.array
            assertGradient("\(tag) \(p.name)", x: &v, analytic: p.grad.array, eps: 1e-3) { v in
                let saved = p.value.array
                for i in 0..<v.count { p.value[i] = v[i] }
                defer { for i in 0..<v.count { p.value[i] = saved[i] } }
                return dot(forward(y, s).out, r)
            }
        }
    }

    func testSqueezeExcitation() {
        checkSE(act: .relu, shortcut: true, workers: 1)
        checkSE(act: .silu, shortcut: true, workers: 2)
        checkSE(act: .elu, shortcut: false, workers: 1)
    }

    // MARK: CBAM

    /// CBAM's 7x7 spatial convolution on the zero-bordered planes against the direct one.
    func testCBAMSpatialConvolution() {
        let N = 2, H = 5, W = 6, PW = W + 6, plane = (H + 6) * PW
        var planes = [Float](repeating: 0, count: N * 2 * plane)
        let inner = randomArray(N * 2 * H * W, seed: 260)
        for n in 0..<N { for c in 0..<2 { for y in 0..<H { for x in 0..<W {
            planes[(n * 2 + c) * plane + (y + 3) * PW + x + 3] = inner[((n * 2 + c) * H + y) * W + x]
        } } } }
        var w = randomArray(98, seed: 261, scale: 0.3)
        var bias: [Float] = [0.3]
        let r = randomArray(N * H * W, seed: 262)
        func forward(_ inner: [Float], _ w: [Float], _ b: Float) -> [Float] {
            var p = [Float](repeating: 0, count: N * 2 * plane)
            for n in 0..<N { for c in 0..<2 { for y in 0..<H { for x in 0..<W {
                p[(n * 2 + c) * plane + (y + 3) * PW + x + 3] = inner[((n * 2 + c) * H + y) * W + x]
            } } } }
            var out = [Float](repeating: .nan, count: N * H * W)
            cbamSpatialConvForward(&out, p, w, bias: b, N: N, H: H, W: W, workers: 2)
            return out
        }
        // Direct: planes as NCHW with 2 channels, weights [1, 2, 7, 7].
        var direct = [Float](repeating: 0, count: N * H * W)
        for n in 0..<N { for y in 0..<H { for x in 0..<W {
            var s = Double(bias[0])
            for c in 0..<2 { for ky in 0..<7 { for kx in 0..<7 {
                let iy = y + ky - 3, ix = x + kx - 3
                guard iy >= 0, iy < H, ix >= 0, ix < W else { continue }
                s += Double(inner[((n * 2 + c) * H + iy) * W + ix]) * Double(w[(c * 7 + ky) * 7 + kx])
            } } }
            direct[(n * H + y) * W + x] = Float(s)
        } } }
        XCTAssertLessThan(maxAbsDiff(forward(inner, w, bias[0]), direct), 1e-5)
        var dplanes = [Float](repeating: .nan, count: N * 2 * H * W), dw = [Float](repeating: 0, count: 98), db: [Float] = [0]
        cbamSpatialConvBackward(&dplanes, dweight: &dw, dbias: &db, r, planes, w, N: N, H: H, W: W, workers: 2)
        var x = inner
        assertGradient("spatial conv dplanes", x: &x, analytic: dplanes, eps: 1e-3) { dot(forward($0, w, bias[0]), r) }
        assertGradient("spatial conv dw", x: &w, analytic: dw, eps: 1e-3) { dot(forward(inner, $0, bias[0]), r) }
        assertGradient("spatial conv db", x: &bias, analytic: db, eps: 1e-3) { dot(forward(inner, w, $0[0]), r) }
    }

    /// The block's ending with CBAM: out = act((y * cg) * sg + s), with its
    /// spatial batch norm (train and eval) or a bias, backward as the model
    /// runs it. Random data keeps maxima apart by far more than eps.
    func checkCBAM(act: Nonlinearity, batchNorm: Bool, training: Bool, shortcut: Bool, workers: Int) {
        let N = 2, H = 3, W = 4, C = 10, R = 3, P = H * W
        let cb = CBAMLayer(block: 1, C: C, R: R, H: H, W: W, batchNorm: batchNorm)
        cb.allocate(batch: N)
        var rng = RNG(seed: 270)
        for p in cb.parameters { for i in 0..<p.value.count { p.value[i] = rng.uniform(-0.8, 0.8) } }
        if let bn = cb.spatialBN { bn.gamma.value[0] = 1.3; bn.running.mean[0] = 0.2; bn.running.variance[0] = 1.7 }
        let mean0 = cb.spatialBN?.running.mean[0], var0 = cb.spatialBN?.running.variance[0]
        var y = randomArray(N * P * C, seed: 271, scale: 2), s = randomArray(N * P * C, seed: 272)
        let r = randomArray(N * P * C, seed: 273)
        func forward(_ y: [Float], _ s: [Float]) -> (out: [Float], z: [Float]) {
            var out = [Float](repeating: .nan, count: y.count), z = out
            s.withUnsafeBufferPointer { sp in
                cb.forward(&out, preactivation: &z, y, shortcut: shortcut ? sp.baseAddress : nil, activation: act, N: N,
                           training: training, workers: workers)
            }
            if let bn = cb.spatialBN { bn.running.mean[0] = mean0!; bn.running.variance[0] = var0! }  // finite differences must not drift them
            return (out, z)
        }
        let f = forward(y, s)
        cb.parameters.forEach { $0.grad.zero() }
        var dv = [Float](repeating: 0, count: y.count), dy = [Float](repeating: .nan, count: y.count), ds = dy
        activationBackward(act, &dv, r, inp: act.needsInput ? f.z : f.out, out: f.out, count: y.count)
        ds.withUnsafeMutableBufferPointer { dsp in
            cb.backward(&dy, dshortcut: shortcut ? dsp.baseAddress : nil, dv, y, N: N, training: training, workers: workers)
        }
        let tag = "CBAM \(act) bn \(batchNorm) training \(training) shortcut \(shortcut) workers \(workers)"
        assertGradient("\(tag) dy", x: &y, analytic: dy, samples: 80, eps: 1e-3) { dot(forward($0, s).out, r) }
        if shortcut { assertGradient("\(tag) ds", x: &s, analytic: ds, samples: 40, eps: 1e-3) { dot(forward(y, $0).out, r) } }
        for p in cb.parameters {
            var v = p.value.array
            assertGradient("\(tag) \(p.name)", x: &v, analytic: p.grad.array, samples: 40, eps: 1e-3) { v in
                let saved = p.value.array
                for i in 0..<v.count { p.value[i] = v[i] }
                defer { for i in 0..<v.count { p.value[i] = saved[i] } }
                return dot(forward(y, s).out, r)
            }
        }
    }

    func testCBAM() {
        checkCBAM(act: .relu, batchNorm: true, training: true, shortcut: true, workers: 1)
        checkCBAM(act: .relu, batchNorm: true, training: false, shortcut: true, workers: 2)
        checkCBAM(act: .silu, batchNorm: true, training: true, shortcut: false, workers: 2)
        checkCBAM(act: .leakyReLU, batchNorm: false, training: true, shortcut: true, workers: 1)
    }

    /// CBAM's forward against its definition in Double (the authors' order:
    /// channel gate, then the spatial gate on the gated features).
    func testCBAMForwardMatchesDefinition() {
        let N = 2, H = 3, W = 4, C = 11, R = 2, P = H * W
        let cb = CBAMLayer(block: 1, C: C, R: R, H: H, W: W, batchNorm: true)
        cb.allocate(batch: N)
        var rng = RNG(seed: 280)
        for p in cb.parameters { for i in 0..<p.value.count { p.value[i] = rng.uniform(-0.8, 0.8) } }
        let y = randomArray(N * P * C, seed: 281, scale: 2)
        var out = [Float](repeating: .nan, count: y.count)
        cb.forward(&out, preactivation: nil, y, shortcut: nil, activation: .identity, N: N, training: true, workers: 1)
        func mlp(_ v: [Double]) -> [Double] {
            let h = (0..<R).map { j in max(0, Double(cb.fc1b.value[j]) + (0..<C).reduce(0.0) { $0 + Double(cb.fc1w.value[j * C + $1]) * v[$1] }) }
            return (0..<C).map { c in Double(cb.fc2b.value[c]) + (0..<R).reduce(0.0) { $0 + Double(cb.fc2w.value[c * R + $1]) * h[$1] } }
        }
        var y1 = [Double](repeating: 0, count: y.count), pooled = [Double](repeating: 0, count: N * 2 * P)
        for n in 0..<N {
            let avg = (0..<C).map { c in (0..<P).reduce(0.0) { $0 + Double(y[(n * P + $1) * C + c]) } / Double(P) }
            let mx = (0..<C).map { c in (0..<P).map { Double(y[(n * P + $0) * C + c]) }.max()! }
            let (ma, mm) = (mlp(avg), mlp(mx))
            let cg = (0..<C).map { 1 / (1 + exp(-(ma[$0] + mm[$0]))) }
            for p in 0..<P {
                for c in 0..<C { y1[(n * P + p) * C + c] = Double(y[(n * P + p) * C + c]) * cg[c] }
                let row = y1[((n * P + p) * C)..<((n * P + p + 1) * C)]
                pooled[(n * 2) * P + p] = row.max()!
                pooled[(n * 2 + 1) * P + p] = row.reduce(0, +) / Double(C)
            }
        }
        var conv = [Double](repeating: 0, count: N * P)
        for n in 0..<N { for py in 0..<H { for px in 0..<W {
            var s = 0.0
            for c in 0..<2 { for ky in 0..<7 { for kx in 0..<7 {
                let iy = py + ky - 3, ix = px + kx - 3
                guard iy >= 0, iy < H, ix >= 0, ix < W else { continue }
                s += pooled[(n * 2 + c) * P + iy * W + ix] * Double(cb.spatialWeight.value[(c * 7 + ky) * 7 + kx])
            } } }
            conv[n * P + py * W + px] = s
        } } }
        let mu = conv.reduce(0, +) / Double(conv.count)
        let v = conv.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / Double(conv.count)
        let bn = cb.spatialBN!
        for m in 0..<(N * P) {
            let sg = 1 / (1 + exp(-(Double(bn.gamma.value[0]) * (conv[m] - mu) / (v + 1e-5).squareRoot() + Double(bn.beta.value[0]))))
            for c in 0..<C { XCTAssertEqual(Double(out[m * C + c]), y1[m * C + c] * sg, accuracy: 1e-5) }
        }
        XCTAssertEqual(Double(bn.running.mean[0]), 0.1 * mu, accuracy: 1e-5, "the spatial batch norm's running mean moved")
    }
}
