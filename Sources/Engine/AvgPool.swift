// 2x2 average pool, stride 2, NHWC; H and W even (ModelConfig.pool avg).
// As PyTorch's avg_pool2d: the four summed row by row, then divided by 4.

public func avgPool2x2Forward(
    _ out: UnsafeMutablePointer<Float>,  // [N, H/2, W/2, C]
    _ inp: UnsafePointer<Float>,         // [N, H, W, C]
    N: Int, H: Int, W: Int, C: Int, workers: Int = 1
) {
    let OW = W / 2
    // Output rows (n, oy) are independent: contiguous runs of them per worker.
    forRowChunks(N * (H / 2), workers: rowWorkers(N * (H / 2), rowCost: 2 * W * C, workers: workers)) { _, q0, q1 in
        for q in q0..<q1 {
            let r0 = inp + 2 * q * W * C, r1 = r0 + W * C
            let o = out + q * OW * C
            for ox in 0..<OW {
                let a = r0 + 2 * ox * C, b = r1 + 2 * ox * C, d = o + ox * C
                for c in 0..<C { d[c] = (a[c] + a[c + C] + b[c] + b[c + C]) / 4 }
            }
        }
    }
}

/// dinp is written: a quarter of the output gradient to each of the four.
public func avgPool2x2Backward(
    _ dinp: UnsafeMutablePointer<Float>, // [N, H, W, C] written
    _ dout: UnsafePointer<Float>,        // [N, H/2, W/2, C]
    N: Int, H: Int, W: Int, C: Int, workers: Int = 1
) {
    let OW = W / 2
    forRowChunks(N * (H / 2), workers: rowWorkers(N * (H / 2), rowCost: 2 * W * C, workers: workers)) { _, q0, q1 in
        for q in q0..<q1 {
            let r0 = dinp + 2 * q * W * C, r1 = r0 + W * C
            let o = dout + q * OW * C
            for ox in 0..<OW {
                let a = r0 + 2 * ox * C, b = r1 + 2 * ox * C, d = o + ox * C
                for c in 0..<C {
                    let g = d[c] / 4
                    a[c] = g; a[c + C] = g; b[c] = g; b[c + C] = g
                }
            }
        }
    }
}
