import LabRandom
import XCTest
@testable import Engine

/// The engine's rule (Engine.swift): a backward WRITES the gradient of its
/// input, every element of it, and ACCUMULATES into parameter gradients.
/// Model.backward relies on both: it no longer zeroes activation gradients,
/// and it zeroes parameter gradients once. So a backward called twice on
/// buffers that start as NaN must leave input gradients equal to one call
/// from zeros (no NaN left: every element written) and parameter gradients
/// exactly doubled. (The conv's input gradient with `accumulate` adds instead:
/// the block's first activation, whose skip writes its share first.)
final class BackwardWriteRuleTests: XCTestCase {
    override func setUp() { BLAS.setThreads(1) }

    enum Role { case written, accumulated }

    /// Buffers of the given sizes and roles after `backward` ran `times` times;
    /// written buffers start as `fill`, accumulated ones as zeros.
    func run(_ buffers: [(Int, Role)], times: Int, fill: Float,
             _ backward: ([UnsafeMutablePointer<Float>]) -> Void) -> [[Float]] {
        let tensors = buffers.map { size, role in
            let t = Tensor([size])
            if role == .written { t.data.update(repeating: fill, count: size) }
            return t
        }
        for _ in 0..<times { backward(tensors.map(\.data)) }
        return tensors.map(\.array)
    }

    /// Exact for elementwise kernels (g + g == 2g in floats); GEMM-based ones
    /// (beta = 1) may round the sum differently, so they get a relative tolerance.
    func assertRule(_ name: String, _ buffers: [(Int, Role)], relativeTolerance: Float = 0,
                    file: StaticString = #filePath, line: UInt = #line,
                    _ backward: ([UnsafeMutablePointer<Float>]) -> Void) {
        let once = run(buffers, times: 1, fill: 0, backward)
        let twice = run(buffers, times: 2, fill: .nan, backward)
        for (k, role) in buffers.map(\.1).enumerated() {
            XCTAssertTrue(once[k].contains { $0 != 0 }, "\(name) gradient \(k) is all zero: nothing checked", file: file, line: line)
            let expected = role == .written ? once[k] : once[k].map { 2 * $0 }
            XCTAssertFalse(twice[k].contains { $0.isNaN }, "\(name) gradient \(k) left elements unwritten", file: file, line: line)
            let scale = max(1, expected.map(abs).max() ?? 0)
            XCTAssertLessThanOrEqual(maxAbsDiff(twice[k], expected), relativeTolerance * scale,
                                     "\(name) gradient \(k) is not \(role)", file: file, line: line)
        }
    }

    func testBatchNormReLUBackwardWritesInputsAccumulatesParameters() {
        let M = 12, C = 3
        let x = randomArray(M * C, seed: 100), res = randomArray(M * C, seed: 101), r = randomArray(M * C, seed: 102)
        let g = randomArray(C, seed: 103).map { 1 + 0.3 * $0 }, be = randomArray(C, seed: 104, scale: 0.5)
        for training in [true, false] {
            var mean = [Float](repeating: 0, count: C), rstd = mean, rm = mean, rv = [Float](repeating: 1, count: C)
            batchNormStatistics(mean: &mean, rstd: &rstd, runningMean: &rm, runningVar: &rv, x, M: M, C: C, training: training)
            var out = [Float](repeating: 0, count: M * C)
            batchNormReLUForward(&out, x, residual: res, gamma: g, beta: be, mean: mean, rstd: rstd, M: M, C: C)
            assertRule("bn(training: \(training)) [dx, dres, dgamma, dbeta]",
                       [(M * C, .written), (M * C, .written), (C, .accumulated), (C, .accumulated)]) { d in
                batchNormReLUBackward(d[0], dresidual: d[1], dgamma: d[2], dbeta: d[3], r, out: out, inp: x,
                                      gamma: g, mean: mean, rstd: rstd, M: M, C: C, training: training)
            }
        }
    }

    func testMaxPoolBackwardWritesEveryElement() {
        let N = 2, H = 4, W = 6, C = 3
        let x = randomArray(N * H * W * C, seed: 110), r = randomArray(N * H * W * C / 4, seed: 111)
        var out = [Float](repeating: 0, count: r.count)
        maxPool2x2Forward(&out, x, N: N, H: H, W: W, C: C)
        assertRule("maxpool [dx]", [(x.count, .written)]) { d in
            maxPool2x2Backward(d[0], r, inp: x, out: out, N: N, H: H, W: W, C: C)
        }
    }

    func testElementwiseBackwardsWrite() {
        let n = 40
        let x = randomArray(n, seed: 120), res = randomArray(n, seed: 121), r = randomArray(n, seed: 122)
        var out = [Float](repeating: 0, count: n), z = out
        for act in [Nonlinearity.relu, .leakyReLU, .elu, .silu, .sigmoid, .identity] {
            affineActivationForward(act, &out, preactivation: &z, x, scale: nil, shift: nil, residual: res, M: n, C: 1, workers: 1)
            assertRule("\(act) [dx]", [(n, .written)]) { d in activationBackward(act, d[0], r, inp: z, out: out, count: n) }
        }
        var mask = [Float](repeating: 0, count: n), rng = RNG(seed: 123)
        dropoutForward(&out, mask: &mask, x, count: n, p: 0.5, training: true, rng: &rng)
        assertRule("dropout [dx]", [(n, .written)]) { d in dropoutBackward(d[0], r, mask: mask, count: n) }
        let N = 2, HW = 5, C = 4
        assertRule("gap [dx]", [(N * HW * C, .written)]) { d in globalAvgPoolBackward(d[0], r, N: N, HW: HW, C: C) }
    }

    func testDenseAndConvBackwardsWriteInputsAccumulateParameters() {
        let N = 3, IN = 5, OUT = 4
        let x = randomArray(N * IN, seed: 130), w = randomArray(OUT * IN, seed: 131), r = randomArray(N * OUT, seed: 132)
        assertRule("dense [dx, dw, db]", [(N * IN, .written), (OUT * IN, .accumulated), (OUT, .accumulated)],
                   relativeTolerance: 1e-6) { d in
            denseBackward(d[0], d[1], d[2], r, x, w, N: N, IN: IN, OUT: OUT)
        }
        // Both convolution paths: im2col (3 channels) and Winograd F(4x4) (16).
        for (C, OC) in [(3, 5), (16, 16)] {
            let H = 16, W = 16
            let cx = randomArray(2 * H * W * C, seed: 133), cw = randomArray(9 * C * OC, seed: 134, scale: 0.5)
            let cr = randomArray(2 * H * W * OC, seed: 135)
            for winograd in [true, false] {
                let ws = ConvWorkspace(); ws.winograd = winograd
                let tag = "conv(\(C)->\(OC), winograd: \(winograd))"
                assertRule("\(tag) [dx, dw, db]", [(cx.count, .written), (cw.count, .accumulated), (OC, .accumulated)],
                           relativeTolerance: 1e-6) { d in
                    convBackward(d[0], d[1], d[2], cr, cx, cw, N: 2, H: H, W: W, C: C, OC: OC, workspace: ws)
                }
                assertRule("\(tag) accumulate [dx]", [(cx.count, .accumulated)], relativeTolerance: 1e-6) { d in
                    convBackward(d[0], nil, nil, cr, cx, cw, N: 2, H: H, W: W, C: C, OC: OC, accumulate: true, workspace: ws)
                }
            }
        }
    }

    /// The architecture vocabulary's backwards (ArchitectureLayerTests checks their values).
    func testArchitectureBackwardsWriteInputsAccumulateParameters() {
        let N = 2, H = 4, W = 6, C = 8, OC = 16, M = N * H * W
        let x = randomArray(M * C, seed: 300), r = randomArray(M * OC, seed: 301), rc = randomArray(M * C, seed: 302)
        assertRule("avgpool [dx]", [(M * C, .written)]) { d in avgPool2x2Backward(d[0], rc, N: N, H: H, W: W, C: C) }
        let w5 = randomArray(25 * C * OC, seed: 303, scale: 0.3)
        assertRule("conv5x5 [dx, dw, db]", [(M * C, .written), (w5.count, .accumulated), (OC, .accumulated)], relativeTolerance: 1e-6) { d in
            convBackward(d[0], d[1], d[2], r, x, w5, N: N, H: H, W: W, C: C, OC: OC, k: 5, workspace: ConvWorkspace(workers: 2))
        }
        let dw = randomArray(25 * C, seed: 304)
        assertRule("depthwise [dx, dw]", [(M * C, .written), (dw.count, .accumulated)], relativeTolerance: 1e-6) { d in
            depthwiseConvBackward(d[0], d[1], rc, x, dw, N: N, H: H, W: W, C: C, k: 5, workers: 2)
        }
        let pw = randomArray(C * OC, seed: 305)
        assertRule("pointwise [dx, dw, db]", [(M * C, .written), (pw.count, .accumulated), (OC, .accumulated)], relativeTolerance: 1e-6) { d in
            pointwiseConvBackward(d[0], d[1], d[2], r, x, pw, M: M, C: C, OC: OC, workers: 2)
        }
        let g = randomArray(C, seed: 306).map { 1 + 0.3 * $0 }
        var mean = [Float](repeating: 0, count: C), rstd = mean, rm = mean, rv = [Float](repeating: 1, count: C)
        batchNormStatistics(mean: &mean, rstd: &rstd, runningMean: &rm, runningVar: &rv, x, M: M, C: C, training: true)
        assertRule("bn unmasked [dx, dres, dgamma, dbeta]", [(M * C, .written), (M * C, .written), (C, .accumulated), (C, .accumulated)]) { d in
            batchNormBackward(d[0], dresidual: d[1], dgamma: d[2], dbeta: d[3], rc, inp: x, gamma: g, mean: mean, rstd: rstd,
                              M: M, C: C, training: true)
        }
        // Attention: dy and the shortcut's share written, parameters accumulated.
        let y = randomArray(M * OC, seed: 307, scale: 2)
        let se = SqueezeExcitationLayer(block: 1, C: OC, R: 4, H: H, W: W)
        se.allocate(batch: N)
        var rng = RNG(seed: 308)
        for p in se.parameters { for i in 0..<p.value.count { p.value[i] = rng.uniform(-0.8, 0.8) } }
        var out = [Float](repeating: 0, count: M * OC)
        se.forward(&out, preactivation: nil, y, shortcut: nil, activation: .relu, N: N, workers: 1)
        assertRule("se [dy, ds, fc1.w, fc1.b, fc2.w, fc2.b]", [(M * OC, .written), (M * OC, .written)] + se.parameters.map { ($0.value.count, .accumulated) },
                   relativeTolerance: 1e-6) { d in
            for (k, p) in se.parameters.enumerated() { p.grad.data.update(from: d[2 + k], count: p.grad.count) }
            se.backward(d[0], dshortcut: d[1], r, y, N: N, workers: 2)
            for (k, p) in se.parameters.enumerated() { d[2 + k].update(from: p.grad.data, count: p.grad.count) }
        }
        for batchNorm in [true, false] {
            let cb = CBAMLayer(block: 1, C: OC, R: 4, H: H, W: W, batchNorm: batchNorm)
            cb.allocate(batch: N)
            for p in cb.parameters { for i in 0..<p.value.count { p.value[i] = rng.uniform(-0.8, 0.8) } }
            cb.forward(&out, preactivation: nil, y, shortcut: nil, activation: .relu, N: N, training: true, workers: 1)
            assertRule("cbam bn \(batchNorm) [dy, ds, parameters]", [(M * OC, .written), (M * OC, .written)] + cb.parameters.map { ($0.value.count, .accumulated) },
                       relativeTolerance: 1e-6) { d in
                for (k, p) in cb.parameters.enumerated() { p.grad.data.update(from: d[2 + k], count: p.grad.count) }
                cb.backward(d[0], dshortcut: d[1], r, y, N: N, training: true, workers: 2)
                for (k, p) in cb.parameters.enumerated() { d[2 + k].update(from: p.grad.data, count: p.grad.count) }
            }
        }
    }
}
