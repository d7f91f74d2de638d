// Squeeze-and-excitation (Hu et al. 2018) on a block's last convolution,
// after its batch norm: y * sigmoid(fc2(relu(fc1(gap(y))))) per image and
// channel. Its output pass, with the shortcut and the activation, is
// gatedActivationForward (Activation.swift); here are the gate and the
// backward. The MLP (channelMLP*) is CBAM's too.
// R = max(1, C / attention_reduction) hidden units; P = H*W pixels.

/// out = fc2(relu(fc1(inp))) for B rows; fc weights in PyTorch layout.
func channelMLPForward(
    _ out: UnsafeMutablePointer<Float>,     // [B, C]
    hidden: UnsafeMutablePointer<Float>,    // [B, R] written: relu(fc1(inp))
    _ inp: UnsafePointer<Float>,            // [B, C]
    w1: UnsafePointer<Float>, b1: UnsafePointer<Float>,   // [R, C], [R]
    w2: UnsafePointer<Float>, b2: UnsafePointer<Float>,   // [C, R], [C]
    B: Int, C: Int, R: Int
) {
    denseForward(hidden, inp, w1, b1, N: B, IN: C, OUT: R)
    activationForward(.relu, hidden, hidden, count: B * R)
    denseForward(out, hidden, w2, b2, N: B, IN: R, OUT: C)
}

/// dinp is written (dout is consumed: it is the scratch of the relu's
/// gradient only through dhidden); fc gradients accumulate.
func channelMLPBackward(
    _ dinp: UnsafeMutablePointer<Float>,    // [B, C] written
    dhidden: UnsafeMutablePointer<Float>,   // [B, R] scratch
    dw1: UnsafeMutablePointer<Float>, db1: UnsafeMutablePointer<Float>,   // [R, C], [R] accumulated
    dw2: UnsafeMutablePointer<Float>, db2: UnsafeMutablePointer<Float>,   // [C, R], [C] accumulated
    _ dout: UnsafePointer<Float>,           // [B, C]
    _ inp: UnsafePointer<Float>,            // [B, C]
    hidden: UnsafePointer<Float>,           // [B, R]
    w1: UnsafePointer<Float>, w2: UnsafePointer<Float>,
    B: Int, C: Int, R: Int
) {
    denseBackward(dhidden, dw2, db2, dout, hidden, w2, N: B, IN: R, OUT: C)
    activationBackward(.relu, dhidden, dhidden, inp: hidden, out: hidden, count: B * R)
    denseBackward(dinp, dw1, db1, dhidden, inp, w1, N: B, IN: C, OUT: R)
}

/// gate = sigmoid(fc2(relu(fc1(mean over pixels of y)))).
public func squeezeExcitationGateForward(
    gate: UnsafeMutablePointer<Float>,      // [N, C] written
    pooled: UnsafeMutablePointer<Float>,    // [N, C] written: mean of y over pixels
    hidden: UnsafeMutablePointer<Float>,    // [N, R] written
    _ y: UnsafePointer<Float>,              // [N, P, C]
    w1: UnsafePointer<Float>, b1: UnsafePointer<Float>,   // [R, C], [R]
    w2: UnsafePointer<Float>, b2: UnsafePointer<Float>,   // [C, R], [C]
    N: Int, P: Int, C: Int, R: Int, workers: Int = 1
) {
    globalAvgPoolForward(pooled, y, N: N, HW: P, C: C, workers: workers)
    channelMLPForward(gate, hidden: hidden, pooled, w1: w1, b1: b1, w2: w2, b2: b2, B: N, C: C, R: R)
    activationForward(.sigmoid, gate, gate, count: N * C)
}

/// Backward of out = y * gate + s (the activation's gradient already in
/// dv): dy and the shortcut's share are written, the fc gradients accumulate.
/// Two passes over the activations, each split by images: dgate = sum over
/// pixels of dv * y (with dv copied to dshortcut on the way), then
/// dy = dv * gate + d(mean)/P.
public func squeezeExcitationBackward(
    _ dy: UnsafeMutablePointer<Float>,              // [N, P, C] written
    dshortcut: UnsafeMutablePointer<Float>?,        // [N, P, C] written (= dv), or nil
    dw1: UnsafeMutablePointer<Float>, db1: UnsafeMutablePointer<Float>,   // [R, C], [R] accumulated
    dw2: UnsafeMutablePointer<Float>, db2: UnsafeMutablePointer<Float>,   // [C, R], [C] accumulated
    _ dv: UnsafePointer<Float>,                     // [N, P, C] gradient of y * gate + s
    _ y: UnsafePointer<Float>,                      // [N, P, C]
    gate: UnsafePointer<Float>, pooled: UnsafePointer<Float>,   // [N, C]
    hidden: UnsafePointer<Float>,                   // [N, R]
    w1: UnsafePointer<Float>, w2: UnsafePointer<Float>,
    N: Int, P: Int, C: Int, R: Int, workers: Int = 1
) {
    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * N * C + N * R)
    defer { scratch.deallocate() }
    let dgate = scratch, dpooled = scratch + N * C, dhidden = dpooled + N * C
    let w = rowWorkers(N, rowCost: P * C, workers: workers)
    forRowChunks(N, workers: w) { _, n0, n1 in
        for n in n0..<n1 {
            let g = dgate + n * C
            for c in 0..<C { g[c] = 0 }
            for p in 0..<P {
                let i = (n * P + p) * C, d = dv + i, x = y + i
                for c in 0..<C { g[c] += d[c] * x[c] }
                dshortcut.map { ($0 + i).update(from: d, count: C) }
            }
        }
    }
    // Through the sigmoid: dgate * gate * (1 - gate).
    activationBackward(.sigmoid, dgate, dgate, inp: gate, out: gate, count: N * C)
    channelMLPBackward(dpooled, dhidden: dhidden, dw1: dw1, db1: db1, dw2: dw2, db2: db2, dgate, pooled, hidden: hidden,
                       w1: w1, w2: w2, B: N, C: C, R: R)
    let invP = 1 / Float(P)
    forRowChunks(N, workers: w) { _, n0, n1 in
        for n in n0..<n1 {
            let g = gate + n * C, dp = dpooled + n * C
            for p in 0..<P {
                let i = (n * P + p) * C, d = dv + i, o = dy + i
                for c in 0..<C { o[c] = d[c] * g[c] + dp[c] * invP }
            }
        }
    }
}

extension SqueezeExcitationLayer {
    /// out = act(y * gate + shortcut), gate from y (its buffers keep what backward reads).
    func forward(
        _ out: UnsafeMutablePointer<Float>,             // [N, H, W, C]
        preactivation: UnsafeMutablePointer<Float>?,    // [N, H, W, C] act's input, kept for SiLU, or nil
        _ y: UnsafePointer<Float>,                      // [N, H, W, C] the last convolution's batch-normed output
        shortcut: UnsafePointer<Float>?,                // [N, H, W, C] or nil
        activation: Nonlinearity, N: Int, workers: Int
    ) {
        squeezeExcitationGateForward(gate: gate.data, pooled: pooled.data, hidden: hidden.data, y,
                                     w1: fc1w.value.data, b1: fc1b.value.data, w2: fc2w.value.data, b2: fc2b.value.data,
                                     N: N, P: H * W, C: C, R: R, workers: workers)
        gatedActivationForward(activation, out, preactivation: preactivation, y, channelGate: gate.data, spatialGate: nil,
                               residual: shortcut, N: N, P: H * W, C: C, workers: workers)
    }

    /// From dv, the gradient of y * gate + shortcut (act's gradient already
    /// applied): dy and the shortcut's share written, fc gradients accumulated.
    func backward(
        _ dy: UnsafeMutablePointer<Float>,              // [N, H, W, C] written
        dshortcut: UnsafeMutablePointer<Float>?,        // [N, H, W, C] written, or nil
        _ dv: UnsafePointer<Float>,                     // [N, H, W, C]
        _ y: UnsafePointer<Float>,                      // [N, H, W, C]
        N: Int, workers: Int
    ) {
        squeezeExcitationBackward(dy, dshortcut: dshortcut, dw1: fc1w.grad.data, db1: fc1b.grad.data, dw2: fc2w.grad.data,
                                  db2: fc2b.grad.data, dv, y, gate: gate.data, pooled: pooled.data, hidden: hidden.data,
                                  w1: fc1w.value.data, w2: fc2w.value.data, N: N, P: H * W, C: C, R: R, workers: workers)
    }
}
