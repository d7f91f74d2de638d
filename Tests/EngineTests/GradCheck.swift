import XCTest
@testable import Engine
import LabRandom

/// Random values in [-1, 1) from a fixed seed.
func randomArray(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var rng = RNG(seed: seed)
    return (0..<n).map { _ in rng.uniform(-1, 1) * scale }
}

/// Central finite differences of a scalar function, in Double, against an
/// analytic gradient. Checks `samples` coordinates (all when nil).
/// A coordinate passes when |a - n| <= atol + rtol * max(|a|, |n|).
func assertGradient(
    _ label: String, x: inout [Float], analytic: [Float], samples: Int? = nil,
    eps: Float = 1e-2, rtol: Double = 2e-2, atol: Double = 2e-3,
    file: StaticString = #filePath, line: UInt = #line,
    _ f: ([Float]) -> Double
) {
    XCTAssertEqual(x.count, analytic.count, "\(label): gradient size", file: file, line: line)
    var indices = Array(0..<x.count)
    if let samples, samples < x.count {
        var rng = RNG(seed: UInt64(x.count))
        indices.shuffle(using: &rng)
        indices = Array(indices.prefix(samples))
    }
    var worst = 0.0, failures = 0
    for i in indices {
        let saved = x[i]
        x[i] = saved + eps; let fp = f(x)
        x[i] = saved - eps; let fm = f(x)
        x[i] = saved
        let numeric = (fp - fm) / (2 * Double(eps))
        let a = Double(analytic[i])
        let err = abs(a - numeric)
        let bound = atol + rtol * max(abs(a), abs(numeric))
        worst = max(worst, err / bound)
        if err > bound {
            failures += 1
            if failures <= 3 {
                XCTFail("\(label)[\(i)]: analytic \(a) vs numeric \(numeric)", file: file, line: line)
            }
        }
    }
    XCTAssertEqual(failures, 0, "\(label): \(failures) of \(indices.count) coordinates off (worst err/bound \(worst))", file: file, line: line)
}

/// sum(out * r) in Double: the scalar every layer check differentiates.
func dot(_ a: UnsafePointer<Float>, _ b: [Float]) -> Double {
    var s = 0.0
    for i in 0..<b.count { s += Double(a[i]) * Double(b[i]) }
    return s
}

func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "\(a.count) vs \(b.count)")
    var m: Float = 0
    for i in 0..<a.count { m = max(m, abs(a[i] - b[i])) }
    return m
}
