// The Winograd forward's GEMMs (so also the input gradient's): 16 or 36 per
// chunk of tiles, each small ([tiles, C] x [C, OC] with C, OC = 16..128) and
// strided (one transformed point of every tile); and im2col's for short K
// (block1.conv1, K = 27). OpenBLAS packs both operands on every
// call, which at these sizes costs as much as the arithmetic: measured on
// one core (Haswell kernels), [240, 32] x [32, 32] ran at 54 GFLOP/s in
// OpenBLAS and 87 here, [8, 128] x [128, 128] (one image, block 3) at 35
// against 51-72, [48, 128] x [128, 128] at 73 against 88. Here B is read in
// place (its rows are contiguous) and A is broadcast one element at a time,
// so nothing is packed: a 6 x 16 block of C lives in 12 vector registers
// while p runs over K, the register blocking of OpenBLAS's own kernels.
// The weight gradient's GEMMs (A transposed, K = tiles) stay in OpenBLAS:
// there its packing pays (lab bench, 2 threads: training 219 img/s with a
// transposed variant of this kernel there, 224 without; 241-245 against 247
// with point-major buffers, which make both operands contiguous).

// Private: a debug build compiles file by file, and a helper in another
// file would be a call in the innermost loop.
@inline(__always) private func load(_ p: UnsafePointer<Float>) -> V8 { UnsafeRawPointer(p).loadUnaligned(as: V8.self) }
@inline(__always) private func store(_ p: UnsafeMutablePointer<Float>, _ v: V8) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: V8.self)
}

/// C = A B, row-major, n a multiple of 8.
func smallGemm(
    m: Int, n: Int, k: Int,
    _ a: UnsafePointer<Float>, lda: Int,         // A [m, k]
    _ b: UnsafePointer<Float>, ldb: Int,         // B [k, n]
    _ c: UnsafeMutablePointer<Float>, ldc: Int   // C [m, n]
) {
    precondition(n % 8 == 0, "smallGemm needs n divisible by 8")
    var i = 0
    while i < m {
        // A block of fewer rows than its kernel's repeats its last row (valid
        // memory, the work of a full block) and stores only the rows it has:
        // the inner loops stay straight-line. 4-row blocks take the ends a
        // 6-row block would mostly waste: 8 rows as 4 + 4, not 6 + 2 (one
        // image's block 3 gives each worker 8 tiles).
        let left = m - i
        let four = left <= 4 || left == 7 || left == 8
        let rows = min(four ? 4 : 6, left)
        let r = Rows(rows, lda)
        var j = 0
        while j + 16 <= n {
            if four {
                kernel16(six: false, k: k, a + i * lda, r, b + j, ldb, c + i * ldc + j, ldc, rows)
            } else {
                kernel16(six: true, k: k, a + i * lda, r, b + j, ldb, c + i * ldc + j, ldc, rows)
            }
            j += 16
        }
        if j < n { kernel6x8(k: k, a + i * lda, r, b + j, ldb, c + i * ldc + j, ldc, rows) }
        i += rows
    }
}

/// Offsets of a block's rows 1...5 from its row 0.
private struct Rows {
    let r1, r2, r3, r4, r5: Int
    init(_ rows: Int, _ stride: Int) {
        func at(_ q: Int) -> Int { min(q, rows - 1) * stride }
        r1 = at(1); r2 = at(2); r3 = at(3); r4 = at(4); r5 = at(5)
    }
}

/// One block of 6 rows (`six`) or 4 by 16 columns. Always inlined with a
/// constant `six`, so each caller gets a straight-line loop.
@inline(__always)
private func kernel16(six: Bool, k: Int, _ a: UnsafePointer<Float>, _ r: Rows, _ b: UnsafePointer<Float>, _ ldb: Int,
                      _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ rows: Int) {
    let r1 = r.r1, r2 = r.r2, r3 = r.r3, r4 = r.r4, r5 = r.r5
    var c00 = V8(), c01 = V8(), c10 = V8(), c11 = V8(), c20 = V8(), c21 = V8()
    var c30 = V8(), c31 = V8(), c40 = V8(), c41 = V8(), c50 = V8(), c51 = V8()
    var ap = a, bp = b
    for _ in 0..<k {
        let b0 = load(bp), b1 = load(bp + 8)
        var x = V8(repeating: ap[0]); c00 = c00.addingProduct(x, b0); c01 = c01.addingProduct(x, b1)
        x = V8(repeating: ap[r1]); c10 = c10.addingProduct(x, b0); c11 = c11.addingProduct(x, b1)
        x = V8(repeating: ap[r2]); c20 = c20.addingProduct(x, b0); c21 = c21.addingProduct(x, b1)
        x = V8(repeating: ap[r3]); c30 = c30.addingProduct(x, b0); c31 = c31.addingProduct(x, b1)
        if six {
            x = V8(repeating: ap[r4]); c40 = c40.addingProduct(x, b0); c41 = c41.addingProduct(x, b1)
            x = V8(repeating: ap[r5]); c50 = c50.addingProduct(x, b0); c51 = c51.addingProduct(x, b1)
        }
        ap += 1; bp += ldb
    }
    @inline(__always) func put(_ q: Int, _ v0: V8, _ v1: V8) {
        if q < rows { store(c + q * ldc, v0); store(c + q * ldc + 8, v1) }
    }
    put(0, c00, c01); put(1, c10, c11); put(2, c20, c21); put(3, c30, c31)
    if six { put(4, c40, c41); put(5, c50, c51) }
}

/// The last 8 columns when n is not a multiple of 16.
@inline(__always)
private func kernel6x8(k: Int, _ a: UnsafePointer<Float>, _ r: Rows, _ b: UnsafePointer<Float>, _ ldb: Int,
                       _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ rows: Int) {
    let r1 = r.r1, r2 = r.r2, r3 = r.r3, r4 = r.r4, r5 = r.r5
    var c0 = V8(), c1 = V8(), c2 = V8(), c3 = V8(), c4 = V8(), c5 = V8()
    var ap = a, bp = b
    for _ in 0..<k {
        let b0 = load(bp)
        c0 = c0.addingProduct(V8(repeating: ap[0]), b0); c1 = c1.addingProduct(V8(repeating: ap[r1]), b0)
        c2 = c2.addingProduct(V8(repeating: ap[r2]), b0); c3 = c3.addingProduct(V8(repeating: ap[r3]), b0)
        c4 = c4.addingProduct(V8(repeating: ap[r4]), b0); c5 = c5.addingProduct(V8(repeating: ap[r5]), b0)
        ap += 1; bp += ldb
    }
    @inline(__always) func put(_ q: Int, _ v: V8) { if q < rows { store(c + q * ldc, v) } }
    put(0, c0); put(1, c1); put(2, c2); put(3, c3); put(4, c4); put(5, c5)
}
