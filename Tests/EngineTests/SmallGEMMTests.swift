import XCTest
@testable import Engine

/// smallGemm against OpenBLAS's sgemm (the independent reference) over
/// row counts that leave every remainder of its 6-row blocks, column counts
/// with and without an 8-column tail, and strided A and C (the Winograd
/// layout: one point of every tile).
final class SmallGEMMTests: XCTestCase {
    override func setUp() { BLAS.setThreads(1) }

    func testMatchesOpenBLAS() {
        for m in [1, 2, 4, 5, 6, 7, 8, 11, 12, 13, 48] {
            for n in [8, 16, 24, 40, 128] {
                for k in [1, 3, 32] {
                    let lda = k + 5, ldc = n + 8  // strided rows, as in the Winograd buffers
                    let a = randomArray(m * lda, seed: UInt64(m * 100 + k)), b = randomArray(k * n, seed: UInt64(n * 7 + k))
                    var ref = [Float](repeating: 0, count: m * ldc)
                    var got = [Float](repeating: .nan, count: m * ldc)
                    gemm(transA: false, transB: false, m: m, n: n, k: k, a, lda: lda, b, ldb: n, beta: 0, &ref, ldc: ldc)
                    smallGemm(m: m, n: n, k: k, a, lda: lda, b, ldb: n, &got, ldc: ldc)
                    for i in 0..<m {
                        for j in 0..<n {
                            XCTAssertEqual(got[i * ldc + j], ref[i * ldc + j], accuracy: 1e-5 * Float(k),
                                           "m \(m) n \(n) k \(k) at (\(i), \(j))")
                        }
                        for j in n..<ldc { XCTAssertTrue(got[i * ldc + j].isNaN, "m \(m) n \(n) k \(k): wrote past column n") }
                    }
                }
            }
        }
    }
}
