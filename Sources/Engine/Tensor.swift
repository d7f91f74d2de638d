/// A dense float32 buffer with a shape. 64-byte aligned so SIMD loads and
/// OpenBLAS's packing routines see aligned rows. Reference semantics: layers
/// keep their activations in Tensors allocated once per batch capacity.
public final class Tensor {
    public let shape: [Int]
    public let count: Int
    public let data: UnsafeMutablePointer<Float>

    public init(_ shape: [Int], zero: Bool = true) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * 4, alignment: 64)
        data = raw.bindMemory(to: Float.self, capacity: max(1, count))
        if zero { data.initialize(repeating: 0, count: count) }
    }

    public convenience init(_ shape: [Int], _ values: [Float]) {
        self.init(shape, zero: false)
        precondition(values.count == count, "\(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    deinit { data.deallocate() }

    public subscript(i: Int) -> Float {
        get { data[i] }
        set { data[i] = newValue }
    }

    public var array: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    public func zero() { data.update(repeating: 0, count: count) }

    public func copy(from other: Tensor) {
        precondition(other.count == count)
        data.update(from: other.data, count: count)
    }

    public func clone() -> Tensor {
        let t = Tensor(shape, zero: false)
        t.copy(from: self)
        return t
    }
}
