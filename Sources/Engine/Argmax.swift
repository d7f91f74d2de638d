/// Index of the largest of `count` values, the first one on a tie. NaNs
/// compare false: one after the first value is skipped, one first wins
/// (a diverged model then predicts class 0, as it always has here).
/// `count` must be at least 1.
@inline(__always)
public func argmax(_ p: UnsafePointer<Float>, count: Int) -> Int {
    var best = 0
    for j in 1..<count where p[j] > p[best] { best = j }
    return best
}

/// Offset (from startIndex) of the largest value, with the tie rule above.
public func argmax(_ row: ArraySlice<Float>) -> Int {
    row.withUnsafeBufferPointer { argmax($0.baseAddress!, count: $0.count) }
}
