// 2x2 max-pool, stride 2, NHWC; H and W even. Backward finds the winner
// again from the input instead of storing indices: it is one more read of
// data the backward of the layer below reads anyway.

public func maxPool2x2Forward(
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
                for c in 0..<C { d[c] = max(max(a[c], a[c + C]), max(b[c], b[c + C])) }
            }
        }
    }
}

/// dinp is written, zeros included; ties go to the first of (top-left,
/// top-right, bottom-left, bottom-right), one gradient path, like PyTorch.
public func maxPool2x2Backward(
    _ dinp: UnsafeMutablePointer<Float>, // [N, H, W, C] written
    _ dout: UnsafePointer<Float>,        // [N, H/2, W/2, C]
    inp: UnsafePointer<Float>,           // [N, H, W, C]
    out: UnsafePointer<Float>,           // [N, H/2, W/2, C]
    N: Int, H: Int, W: Int, C: Int, workers: Int = 1
) {
    let OW = W / 2
    forRowChunks(N * (H / 2), workers: rowWorkers(N * (H / 2), rowCost: 2 * W * C, workers: workers)) { _, q0, q1 in
        for q in q0..<q1 {
            let i0 = 2 * q * W * C, i1 = i0 + W * C
            let ob = q * OW * C
            for ox in 0..<OW {
                let a = i0 + 2 * ox * C, b = i1 + 2 * ox * C, o = ob + ox * C
                for c in 0..<C {
                    // All loads first, then arithmetic masks (first match wins):
                    // no branches, so the loop vectorizes.
                    let m = out[o + c], g = dout[o + c]
                    let v0 = inp[a + c], v1 = inp[a + C + c], v2 = inp[b + c]
                    let e0: Float = v0 == m ? 1 : 0
                    let e1: Float = (v1 == m ? 1 : 0) * (1 - e0)
                    let e2: Float = (v2 == m ? 1 : 0) * (1 - e0 - e1)
                    let e3: Float = 1 - e0 - e1 - e2
                    dinp[a + c] = g * e0
                    dinp[a + C + c] = g * e1
                    dinp[b + c] = g * e2
                    dinp[b + C + c] = g * e3
                }
            }
        }
    }
}
