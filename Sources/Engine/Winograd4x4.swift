// The transforms of Winograd F(4x4, 3x3) (Lavin & Gray 2016, interpolation
// points 0, 1, -1, 2, -2, inf): 6x6 input tiles, 4x4 output tiles, 36
// products per tile and channel pair where F(2x2) needs 64 for the same 16
// outputs. The drivers are Winograd.swift's; these fill V, read P, fill M.
//
//   B^T = [4  0 -5  0  1  0]     G = [ 1/4     0     0 ]     A^T = [1 1  1 1  1 0]
//         [0 -4 -4  1  1  0]         [-1/6  -1/6  -1/6 ]           [0 1 -1 2 -2 0]
//         [0  4 -4 -1  1  0]         [-1/6   1/6  -1/6 ]           [0 1  1 4  4 0]
//         [0 -2 -1  2  1  0]         [1/24  1/12   1/6 ]           [0 1 -1 8 -8 1]
//         [0  2 -1 -2  1  0]         [1/24 -1/12   1/6 ]
//         [0  4  0 -5  0  1]         [ 0     0     1   ]
//
// Each 2-D transform is the 1-D one over columns, then over rows, through
// WinogradScratch.z; every loop runs over 8 channels at a time.

let winogradG4: [[Float]] = [
    [1.0 / 4, 0, 0],
    [-1.0 / 6, -1.0 / 6, -1.0 / 6],
    [-1.0 / 6, 1.0 / 6, -1.0 / 6],
    [1.0 / 24, 1.0 / 12, 1.0 / 6],
    [1.0 / 24, -1.0 / 12, 1.0 / 6],
    [0, 0, 1],
]

typealias V8 = SIMD8<Float>

/// B^T d for one column d of 6.
@inline(__always)
private func bt6(_ d0: V8, _ d1: V8, _ d2: V8, _ d3: V8, _ d4: V8, _ d5: V8) -> (V8, V8, V8, V8, V8, V8) {
    let f4: V8 = V8(repeating: 4), f5: V8 = V8(repeating: 5), f2: V8 = V8(repeating: 2)
    return (f4 * d0 - f5 * d2 + d4,
            d3 + d4 - f4 * (d1 + d2),
            f4 * (d1 - d2) + d4 - d3,
            f2 * (d3 - d1) + d4 - d2,
            f2 * (d1 - d3) + d4 - d2,
            f4 * d1 - f5 * d3 + d5)
}

/// A^T p for one column p of 6.
@inline(__always)
private func at6(_ p0: V8, _ p1: V8, _ p2: V8, _ p3: V8, _ p4: V8, _ p5: V8) -> (V8, V8, V8, V8) {
    let s12 = p1 + p2, d12 = p1 - p2, s34 = p3 + p4, d34 = p3 - p4
    return (p0 + s12 + s34, d12 + V8(repeating: 2) * d34, s12 + V8(repeating: 4) * s34, d12 + V8(repeating: 8) * d34 + p5)
}

/// A y for one column y of 4 (A = (A^T)^T, 6x4): the output gradient lifted.
@inline(__always)
private func a6(_ y0: V8, _ y1: V8, _ y2: V8, _ y3: V8) -> (V8, V8, V8, V8, V8, V8) {
    let e = y0 + y2, o = y1 + y3, e4 = y0 + V8(repeating: 4) * y2, o8 = V8(repeating: 2) * y1 + V8(repeating: 8) * y3
    return (y0, e + o, e - o, e4 + o8, e4 - o8, y3)
}

@inline(__always)
private func load(_ p: UnsafePointer<Float>) -> V8 { UnsafeRawPointer(p).loadUnaligned(as: V8.self) }
@inline(__always)
private func store(_ p: UnsafeMutablePointer<Float>, _ v: V8) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V8.self) }

/// body(t, n, y, x) for every 4x4 output tile in tile rows r0..<r1
/// (r = n * H/4 + ty): t its index in the chunk, (y, x) its top-left pixel
/// in image n.
@inline(__always)
private func forEachTile(_ r0: Int, _ r1: Int, H: Int, W: Int, _ body: (_ t: Int, _ n: Int, _ y: Int, _ x: Int) -> Void) {
    let TW = W / 4
    for r in r0..<r1 {
        let n = r / (H / 4), ty = r % (H / 4)
        for tx in 0..<TW { body((r - r0) * TW + tx, n, 4 * ty, 4 * tx) }
    }
}

/// V[t, k, c] = (B^T d B)[k], k = 6 i + j, for the 6x6 input tile d of every
/// 4x4 output tile t in tile rows r0..<r1 (r = n * H/4 + ty). Out-of-image
/// taps read `zero`, so the channel loop has no branches.
func winograd4InputTransform(
    _ V: UnsafeMutablePointer<Float>,     // [T, 36, C] written
    _ inp: UnsafePointer<Float>,          // [N, H, W, C]
    r0: Int, r1: Int, H: Int, W: Int, C: Int,
    zero: UnsafeMutablePointer<Float>,    // [C] zeros
    scratch: WinogradScratch
) {
    let st = C, q = scratch.taps, z = scratch.z
    forEachTile(r0, r1, H: H, W: W) { t, n, y, x in
        winogradTaps(q, inp, zero: zero, size: 6, n: n, y0: y - 1, x0: x - 1, H: H, W: W, C: C)
        let o = V + t * 36 * C
        var c = 0
        while c < C {
            for j in 0..<6 {
                let v = bt6(load(q[j] + c), load(q[6 + j] + c), load(q[12 + j] + c),
                            load(q[18 + j] + c), load(q[24 + j] + c), load(q[30 + j] + c))
                z[j] = v.0; z[6 + j] = v.1; z[12 + j] = v.2; z[18 + j] = v.3; z[24 + j] = v.4; z[30 + j] = v.5
            }
            for i in 0..<6 {
                let v = bt6(z[6 * i], z[6 * i + 1], z[6 * i + 2], z[6 * i + 3], z[6 * i + 4], z[6 * i + 5])
                let row = o + 6 * i * st + c
                store(row, v.0); store(row + st, v.1); store(row + 2 * st, v.2)
                store(row + 3 * st, v.3); store(row + 4 * st, v.4); store(row + 5 * st, v.5)
            }
            c += 8
        }
    }
}

/// Y = A^T P A for every 4x4 tile in tile rows r0..<r1, through the
/// epilogue into out.
func winograd4OutputTransform(
    _ out: UnsafeMutablePointer<Float>,   // [N, H, W, OC]
    _ P: UnsafePointer<Float>,            // [T, 36, OC]
    _ epilogue: WinogradEpilogue,
    r0: Int, r1: Int, H: Int, W: Int, OC: Int,
    scratch: WinogradScratch
) {
    let s = OC, z = scratch.z
    forEachTile(r0, r1, H: H, W: W) { t, n, y, x in
        let p = P + t * 36 * OC
        let y0 = out + ((n * H + y) * W + x) * OC
        var o = 0
        while o < OC {
            for j in 0..<6 {
                let v = at6(load(p + j * s + o), load(p + (6 + j) * s + o), load(p + (12 + j) * s + o),
                            load(p + (18 + j) * s + o), load(p + (24 + j) * s + o), load(p + (30 + j) * s + o))
                z[j] = v.0; z[6 + j] = v.1; z[12 + j] = v.2; z[18 + j] = v.3
            }
            let b = epilogue.bias.map { load($0 + o) } ?? V8(repeating: 0)
            for i in 0..<4 {
                let v = at6(z[6 * i], z[6 * i + 1], z[6 * i + 2], z[6 * i + 3], z[6 * i + 4], z[6 * i + 5])
                let row = y0 + i * W * OC + o
                @inline(__always) func put(_ dst: UnsafeMutablePointer<Float>, _ v: V8) {
                    var y = v + b
                    if epilogue.accumulate { y += load(dst) }
                    if let res = epilogue.residual { y += load(res + (dst - out)) }
                    store(dst, epilogue.relu ? y.replacing(with: 0, where: y .< 0) : y)
                }
                put(row, v.0); put(row + OC, v.1); put(row + 2 * OC, v.2); put(row + 3 * OC, v.3)
            }
            o += 8
        }
    }
}

/// M[t, k, oc] = (A dy A^T)[k] for the 4x4 output-gradient tile dy of every
/// tile t in tile rows r0..<r1.
func winograd4OutputGradientTransform(
    _ M: UnsafeMutablePointer<Float>,     // [T, 36, OC] written
    _ dout: UnsafePointer<Float>,         // [N, H, W, OC]
    r0: Int, r1: Int, H: Int, W: Int, OC: Int,
    scratch: WinogradScratch
) {
    let s = OC, z = scratch.z
    forEachTile(r0, r1, H: H, W: W) { t, n, y, x in
        let m = M + t * 36 * OC
        let y0 = dout + ((n * H + y) * W + x) * OC
        let rs = W * OC
        var o = 0
        while o < OC {
            // Columns: Z = A dy (6x4); then rows: M = Z A^T (6x6).
            for j in 0..<4 {
                let col = y0 + j * OC + o
                let v = a6(load(col), load(col + rs), load(col + 2 * rs), load(col + 3 * rs))
                z[j] = v.0; z[4 + j] = v.1; z[8 + j] = v.2; z[12 + j] = v.3; z[16 + j] = v.4; z[20 + j] = v.5
            }
            for i in 0..<6 {
                let v = a6(z[4 * i], z[4 * i + 1], z[4 * i + 2], z[4 * i + 3])
                let row = m + 6 * i * s + o
                store(row, v.0); store(row + s, v.1); store(row + 2 * s, v.2)
                store(row + 3 * s, v.3); store(row + 4 * s, v.4); store(row + 5 * s, v.5)
            }
            o += 8
        }
    }
}
