// Class activation maps from a convolution's activations A and the gradient
// G = dS/dA of the target class score S (Selvaraju et al. 2017;
// Chattopadhyay et al. 2018). Layouts: A, G are [P = h*w, C] (NHWC, one image).

public enum CAM {
    /// Grad-CAM: alpha_c = mean_p G[p, c]; map = relu(sum_c alpha_c A[:, c]).
    public static func gradCAM(
        _ A: UnsafePointer<Float>,  // [P, C]
        _ G: UnsafePointer<Float>,  // [P, C]
        P: Int, C: Int
    ) -> (weights: [Float], map: [Float]) {
        var alpha = [Float](repeating: 0, count: C)
        for p in 0..<P { for c in 0..<C { alpha[c] += G[p * C + c] } }
        for c in 0..<C { alpha[c] /= Float(P) }
        return (alpha, combine(A, alpha, P: P, C: C))
    }

    /// Grad-CAM++ (Eq. 19 with the exponential-score simplification used by
    /// the authors' code): a[p,c] = G^2 / (2 G^2 + sum_p' A[p',c] * G^3),
    /// zero where the gradient (or the denominator) is zero;
    /// w_c = sum_p a[p,c] * relu(G[p,c]); map = relu(sum_c w_c A[:, c]).
    public static func gradCAMPlusPlus(
        _ A: UnsafePointer<Float>,  // [P, C]
        _ G: UnsafePointer<Float>,  // [P, C]
        P: Int, C: Int
    ) -> (weights: [Float], map: [Float]) {
        var sumA = [Float](repeating: 0, count: C)
        for p in 0..<P { for c in 0..<C { sumA[c] += A[p * C + c] } }
        var w = [Float](repeating: 0, count: C)
        for p in 0..<P {
            for c in 0..<C {
                let g = G[p * C + c]
                let g2 = g * g
                let denom = 2 * g2 + sumA[c] * g2 * g
                let a: Float = (g != 0 && denom != 0) ? g2 / denom : 0
                w[c] += a * max(0, g)
            }
        }
        return (w, combine(A, w, P: P, C: C))
    }

    static func combine(_ A: UnsafePointer<Float>, _ w: [Float], P: Int, C: Int) -> [Float] {
        var map = [Float](repeating: 0, count: P)
        for p in 0..<P {
            var s: Float = 0
            for c in 0..<C { s += w[c] * A[p * C + c] }
            map[p] = max(0, s)
        }
        return map
    }

    /// Bilinear upsampling [h, w] -> [S, S], half-pixel centres
    /// (PyTorch's interpolate(mode="bilinear", align_corners=False)).
    public static func upsample(_ m: [Float], h: Int, w: Int, to S: Int) -> [Float] {
        var out = [Float](repeating: 0, count: S * S)
        let sy = Float(h) / Float(S), sx = Float(w) / Float(S)
        for y in 0..<S {
            let fy = max(0, (Float(y) + 0.5) * sy - 0.5)
            let y0 = min(Int(fy), h - 1), y1 = min(y0 + 1, h - 1), ay = fy - Float(y0)
            for x in 0..<S {
                let fx = max(0, (Float(x) + 0.5) * sx - 0.5)
                let x0 = min(Int(fx), w - 1), x1 = min(x0 + 1, w - 1), ax = fx - Float(x0)
                let top = m[y0 * w + x0] * (1 - ax) + m[y0 * w + x1] * ax
                let bot = m[y1 * w + x0] * (1 - ax) + m[y1 * w + x1] * ax
                out[y * S + x] = top * (1 - ay) + bot * ay
            }
        }
        return out
    }

    /// Scaled to [0, 1] by the maximum; an all-zero (or non-finite) map stays zero.
    public static func normalized(_ m: [Float]) -> [Float] {
        let mx = m.reduce(0) { $1.isFinite ? max($0, $1) : $0 }
        guard mx > 0 else { return [Float](repeating: 0, count: m.count) }
        return m.map { $0.isFinite ? max(0, $0) / mx : 0 }
    }
}
