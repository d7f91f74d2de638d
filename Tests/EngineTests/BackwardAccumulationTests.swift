import LabRandom
import XCTest
@testable import Engine

/// Every layer's backward accumulates (+=) into its gradient buffers, llm.c's
/// rule: Model.backward zeroes all gradients once, and a buffer with two
/// consumers (a block's first activation feeds the next conv and the skip)
/// needs no special case. So a backward called twice on the same inputs must
/// leave exactly twice the gradient. (The loss backward is the graph's root
/// and writes dlogits; it is not a layer.)
final class BackwardAccumulationTests: XCTestCase {
    override func setUp() { BLAS.setThreads(1) }

    /// The gradient buffers (zeroed, of the given sizes) after one call of
    /// `backward` and after two.
    func onceAndTwice(_ sizes: [Int], _ backward: ([UnsafeMutablePointer<Float>]) -> Void) -> (once: [[Float]], twice: [[Float]]) {
        func run(_ times: Int) -> [[Float]] {
            let buffers = sizes.map { Tensor([$0]) }
            for _ in 0..<times { backward(buffers.map(\.data)) }
            return buffers.map(\.array)
        }
        return (run(1), run(2))
    }

    /// Exact for elementwise kernels (g + g == 2g in floats); GEMM-based ones
    /// (beta = 1) may round the sum differently, so they get a relative tolerance.
    func assertDoubled(_ name: String, _ r: (once: [[Float]], twice: [[Float]]), relativeTolerance: Float = 0,
                       file: StaticString = #filePath, line: UInt = #line) {
        for (k, (once, twice)) in zip(r.once, r.twice).enumerated() {
            XCTAssertTrue(once.contains { $0 != 0 }, "\(name) gradient \(k) is all zero: nothing checked", file: file, line: line)
            let doubled = once.map { 2 * $0 }
            if relativeTolerance == 0 {
                XCTAssertEqual(twice, doubled, "\(name) gradient \(k) did not accumulate", file: file, line: line)
            } else {
                let scale = max(1, doubled.map(abs).max() ?? 0)
                XCTAssertLessThanOrEqual(maxAbsDiff(twice, doubled), relativeTolerance * scale,
                                         "\(name) gradient \(k) did not accumulate", file: file, line: line)
            }
        }
    }

    func testBatchNormReLUBackwardAccumulates() {
        let M = 12, C = 3
        let x = randomArray(M * C, seed: 100), res = randomArray(M * C, seed: 101), r = randomArray(M * C, seed: 102)
        let g = randomArray(C, seed: 103).map { 1 + 0.3 * $0 }, be = randomArray(C, seed: 104, scale: 0.5)
        for training in [true, false] {
            var mean = [Float](repeating: 0, count: C), rstd = mean, rm = mean, rv = [Float](repeating: 1, count: C)
            batchNormStatistics(mean: &mean, rstd: &rstd, runningMean: &rm, runningVar: &rv, x, M: M, C: C, training: training)
            var out = [Float](repeating: 0, count: M * C)
            batchNormReLUForward(&out, x, residual: res, gamma: g, beta: be, mean: mean, rstd: rstd, M: M, C: C)
            assertDoubled("bn(training: \(training)) [dx, dres, dgamma, dbeta]", onceAndTwice([M * C, M * C, C, C]) { d in
                batchNormReLUBackward(d[0], dresidual: d[1], dgamma: d[2], dbeta: d[3], r, out: out, inp: x,
                                      gamma: g, mean: mean, rstd: rstd, M: M, C: C, training: training)
            })
        }
    }

    func testMaxPoolBackwardAccumulates() {
        let N = 2, H = 4, W = 6, C = 3
        let x = randomArray(N * H * W * C, seed: 110), r = randomArray(N * H * W * C / 4, seed: 111)
        var out = [Float](repeating: 0, count: r.count)
        maxPool2x2Forward(&out, x, N: N, H: H, W: W, C: C)
        assertDoubled("maxpool [dx]", onceAndTwice([x.count]) { d in
            maxPool2x2Backward(d[0], r, inp: x, out: out, N: N, H: H, W: W, C: C)
        })
    }

    func testElementwiseBackwardsAccumulate() {
        let n = 40
        let x = randomArray(n, seed: 120), res = randomArray(n, seed: 121), r = randomArray(n, seed: 122)
        var out = [Float](repeating: 0, count: n)
        addReLUForward(&out, x, residual: res, count: n)
        assertDoubled("addrelu [dx, dres]", onceAndTwice([n, n]) { d in
            addReLUBackward(d[0], dresidual: d[1], r, out: out, count: n)
        })
        reluForward(&out, x, count: n)
        assertDoubled("relu [dx]", onceAndTwice([n]) { d in reluBackward(d[0], r, out: out, count: n) })
        var mask = [Float](repeating: 0, count: n), rng = RNG(seed: 123)
        dropoutForward(&out, mask: &mask, x, count: n, p: 0.5, training: true, rng: &rng)
        assertDoubled("dropout [dx]", onceAndTwice([n]) { d in dropoutBackward(d[0], r, mask: mask, count: n) })
        let N = 2, HW = 5, C = 4
        assertDoubled("gap [dx]", onceAndTwice([N * HW * C]) { d in globalAvgPoolBackward(d[0], r, N: N, HW: HW, C: C) })
    }

    func testDenseAndConvBackwardsAccumulate() {
        let N = 3, IN = 5, OUT = 4
        let x = randomArray(N * IN, seed: 130), w = randomArray(OUT * IN, seed: 131), r = randomArray(N * OUT, seed: 132)
        assertDoubled("dense [dx, dw, db]", onceAndTwice([N * IN, OUT * IN, OUT]) { d in
            denseBackward(d[0], d[1], d[2], r, x, w, N: N, IN: IN, OUT: OUT)
        }, relativeTolerance: 1e-6)
        let H = 4, W = 4, C = 3, OC = 5
        let cx = randomArray(2 * H * W * C, seed: 133), cw = randomArray(9 * C * OC, seed: 134, scale: 0.5)
        let cr = randomArray(2 * H * W * OC, seed: 135)
        for winograd in [true, false] {
            let ws = ConvWorkspace(); ws.winograd = winograd
            assertDoubled("conv(winograd: \(winograd)) [dx, dw, db]", onceAndTwice([cx.count, cw.count, OC]) { d in
                conv3x3Backward(d[0], d[1], d[2], cr, cx, cw, N: 2, H: H, W: W, C: C, OC: OC, workspace: ws)
            }, relativeTolerance: 1e-6)
        }
    }
}
