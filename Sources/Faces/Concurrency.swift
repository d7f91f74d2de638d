import Dispatch
import Synchronization

/// A fixed-size array that worker threads fill slot by slot. Swift arrays
/// must not be mutated from several threads at once (copy-on-write checks
/// race), so every store takes a lock: one per image, negligible next to
/// decoding or drawing it.
public final class SlotArray<T: Sendable>: Sendable {
    private let items: Mutex<[T]>

    public init(repeating v: T, count: Int) { items = Mutex(Array(repeating: v, count: count)) }

    public subscript(i: Int) -> T {
        get { items.withLock { $0[i] } }
        set { items.withLock { $0[i] = newValue } }
    }

    public var array: [T] { items.withLock { $0 } }
}

/// Runs `body(i)` for every i in 0..<n on Dispatch's worker threads and
/// returns when every call has. `body` need not be Sendable: each caller
/// gives each index its own images (and writes shared results through a
/// SlotArray or a Mutex), and nothing it captures outlives this call.
public func concurrently(_ n: Int, _ body: (Int) -> Void) {
    withoutActuallyEscaping(body) { body in
        let shared = SharedBody(body)
        DispatchQueue.concurrentPerform(iterations: n) { shared.body($0) }
    }
}

/// A closure concurrentPerform's workers share (see `concurrently`).
struct SharedBody: @unchecked Sendable {   // safe: each index touches its own images, and `concurrently` waits for all calls
    let body: (Int) -> Void
    init(_ body: @escaping (Int) -> Void) { self.body = body }
}
