// Antialiased resize: a separable triangle (bilinear) filter whose support
// widens with the downscale factor, as PIL's BILINEAR and torchvision's
// antialias=True do. Plain bilinear sampling from 100 to 64 pixels would
// alias the high frequencies of the face texture.

/// Filter taps for one axis: out[i] = sum_k w[i][k] * in[start[i] + k].
struct ResizeTaps {
    var start: [Int]
    var weights: [[Float]]

    init(input: Int, output: Int) {
        let scale = Double(input) / Double(output)
        let support = max(1, scale)   // triangle half-width in input pixels
        start = []; weights = []
        for i in 0..<output {
            let center = (Double(i) + 0.5) * scale
            let lo = max(0, Int((center - support).rounded(.down)))
            let hi = min(input, Int((center + support).rounded(.up)))
            var w = [Float]()
            var total = 0.0
            for j in lo..<hi {
                let x = (Double(j) + 0.5 - center) / support
                let v = max(0, 1 - abs(x))
                w.append(Float(v)); total += v
            }
            start.append(lo)
            weights.append(w.map { $0 / Float(total) })
        }
    }
}

public extension RGBImage {
    /// Resized to width x height with antialiasing.
    func resized(width ow: Int, height oh: Int) -> RGBImage {
        if ow == width && oh == height { return self }
        let tx = ResizeTaps(input: width, output: ow), ty = ResizeTaps(input: height, output: oh)
        // Horizontal pass into floats [height, ow, 3], then vertical.
        var tmp = [Float](repeating: 0, count: height * ow * 3)
        pixels.withUnsafeBufferPointer { src in
            for y in 0..<height {
                for x in 0..<ow {
                    var r: Float = 0, g: Float = 0, b: Float = 0
                    let w = tx.weights[x], s = tx.start[x]
                    for k in 0..<w.count {
                        let p = (y * width + s + k) * 3
                        r += w[k] * Float(src[p]); g += w[k] * Float(src[p + 1]); b += w[k] * Float(src[p + 2])
                    }
                    let o = (y * ow + x) * 3
                    tmp[o] = r; tmp[o + 1] = g; tmp[o + 2] = b
                }
            }
        }
        var out = [UInt8](repeating: 0, count: oh * ow * 3)
        for y in 0..<oh {
            let w = ty.weights[y], s = ty.start[y]
            for x in 0..<(ow * 3) {
                var v: Float = 0
                for k in 0..<w.count { v += w[k] * tmp[(s + k) * ow * 3 + x] }
                out[y * ow * 3 + x] = UInt8(max(0, min(255, v.rounded())))
            }
        }
        return RGBImage(width: ow, height: oh, pixels: out)
    }
}
