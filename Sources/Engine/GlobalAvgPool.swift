// Global average pool: [N, H, W, C] -> [N, C]. Images are independent:
// contiguous runs of them per worker.

public func globalAvgPoolForward(
    _ out: UnsafeMutablePointer<Float>,  // [N, C]
    _ inp: UnsafePointer<Float>,         // [N, H, W, C]
    N: Int, HW: Int, C: Int, workers: Int = 1
) {
    let s = 1 / Float(HW)
    forRowChunks(N, workers: rowWorkers(N, rowCost: HW * C, workers: workers)) { _, n0, n1 in
        for n in n0..<n1 {
            let o = out + n * C
            for c in 0..<C { o[c] = 0 }
            for p in 0..<HW {
                let i = inp + (n * HW + p) * C
                for c in 0..<C { o[c] += i[c] }
            }
            for c in 0..<C { o[c] *= s }
        }
    }
}

public func globalAvgPoolBackward(
    _ dinp: UnsafeMutablePointer<Float>, // [N, H, W, C] written
    _ dout: UnsafePointer<Float>,        // [N, C]
    N: Int, HW: Int, C: Int
) {
    let s = 1 / Float(HW)
    for n in 0..<N {
        let d = dout + n * C
        for p in 0..<HW {
            let i = dinp + (n * HW + p) * C
            for c in 0..<C { i[c] = d[c] * s }
        }
    }
}
