import Faces
import Foundation

// Drawing primitives for the synthetic face renderer.
//
// Every shape is described by a signed distance function in "drawing space"
// (face units for facial parts, pixels for the background); a similarity
// transform maps drawing space to the pixel grid. Rasterizing each shape
// directly through the inverse transform lets a rotated, scaled face be drawn
// without resampling a finished image, so edges stay crisp and the masks and
// landmarks land exactly where the pixels are.
//
// The Faces target is not built whole-module, so the generic pixel loops and
// every shape type they specialize over live in this one file: callers in
// other files only reach non-generic entry points.

// MARK: - Random numbers

/// SplitMix64: tiny, fast and fully deterministic, so a face is a pure
/// function of (seed, index, stream) on every thread and platform.
struct FaceRNG {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    /// Independent streams per (seed, index, purpose), so that e.g. forcing a
    /// different expression leaves the person, background and camera intact.
    init(seed: UInt64, index: Int, stream: UInt64) {
        var s = FaceRNG(seed: seed ^ 0x5DEE_CE66_D1CE_F00D)
        let a = s.next()
        var t = FaceRNG(seed: a &+ UInt64(bitPattern: Int64(index)) &* 0x9E37_79B9_7F4A_7C15)
        let b = t.next()
        var u = FaceRNG(seed: b ^ (stream &* 0xD1B5_4A32_D192_ED03))
        _ = u.next()
        state = u.next()
    }

    @inline(__always)
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    @inline(__always)
    mutating func uniform() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    @inline(__always)
    mutating func uniform(_ a: Float, _ b: Float) -> Float { a + (b - a) * uniform() }

    mutating func chance(_ p: Float) -> Bool { uniform() < p }

    mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    /// Standard normal (Box-Muller); only used for a few parameters per face.
    mutating func normal() -> Float {
        let u1 = max(uniform(), 1e-7)
        let u2 = uniform()
        return (-2 * logf(u1)).squareRoot() * cosf(2 * .pi * u2)
    }

    mutating func normal(_ sigma: Float) -> Float { sigma * normal() }

    /// Index drawn with probability proportional to `weights`.
    mutating func pick(_ weights: [Double]) -> Int {
        let total = weights.reduce(0, +)
        var r = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) * total
        for (i, w) in weights.enumerated() {
            r -= w
            if r < 0 { return i }
        }
        return weights.count - 1
    }
}

// MARK: - Geometry

typealias V2 = SIMD2<Float>
typealias C3 = SIMD3<Float>

/// Similarity transform drawing space -> pixels (x right, y down).
struct RasterAffine {
    var m00: Float, m01: Float, m10: Float, m11: Float, tx: Float, ty: Float

    static let identity = RasterAffine(m00: 1, m01: 0, m10: 0, m11: 1, tx: 0, ty: 0)

    static func similarity(scale: Float, angle: Float, translation: V2) -> RasterAffine {
        let c = cosf(angle) * scale, s = sinf(angle) * scale
        return RasterAffine(m00: c, m01: -s, m10: s, m11: c, tx: translation.x, ty: translation.y)
    }

    @inline(__always)
    func apply(_ p: V2) -> V2 {
        V2(m00 * p.x + m01 * p.y + tx, m10 * p.x + m11 * p.y + ty)
    }

    var inverse: RasterAffine {
        let det = m00 * m11 - m01 * m10
        let i00 = m11 / det, i01 = -m01 / det, i10 = -m10 / det, i11 = m00 / det
        return RasterAffine(m00: i00, m01: i01, m10: i10, m11: i11,
                            tx: -(i00 * tx + i01 * ty), ty: -(i10 * tx + i11 * ty))
    }

    /// Length of a unit drawing-space vector in pixels.
    var scale: Float { (m00 * m00 + m10 * m10).squareRoot() }
}

@inline(__always) func clamp01(_ x: Float) -> Float { min(max(x, 0), 1) }
@inline(__always) func mix(_ a: Float, _ b: Float, _ t: Float) -> Float { a + (b - a) * t }
@inline(__always) func mix(_ a: V2, _ b: V2, _ t: Float) -> V2 { a + (b - a) * t }
@inline(__always) func mix(_ a: C3, _ b: C3, _ t: Float) -> C3 { a + (b - a) * t }
@inline(__always) func length(_ v: V2) -> Float { (v.x * v.x + v.y * v.y).squareRoot() }
@inline(__always) func dot(_ a: V2, _ b: V2) -> Float { a.x * b.x + a.y * b.y }

// MARK: - Shapes

/// A region in drawing space. Distances are negative inside.
enum RasterShape {
    case ellipse(center: V2, radii: V2, angle: Float)
    /// Closed polygon, any winding.
    case polygon([V2])
    /// Polyline with a half width per vertex (tapering strokes, round caps).
    case stroke([V2], halfWidths: [Float])
    /// Elliptical outline of the given half width (glasses frames).
    case ring(center: V2, radii: V2, angle: Float, halfWidth: Float)
    /// Face outline: an ellipse whose lower half narrows (`jaw` > 0) or
    /// squares off (`jaw` < 0).
    case oval(center: V2, radii: V2, jaw: Float)
    /// Hair on top of the head: an ellipse cut off below the hairline
    /// y = h0 + curve * x^2 + tilt * x (relative to the centre).
    case cap(center: V2, radii: V2, h0: Float, curve: Float, tilt: Float)

    static func circle(_ c: V2, _ r: Float) -> RasterShape { .ellipse(center: c, radii: V2(r, r), angle: 0) }

    static func line(_ a: V2, _ b: V2, _ hw: Float) -> RasterShape { .stroke([a, b], halfWidths: [hw, hw]) }

    /// Rotated rectangle.
    static func rect(center: V2, half: V2, angle: Float) -> RasterShape {
        let c = cosf(angle), s = sinf(angle)
        let ax = V2(c, s) * half.x, ay = V2(-s, c) * half.y
        return .polygon([center - ax - ay, center + ax - ay, center + ax + ay, center - ax + ay])
    }
}

protocol RasterSDF {
    func distance(_ p: V2) -> Float
    /// Axis-aligned bounds in drawing space.
    var lo: V2 { get }
    var hi: V2 { get }
}

private struct NoClip: RasterSDF {
    @inline(__always) func distance(_ p: V2) -> Float { -.infinity }
    var lo: V2 { V2(-.infinity, -.infinity) }
    var hi: V2 { V2(.infinity, .infinity) }
}

private struct EllipseSDF: RasterSDF {
    let c: V2, cs: Float, sn: Float, ir: V2, ir2: V2
    let lo: V2, hi: V2
    init(_ c: V2, _ r: V2, _ angle: Float) {
        self.c = c
        cs = cosf(angle); sn = sinf(angle)
        ir = 1 / r; ir2 = ir * ir
        let ex = ((r.x * cs) * (r.x * cs) + (r.y * sn) * (r.y * sn)).squareRoot()
        let ey = ((r.x * sn) * (r.x * sn) + (r.y * cs) * (r.y * cs)).squareRoot()
        lo = c - V2(ex, ey); hi = c + V2(ex, ey)
    }
    @inline(__always) func distance(_ p: V2) -> Float {
        let d = p - c
        let q = V2(cs * d.x + sn * d.y, -sn * d.x + cs * d.y)
        // Inigo Quilez's first-order ellipse distance: exact on the outline,
        // which is all anti-aliasing needs.
        let k0 = length(q * ir)
        let k1 = length(q * ir2)
        if k1 < 1e-12 { return -1 / max(ir.x, ir.y) }
        return k0 * (k0 - 1) / k1
    }
}

private struct RingSDF: RasterSDF {
    let e: EllipseSDF, hw: Float
    var lo: V2 { e.lo - hw }
    var hi: V2 { e.hi + hw }
    @inline(__always) func distance(_ p: V2) -> Float { abs(e.distance(p)) - hw }
}

private struct PolygonSDF: RasterSDF {
    let v: [V2], e: [V2], ie: [Float]
    let lo: V2, hi: V2
    init(_ pts: [V2]) {
        v = pts
        var edges = [V2](), inv = [Float]()
        edges.reserveCapacity(pts.count); inv.reserveCapacity(pts.count)
        var lo = V2(.infinity, .infinity), hi = -lo
        for i in 0..<pts.count {
            let j = i == 0 ? pts.count - 1 : i - 1
            let ed = pts[j] - pts[i]
            edges.append(ed)
            inv.append(1 / max(dot(ed, ed), 1e-12))
            lo = pointwiseMin(lo, pts[i]); hi = pointwiseMax(hi, pts[i])
        }
        e = edges; ie = inv
        self.lo = lo; self.hi = hi
    }
    @inline(__always) func distance(_ p: V2) -> Float {
        // Inigo Quilez's exact polygon distance with a crossing-number sign.
        let n = v.count
        var best = Float.infinity
        var sign: Float = 1
        v.withUnsafeBufferPointer { vp in
            e.withUnsafeBufferPointer { ep in
                ie.withUnsafeBufferPointer { ip in
                    for i in 0..<n {
                        let vi = vp[i], ed = ep[i]
                        let w = p - vi
                        let h = clamp01(dot(w, ed) * ip[i])
                        let b = w - ed * h
                        best = min(best, dot(b, b))
                        let c1 = p.y >= vi.y, c2 = p.y < vi.y + ed.y, c3 = ed.x * w.y > ed.y * w.x
                        if (c1 && c2 && c3) || (!c1 && !c2 && !c3) { sign = -sign }
                    }
                }
            }
        }
        return sign * best.squareRoot()
    }
}

private struct StrokeSDF: RasterSDF {
    let v: [V2], e: [V2], ie: [Float], r: [Float]
    let lo: V2, hi: V2
    init(_ pts: [V2], _ hw: [Float]) {
        v = pts; r = hw
        var edges = [V2](), inv = [Float]()
        var lo = V2(.infinity, .infinity), hi = -lo
        for i in 0..<pts.count {
            let ed = i + 1 < pts.count ? pts[i + 1] - pts[i] : V2(0, 0)
            edges.append(ed)
            inv.append(1 / max(dot(ed, ed), 1e-12))
            lo = pointwiseMin(lo, pts[i] - hw[i]); hi = pointwiseMax(hi, pts[i] + hw[i])
        }
        e = edges; ie = inv
        self.lo = lo; self.hi = hi
    }
    @inline(__always) func distance(_ p: V2) -> Float {
        let n = v.count
        if n == 1 { return length(p - v[0]) - r[0] }
        var best = Float.infinity
        v.withUnsafeBufferPointer { vp in
            e.withUnsafeBufferPointer { ep in
                ie.withUnsafeBufferPointer { ip in
                    r.withUnsafeBufferPointer { rp in
                        for i in 0..<(n - 1) {
                            let w = p - vp[i], ed = ep[i]
                            let h = clamp01(dot(w, ed) * ip[i])
                            let b = w - ed * h
                            let d = (b.x * b.x + b.y * b.y).squareRoot() - (rp[i] + (rp[i + 1] - rp[i]) * h)
                            best = min(best, d)
                        }
                    }
                }
            }
        }
        return best
    }
}

private struct OvalSDF: RasterSDF {
    let c: V2, r: V2, jaw: Float
    // Widest point for the squarest jaw allowed (-0.3) stays within 1.1 rx.
    var lo: V2 { c - r * V2(max(1, 1 - jaw) * 1.1, 1) }
    var hi: V2 { c + r * V2(max(1, 1 - jaw) * 1.1, 1) }
    @inline(__always) func distance(_ p: V2) -> Float {
        let q = p - c
        let yn = max(q.y / r.y, 0)
        let rx = r.x * max(1 - jaw * yn * yn, 0.2)
        let ir = V2(1 / rx, 1 / r.y)
        let k0 = length(q * ir)
        let k1 = length(q * ir * ir)
        if k1 < 1e-12 { return -min(rx, r.y) }
        return k0 * (k0 - 1) / k1
    }
}

private struct CapSDF: RasterSDF {
    let e: EllipseSDF, c: V2, h0: Float, curve: Float, tilt: Float
    var lo: V2 { e.lo }
    var hi: V2 { e.hi }
    @inline(__always) func distance(_ p: V2) -> Float {
        let x = p.x - c.x
        let line = c.y + h0 + curve * x * x + tilt * x
        let slope = 2 * curve * x + tilt
        let dl = (p.y - line) / (1 + slope * slope).squareRoot()
        return max(e.distance(p), dl)
    }
}

/// Enum-dispatched distance, used only for clip regions (rare, small).
private struct AnySDF: RasterSDF {
    enum Kind { case e(EllipseSDF), p(PolygonSDF), s(StrokeSDF), r(RingSDF), o(OvalSDF), c(CapSDF) }
    let k: Kind
    init(_ shape: RasterShape) {
        switch shape {
        case let .ellipse(c, r, a): k = .e(EllipseSDF(c, r, a))
        case let .polygon(p): k = .p(PolygonSDF(p))
        case let .stroke(p, w): k = .s(StrokeSDF(p, w))
        case let .ring(c, r, a, w): k = .r(RingSDF(e: EllipseSDF(c, r, a), hw: w))
        case let .oval(c, r, j): k = .o(OvalSDF(c: c, r: r, jaw: j))
        case let .cap(c, r, h0, cu, t): k = .c(CapSDF(e: EllipseSDF(c, r, 0), c: c, h0: h0, curve: cu, tilt: t))
        }
    }
    @inline(__always) func distance(_ p: V2) -> Float {
        switch k {
        case let .e(s): return s.distance(p)
        case let .p(s): return s.distance(p)
        case let .s(s): return s.distance(p)
        case let .r(s): return s.distance(p)
        case let .o(s): return s.distance(p)
        case let .c(s): return s.distance(p)
        }
    }
    var lo: V2 {
        switch k {
        case let .e(s): return s.lo
        case let .p(s): return s.lo
        case let .s(s): return s.lo
        case let .r(s): return s.lo
        case let .o(s): return s.lo
        case let .c(s): return s.lo
        }
    }
    var hi: V2 {
        switch k {
        case let .e(s): return s.hi
        case let .p(s): return s.hi
        case let .s(s): return s.hi
        case let .r(s): return s.hi
        case let .o(s): return s.hi
        case let .c(s): return s.hi
        }
    }
}

// MARK: - Inks

/// What a shape deposits where it covers the image.
enum RasterInk {
    case color(C3)
    /// Multiplies the pixels already there: shadows (< 1) and highlights (> 1).
    case scale(C3)
    /// Two-colour stripes across `direction`, `period` drawing units wide.
    case stripes(C3, C3, direction: V2, period: Float)
    /// Linear gradient: colour a at `from`, colour b at `to`, darkened by
    /// `rim` toward the outline over `width` pixels (a face's roundness).
    case gradient(C3, C3, from: V2, to: V2, rim: Float = 0, width: Float = 1)
    /// Flat colour darkened by `rim` toward the outline over `width` pixels
    /// (the roundness of a cheek or the shade under the jaw).
    case rimmed(C3, rim: Float, width: Float)
}

/// What a painted shape does to the visible-skin layer, in the same pass.
enum RasterVisibility {
    case none
    /// visible = max(visible, coverage): the skin of the face.
    case reveal
    /// visible *= 1 - coverage: hair or a hand in front of the face.
    case hide
}

/// Which buffer a shape writes into.
private enum RasterTarget {
    case paint(RasterInk, opacity: Float, visibility: RasterVisibility)
    /// region = max(region, coverage): expressive regions for the mask.
    case region
}

// MARK: - Raster

/// Float RGB canvas in [0, 1] plus two coverage layers, with a drawing
/// transform. A class with manually allocated buffers so that the hot loops
/// pay neither copy-on-write checks nor exclusivity checks; one instance
/// belongs to one render call.
final class Raster {
    let size: Int
    let rgb: UnsafeMutablePointer<Float>
    /// Skin of the face that is not hidden by hair or a hand.
    let visible: UnsafeMutablePointer<Float>
    /// Expressive regions (before intersecting with `visible`).
    let region: UnsafeMutablePointer<Float>
    private let scratch: UnsafeMutablePointer<Float>

    private(set) var transform = RasterAffine.identity
    private var inverse = RasterAffine.identity
    /// Pixels per drawing unit.
    private(set) var unit: Float = 1

    init(size: Int) {
        self.size = size
        let n = size * size
        rgb = .allocate(capacity: 3 * n); rgb.initialize(repeating: 0, count: 3 * n)
        visible = .allocate(capacity: n); visible.initialize(repeating: 0, count: n)
        region = .allocate(capacity: n); region.initialize(repeating: 0, count: n)
        scratch = .allocate(capacity: 3 * n); scratch.initialize(repeating: 0, count: 3 * n)
    }

    deinit {
        rgb.deallocate(); visible.deallocate(); region.deallocate(); scratch.deallocate()
    }

    func setTransform(_ t: RasterAffine) {
        transform = t
        inverse = t.inverse
        unit = t.scale
    }

    // MARK: Public drawing entry points (non-generic, callable from any file)

    /// Paints `shape` (optionally intersected with `clip`) with an edge
    /// ramp `soft` pixels wide.
    /// `visibility` updates the visible-skin layer with the shape's coverage
    /// (independent of `opacity`) in the same pass.
    func paint(_ shape: RasterShape, _ ink: RasterInk, opacity: Float = 1, soft: Float = 1, clip: RasterShape? = nil,
               visibility: RasterVisibility = .none) {
        guard opacity > 0.002 else { return }
        dispatch(shape, clip: clip, target: .paint(ink, opacity: opacity, visibility: visibility), soft: soft, dilate: 0)
    }

    func paint(_ shape: RasterShape, _ color: C3, opacity: Float = 1, soft: Float = 1, clip: RasterShape? = nil,
               visibility: RasterVisibility = .none) {
        paint(shape, .color(color), opacity: opacity, soft: soft, clip: clip, visibility: visibility)
    }

    /// Marks an expressive region, grown by `dilate` pixels.
    func markRegion(_ shape: RasterShape, dilate: Float) {
        dispatch(shape, clip: nil, target: .region, soft: 1, dilate: dilate)
    }

    /// Fills the whole canvas with a linear gradient (pixel coordinates).
    func fillGradient(_ a: C3, _ b: C3, from p0: V2, to p1: V2) {
        let axis = p1 - p0
        let inv = 1 / max(dot(axis, axis), 1e-6)
        for y in 0..<size {
            for x in 0..<size {
                let t = clamp01(dot(V2(Float(x) + 0.5, Float(y) + 0.5) - p0, axis) * inv)
                let c = a + (b - a) * t
                let i = 3 * (y * size + x)
                rgb[i] = c.x; rgb[i + 1] = c.y; rgb[i + 2] = c.z
            }
        }
    }

    /// Separable [1 2 1]/4 blur blended in by `amount` (0 = none, 1 = full).
    func blur(amount: Float) {
        guard amount > 0.01 else { return }
        let s = size
        // Horizontal pass into scratch, clamped edges.
        for y in 0..<s {
            let row = 3 * y * s
            for x in 0..<s {
                let xl = max(x - 1, 0), xr = min(x + 1, s - 1)
                for ch in 0..<3 {
                    scratch[row + 3 * x + ch] = 0.25 * rgb[row + 3 * xl + ch] + 0.5 * rgb[row + 3 * x + ch] + 0.25 * rgb[row + 3 * xr + ch]
                }
            }
        }
        // Vertical pass back, blended with the original.
        for y in 0..<s {
            let yu = max(y - 1, 0), yd = min(y + 1, s - 1)
            for x in 0..<s {
                for ch in 0..<3 {
                    let b = 0.25 * scratch[3 * (yu * s + x) + ch] + 0.5 * scratch[3 * (y * s + x) + ch]
                        + 0.25 * scratch[3 * (yd * s + x) + ch]
                    let i = 3 * (y * s + x) + ch
                    rgb[i] += amount * (b - rgb[i])
                }
            }
        }
    }

    /// Camera stage in one pass: directional light (a linear gain across the
    /// image), per-channel white balance, exposure, optional desaturation,
    /// sensor noise, quantization to bytes.
    func develop(into out: inout [UInt8], lightDirection: V2, lightStrength: Float,
                 whiteBalance: C3, exposure: Float, saturation: Float,
                 noiseSigma: Float, rng: inout FaceRNG) {
        let s = size
        let half = Float(s) * 0.5
        let invS = 1 / Float(s)
        // Sensor noise: a sum of two 10-bit uniforms per channel (triangular,
        // unit variance after scaling), so one 64-bit draw serves a whole
        // pixel; log/cos per sample would cost more than the rest of the
        // camera stage.
        let noiseScale = noiseSigma * 255 * 2.449_49 / 1023
        out.withUnsafeMutableBufferPointer { o in
            for y in 0..<s {
                for x in 0..<s {
                    let p = V2((Float(x) - half) * invS, (Float(y) - half) * invS)
                    let gain = exposure * (1 + lightStrength * dot(p, lightDirection))
                    let i = 3 * (y * s + x)
                    var c = C3(rgb[i], rgb[i + 1], rgb[i + 2]) * whiteBalance * gain
                    if saturation != 1 {
                        let l = 0.299 * c.x + 0.587 * c.y + 0.114 * c.z
                        c = C3(repeating: l) + (c - C3(repeating: l)) * saturation
                    }
                    var v = c * 255
                    if noiseSigma > 0 {
                        let r = rng.next()
                        let a = C3(Float(r & 0x3FF), Float((r >> 20) & 0x3FF), Float((r >> 40) & 0x3FF))
                        let b = C3(Float((r >> 10) & 0x3FF), Float((r >> 30) & 0x3FF), Float((r >> 50) & 0x3FF))
                        v += (a - b) * noiseScale
                    }
                    v = pointwiseMin(pointwiseMax(v + 0.5, C3(repeating: 0)), C3(repeating: 255))
                    o[i] = UInt8(v.x); o[i + 1] = UInt8(v.y); o[i + 2] = UInt8(v.z)
                }
            }
        }
    }

    // MARK: Dispatch to specialized loops

    private func dispatch(_ shape: RasterShape, clip: RasterShape?, target: RasterTarget, soft: Float, dilate: Float) {
        switch shape {
        case let .ellipse(c, r, a): withClip(EllipseSDF(c, r, a), clip, target, soft, dilate)
        case let .polygon(p): if p.count >= 3 { withClip(PolygonSDF(p), clip, target, soft, dilate) }
        case let .stroke(p, w): if !p.isEmpty { withClip(StrokeSDF(p, w), clip, target, soft, dilate) }
        case let .ring(c, r, a, w): withClip(RingSDF(e: EllipseSDF(c, r, a), hw: w), clip, target, soft, dilate)
        case let .oval(c, r, j): withClip(OvalSDF(c: c, r: r, jaw: j), clip, target, soft, dilate)
        case let .cap(c, r, h0, cu, t):
            withClip(CapSDF(e: EllipseSDF(c, r, 0), c: c, h0: h0, curve: cu, tilt: t), clip, target, soft, dilate)
        }
    }

    private func withClip<S: RasterSDF>(_ s: S, _ clip: RasterShape?, _ target: RasterTarget, _ soft: Float, _ dilate: Float) {
        if let clip {
            apply(s, AnySDF(clip), target, soft, dilate)
        } else {
            apply(s, NoClip(), target, soft, dilate)
        }
    }

    private func apply<S: RasterSDF, C: RasterSDF>(_ s: S, _ c: C, _ target: RasterTarget, _ soft: Float, _ dilate: Float) {
        let rgb = self.rgb, visible = self.visible, region = self.region
        switch target {
        case let .paint(ink, opacity, visibility):
            let reveal = visibility == .reveal, hide = visibility == .hide
            @inline(__always) func cover(_ i: Int, _ cov: Float) {
                if reveal { visible[i] = max(visible[i], cov) } else if hide { visible[i] *= 1 - cov }
            }
            switch ink {
            case let .color(col):
                sweep(s, c, soft, dilate) { i, cov, _, _ in
                    let a = cov * opacity, j = 3 * i
                    rgb[j] += a * (col.x - rgb[j]); rgb[j + 1] += a * (col.y - rgb[j + 1]); rgb[j + 2] += a * (col.z - rgb[j + 2])
                    cover(i, cov)
                }
            case let .scale(f):
                sweep(s, c, soft, dilate) { i, cov, _, _ in
                    let a = cov * opacity, j = 3 * i
                    rgb[j] *= 1 + a * (f.x - 1); rgb[j + 1] *= 1 + a * (f.y - 1); rgb[j + 2] *= 1 + a * (f.z - 1)
                    cover(i, cov)
                }
            case let .stripes(ca, cb, dir, period):
                let k = 1 / period
                let aa = 1 / max(period * unit * 0.5, 1) // ramp width in phase units (~1 pixel)
                sweep(s, c, soft, dilate) { i, cov, _, p in
                    let ph = dot(p, dir) * k
                    let f = ph - ph.rounded(.down)                // 0..1
                    let tri = abs(f - 0.5) * 2                        // 0 at band centre, 1 at edges
                    let t = clamp01((tri - 0.5) / aa + 0.5)
                    let col = ca + (cb - ca) * t
                    let a = cov * opacity, j = 3 * i
                    rgb[j] += a * (col.x - rgb[j]); rgb[j + 1] += a * (col.y - rgb[j + 1]); rgb[j + 2] += a * (col.z - rgb[j + 2])
                    cover(i, cov)
                }
            case let .gradient(ca, cb, from, to, rim, width):
                let axis = to - from
                let inv = 1 / max(dot(axis, axis), 1e-9)
                let iw = 1 / width
                sweep(s, c, soft, dilate) { i, cov, d, p in
                    let t = clamp01(dot(p - from, axis) * inv)
                    let inner = clamp01(-d * iw)
                    let col = (ca + (cb - ca) * t) * (1 - rim * (1 - inner) * (1 - inner))
                    let a = cov * opacity, j = 3 * i
                    rgb[j] += a * (col.x - rgb[j]); rgb[j + 1] += a * (col.y - rgb[j + 1]); rgb[j + 2] += a * (col.z - rgb[j + 2])
                    cover(i, cov)
                }
            case let .rimmed(col, rim, width):
                let iw = 1 / width
                sweep(s, c, soft, dilate) { i, cov, d, _ in
                    let inner = clamp01(-d * iw)
                    let shade = 1 - rim * (1 - inner) * (1 - inner)
                    let cc = col * shade
                    let a = cov * opacity, j = 3 * i
                    rgb[j] += a * (cc.x - rgb[j]); rgb[j + 1] += a * (cc.y - rgb[j + 1]); rgb[j + 2] += a * (cc.z - rgb[j + 2])
                    cover(i, cov)
                }
            }
        case .region:
            sweep(s, c, soft, dilate) { i, cov, _, _ in region[i] = max(region[i], cov) }
        }
    }

    /// Visits every pixel the shape touches with its coverage, its signed
    /// distance in pixels and its drawing-space position.
    @inline(__always)
    private func sweep<S: RasterSDF, C: RasterSDF>(_ s: S, _ c: C, _ soft: Float, _ dilate: Float,
                                                   _ body: (Int, Float, Float, V2) -> Void) {
        let lo = pointwiseMax(s.lo, c.lo), hi = pointwiseMin(s.hi, c.hi)
        guard lo.x <= hi.x, lo.y <= hi.y else { return }
        // Pixel bounding box of the transformed drawing-space box.
        let t = transform
        let c0 = t.apply(lo), c1 = t.apply(V2(hi.x, lo.y)), c2 = t.apply(hi), c3 = t.apply(V2(lo.x, hi.y))
        let pmin = pointwiseMin(pointwiseMin(c0, c1), pointwiseMin(c2, c3))
        let pmax = pointwiseMax(pointwiseMax(c0, c1), pointwiseMax(c2, c3))
        let pad = soft + dilate + 1
        let x0 = max(Int((pmin.x - pad).rounded(.down)), 0), x1 = min(Int((pmax.x + pad).rounded(.up)), size)
        let y0 = max(Int((pmin.y - pad).rounded(.down)), 0), y1 = min(Int((pmax.y + pad).rounded(.up)), size)
        guard x0 < x1, y0 < y1 else { return }
        let inv = inverse
        let step = V2(inv.m00, inv.m10)
        let k = unit
        let half = soft * 0.5, isoft = 1 / soft
        for y in y0..<y1 {
            var p = inv.apply(V2(Float(x0) + 0.5, Float(y) + 0.5))
            let row = y * size
            for x in x0..<x1 {
                // The clip is only evaluated where the shape itself reaches.
                var d = s.distance(p) * k - dilate
                if d < half, C.self != NoClip.self { d = max(d, c.distance(p) * k - dilate) }
                if d < half {
                    let cov = d <= -half ? 1 : (half - d) * isoft
                    body(row + x, cov, d, p)
                }
                p += step
            }
        }
    }
}
