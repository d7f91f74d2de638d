import Foundation

/// A fixed-size array that worker threads fill slot by slot. Swift arrays
/// must not be mutated from several threads at once (copy-on-write checks
/// race), so every store takes a lock: one per image, negligible next to
/// decoding or drawing it.
public final class SlotArray<T>: @unchecked Sendable {
    private var items: [T]
    private let lock = NSLock()

    public init(repeating v: T, count: Int) { items = Array(repeating: v, count: count) }

    public subscript(i: Int) -> T {
        get { lock.lock(); defer { lock.unlock() }; return items[i] }
        set { lock.lock(); items[i] = newValue; lock.unlock() }
    }

    public var array: [T] { lock.lock(); defer { lock.unlock() }; return items }
}
