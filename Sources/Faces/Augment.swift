import Foundation
import LabRandom

/// Training-time augmentation (the research plan's recipe): horizontal flip with p = 0.5,
/// rotation uniform in ±rotation degrees, translation uniform up to
/// ±translation of the side; composed into one affine warp, bilinear.
public struct Augmentation: Codable, Equatable, Hashable, Sendable {
    public var flip: Bool
    public var rotation: Float          // degrees, either way
    public var translation: Float       // fraction of the image side
    /// No defaults here: the spec's augment section (Specs' AugmentSpec) holds them.
    public init(flip: Bool, rotation: Float, translation: Float) {
        self.flip = flip; self.rotation = rotation; self.translation = translation
    }
    public static let none = Augmentation(flip: false, rotation: 0, translation: 0)
    public var isIdentity: Bool { !flip && rotation == 0 && translation == 0 }
}

/// Pixel scaling: (v / 255 - mean[c]) / std[c]. The default maps [0, 255] to [-1, 1].
public struct Normalization: Codable, Equatable, Sendable {
    public var mean: [Float] = [0.5, 0.5, 0.5]
    public var std: [Float] = [0.5, 0.5, 0.5]
    public init(mean: [Float] = [0.5, 0.5, 0.5], std: [Float] = [0.5, 0.5, 0.5]) { self.mean = mean; self.std = std }

    /// Per-channel mean and std of the given images.
    public static func measured(_ set: FaceSet, indices: [Int]) -> Normalization {
        var s = [Double](repeating: 0, count: 3), q = s
        let px = set.imageSize * set.imageSize
        for i in indices {
            let base = i * px * 3
            for p in 0..<px { for c in 0..<3 { let v = Double(set.pixels[base + p * 3 + c]) / 255; s[c] += v; q[c] += v * v } }
        }
        let n = Double(max(1, indices.count * px))
        let mean = s.map { $0 / n }
        let std = (0..<3).map { max(1e-3, (q[$0] / n - mean[$0] * mean[$0]).squareRoot()) }
        return Normalization(mean: mean.map(Float.init), std: std.map(Float.init))
    }

    /// The byte a normalized value of channel `c` came from, for drawing
    /// what the network saw. Truncates like the old `(x + 1) * 127.5`, which
    /// this equals bit for bit at the default mean = std = 0.5 (scaling by
    /// 0.5 is exact), so images drawn before keep their bytes.
    @inline(__always)
    public func byte(_ x: Float, channel c: Int) -> UInt8 {
        UInt8(max(0, min(255, (x * std[c] + mean[c]) * 255)))
    }

    /// An image [S, S, 3] of normalized floats back as bytes.
    public func image(_ x: ArraySlice<Float>, S: Int) -> RGBImage {
        RGBImage(width: S, height: S, pixels: x.enumerated().map { byte($0.element, channel: $0.offset % 3) })
    }
}

/// One image's warp parameters, drawn from its own generator.
struct Warp {
    var flip: Bool, angle: Float, tx: Float, ty: Float

    init(_ a: Augmentation, size: Int, rng: inout RNG) {
        flip = a.flip && rng.uniform() < 0.5
        angle = a.rotation * (2 * rng.uniform() - 1) * .pi / 180
        let t = a.translation * Float(size)
        tx = t * (2 * rng.uniform() - 1)
        ty = t * (2 * rng.uniform() - 1)
    }
}

public enum Augmenter {
    /// Writes image `i` of `set` into out [S, S, 3] as normalized floats,
    /// warped when `warp` is given. Bilinear, edges clamped (no black corners
    /// for the network to learn about).
    static func render(
        _ out: UnsafeMutablePointer<Float>,  // [S, S, 3]
        set: FaceSet, image i: Int, warp: Warp?, normalization n: Normalization
    ) {
        let S = set.imageSize
        let scale = (0..<3).map { 1 / (255 * n.std[$0]) }
        let shift = (0..<3).map { -n.mean[$0] / n.std[$0] }
        set.pixels.withUnsafeBufferPointer { px in
            let src = px.baseAddress! + i * S * S * 3
            guard let w = warp else {
                for p in 0..<(S * S) { for c in 0..<3 { out[p * 3 + c] = Float(src[p * 3 + c]) * scale[c] + shift[c] } }
                return
            }
            // Inverse map: output pixel -> input position (rotate back, untranslate, unflip).
            let cx = Float(S - 1) / 2, cs = cos(w.angle), sn = sin(w.angle)
            let maxC = Float(S - 1)
            for y in 0..<S {
                for x in 0..<S {
                    let u = Float(x) - cx - w.tx, v = Float(y) - cx - w.ty
                    var sx = cs * u + sn * v
                    let sy = -sn * u + cs * v + cx
                    if w.flip { sx = -sx }
                    sx += cx
                    let fx = min(max(sx, 0), maxC), fy = min(max(sy, 0), maxC)
                    let x0 = min(Int(fx), S - 2), y0 = min(Int(fy), S - 2)
                    let ax = fx - Float(x0), ay = fy - Float(y0)
                    let p00 = (y0 * S + x0) * 3, p01 = p00 + 3, p10 = p00 + S * 3, p11 = p10 + 3
                    let o = out + (y * S + x) * 3
                    for c in 0..<3 {
                        let top = Float(src[p00 + c]) * (1 - ax) + Float(src[p01 + c]) * ax
                        let bot = Float(src[p10 + c]) * (1 - ax) + Float(src[p11 + c]) * ax
                        o[c] = (top * (1 - ay) + bot * ay) * scale[c] + shift[c]
                    }
                }
            }
        }
    }

    /// Fills a batch: x [n, S, S, 3], targets [n, 6]. Image k's warp is drawn
    /// from RNG(seed, k) so results do not depend on thread timing.
    public static func assemble(
        x: UnsafeMutablePointer<Float>, targets: UnsafeMutablePointer<Float>,
        set: FaceSet, indices: ArraySlice<Int>, augmentation: Augmentation?, labelMode: LabelMode,
        normalization: Normalization, seed: UInt64
    ) {
        let S = set.imageSize
        for (k, i) in indices.enumerated() {
            var rng = RNG(seed: seed &+ UInt64(k) &* 0xD1B5_4A32_D192_ED03)
            let warp = augmentation.flatMap { $0.isIdentity ? nil : Warp($0, size: S, rng: &rng) }
            render(x + k * S * S * 3, set: set, image: i, warp: warp, normalization: normalization)
            set.target(i, mode: labelMode, into: targets + k * Emotion.count)
        }
    }
}

/// Batches for one pass over `order`, assembled on a background thread
/// while the caller computes on the previous one (three rotating buffers,
/// nothing allocated per batch). The producer thread holds the stream until
/// it ends: a consumer that stops early must `cancel()` (`forEach` does,
/// however it ends), or the thread stays blocked with three buffers.
public final class BatchStream: @unchecked Sendable {   // safe: produced/cancelled under `lock`, buffers handed over by semaphores
    public struct Batch {
        public let x: UnsafeMutablePointer<Float>        // [count, S, S, 3]
        public let targets: UnsafeMutablePointer<Float>  // [count, 6]
        public let indices: ArraySlice<Int>
        public var count: Int { indices.count }
        let slot: Int
    }

    private let slots = 3
    private let xs: [UnsafeMutablePointer<Float>]
    private let ts: [UnsafeMutablePointer<Float>]
    private let free: DispatchSemaphore
    private let ready = DispatchSemaphore(value: 0)
    private var produced: [Batch?]
    private let lock = NSLock()
    private var cancelled = false
    private var nextToConsume = 0
    public let batchCount: Int

    public init(set: FaceSet, order: [Int], batchSize: Int, augmentation: Augmentation?, labelMode: LabelMode,
                normalization: Normalization, seed: UInt64) {
        let S = set.imageSize
        xs = (0..<slots).map { _ in .allocate(capacity: batchSize * S * S * 3) }
        ts = (0..<slots).map { _ in .allocate(capacity: batchSize * Emotion.count) }
        free = DispatchSemaphore(value: slots)
        batchCount = (order.count + batchSize - 1) / batchSize
        produced = Array(repeating: nil, count: batchCount)
        let thread = Thread { [self] in
            for b in 0..<batchCount {
                free.wait()
                lock.lock(); let stop = cancelled; lock.unlock()
                if stop { break }
                let slot = b % slots
                let idx = order[(b * batchSize)..<min(order.count, (b + 1) * batchSize)]
                Augmenter.assemble(x: xs[slot], targets: ts[slot], set: set, indices: idx, augmentation: augmentation,
                                   labelMode: labelMode, normalization: normalization,
                                   seed: seed &+ UInt64(b) &* 0x9E37_79B9_7F4A_7C15)
                lock.lock(); produced[b] = Batch(x: xs[slot], targets: ts[slot], indices: idx, slot: slot); lock.unlock()
                ready.signal()
            }
        }
        thread.start()
    }

    /// The next batch, or nil at the end. Call `release` before asking again
    /// past the buffer depth.
    public func next() -> Batch? {
        guard nextToConsume < batchCount else { return nil }
        ready.wait()
        lock.lock(); let b = produced[nextToConsume]; produced[nextToConsume] = nil; lock.unlock()
        nextToConsume += 1
        return b
    }

    /// Hands a batch's buffers back to the producer.
    public func release(_ b: Batch) { free.signal() }

    /// Runs `body` on every batch in order, releasing each after it. The
    /// producer is stopped however this ends, a throw from `body` included,
    /// so no thread is left waiting for buffers that will not come back.
    public func forEach(_ body: (Batch) throws -> Void) rethrows {
        defer { cancel() }
        while let batch = next() {
            defer { release(batch) }
            try body(batch)
        }
    }

    /// Stops the producer early (Ctrl-C, early exit); a second call changes nothing.
    public func cancel() {
        lock.lock(); cancelled = true; lock.unlock()
        for _ in 0..<slots { free.signal() }
    }

    deinit {
        cancel()
        // The producer holds self strongly until it ends, so by now it is done.
        xs.forEach { $0.deallocate() }
        ts.forEach { $0.deallocate() }
    }
}
