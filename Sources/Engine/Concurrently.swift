import Dispatch

/// Runs `body(i)` for every i in 0..<n on Dispatch's worker threads and
/// returns when every call has. `body` need not be Sendable: each caller
/// gives each index its own rows, chunk or scratch buffer, so no two calls
/// write the same memory, and nothing it captures outlives this call.
@inline(__always)
func concurrently(_ n: Int, _ body: (Int) -> Void) {
    withoutActuallyEscaping(body) { body in
        let shared = SharedBody(body)
        DispatchQueue.concurrentPerform(iterations: n) { shared.body($0) }
    }
}

/// A closure concurrentPerform's workers share (see `concurrently`).
struct SharedBody: @unchecked Sendable {   // safe: each index writes disjoint memory, and `concurrently` waits for all calls
    let body: (Int) -> Void
    init(_ body: @escaping (Int) -> Void) { self.body = body }
}
