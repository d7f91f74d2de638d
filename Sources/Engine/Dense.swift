// Fully connected layer, PyTorch layout: out = inp * weight^T + bias.

public func denseForward(
    _ out: UnsafeMutablePointer<Float>,  // [N, OUT]
    _ inp: UnsafePointer<Float>,         // [N, IN]
    _ weight: UnsafePointer<Float>,      // [OUT, IN]
    _ bias: UnsafePointer<Float>,        // [OUT]
    N: Int, IN: Int, OUT: Int
) {
    for n in 0..<N { (out + n * OUT).update(from: bias, count: OUT) }
    gemm(transA: false, transB: true, m: N, n: OUT, k: IN,
         inp, lda: IN, weight, ldb: IN, beta: 1, out, ldc: OUT)
}

public func denseBackward(
    _ dinp: UnsafeMutablePointer<Float>,   // [N, IN] written
    _ dweight: UnsafeMutablePointer<Float>,// [OUT, IN] accumulated
    _ dbias: UnsafeMutablePointer<Float>,  // [OUT] accumulated
    _ dout: UnsafePointer<Float>,          // [N, OUT]
    _ inp: UnsafePointer<Float>,           // [N, IN]
    _ weight: UnsafePointer<Float>,        // [OUT, IN]
    N: Int, IN: Int, OUT: Int
) {
    gemm(transA: true, transB: false, m: OUT, n: IN, k: N,
         dout, lda: OUT, inp, ldb: IN, beta: 1, dweight, ldc: IN)
    for n in 0..<N {
        let d = dout + n * OUT
        for o in 0..<OUT { dbias[o] += d[o] }
    }
    gemm(transA: false, transB: false, m: N, n: IN, k: OUT,
         dout, lda: OUT, weight, ldb: IN, beta: 0, dinp, ldc: IN)
}
