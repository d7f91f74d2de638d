// The nonlinearities: relu, leaky_relu (slope 0.01), elu (alpha 1), silu
// (ModelConfig.Activation), plus identity (a unit whose output goes to
// attention first) and sigmoid (the attention gates). Each is a type with
// its function and its gradient, and the kernels that apply one (here, in
// BatchNorm.swift, SqueezeExcitation.swift, CBAM.swift) are generic over it
// and dispatched once per call, so each activation gets its own straight
// loop: no branch on the kind inside a loop.
//
// The gradient reads out = act(z) and, for SiLU only, z itself: ReLU,
// leaky ReLU and ELU are told apart from their input by the sign of the
// output (and ELU's slope e^z is out + 1), so callers keep z only for SiLU
// (`needsInput`) and pass out in its place otherwise.
//
// exp is a polynomial here, not libm's: a call per element stops the loop
// vectorizing (8x slower at 8 lanes), and libm's scalar expf is no more
// accurate than this (relative error 1.2e-7 over [-87, 88], measured
// against expf).

/// PyTorch's order of operations where it matters (x / (1 + e^-x) for SiLU,
/// expm1 for ELU), so float32 results agree to a few ulps.
protocol ActivationFunction {
    /// act(z).
    static func f(_ z: Float) -> Float
    /// d * act'(z), from out = act(z) and (when `needsInput`) z.
    static func backward(_ d: Float, z: Float, out: Float) -> Float
    static var needsInput: Bool { get }
}

enum IdentityActivation: ActivationFunction {
    @inline(__always) static func f(_ z: Float) -> Float { z }
    @inline(__always) static func backward(_ d: Float, z: Float, out: Float) -> Float { d }
    static var needsInput: Bool { false }
}

enum ReLUActivation: ActivationFunction {
    @inline(__always) static func f(_ z: Float) -> Float { max(0, z) }
    @inline(__always) static func backward(_ d: Float, z: Float, out: Float) -> Float { out > 0 ? d : 0 }
    static var needsInput: Bool { false }
}

enum LeakyReLUActivation: ActivationFunction {
    static let slope: Float = 0.01
    @inline(__always) static func f(_ z: Float) -> Float { z > 0 ? z : z * slope }
    @inline(__always) static func backward(_ d: Float, z: Float, out: Float) -> Float { out > 0 ? d : d * slope }
    static var needsInput: Bool { false }
}

enum ELUActivation: ActivationFunction {
    @inline(__always) static func f(_ z: Float) -> Float { z > 0 ? z : fastExpm1(z) }
    @inline(__always) static func backward(_ d: Float, z: Float, out: Float) -> Float { out > 0 ? d : d * (out + 1) }
    static var needsInput: Bool { false }
}

enum SiLUActivation: ActivationFunction {
    @inline(__always) static func f(_ z: Float) -> Float { z / (1 + fastExp(-z)) }
    @inline(__always) static func backward(_ d: Float, z: Float, out: Float) -> Float {
        let s = 1 / (1 + fastExp(-z))
        return d * (s * (1 + z * (1 - s)))
    }
    static var needsInput: Bool { true }
}

enum SigmoidActivation: ActivationFunction {
    @inline(__always) static func f(_ z: Float) -> Float { 1 / (1 + fastExp(-z)) }
    @inline(__always) static func backward(_ d: Float, z: Float, out: Float) -> Float { d * (out * (1 - out)) }
    static var needsInput: Bool { false }
}

extension ModelConfig.Activation {
    /// Whether backward needs the pre-activation z kept (SiLU), not only the output.
    public var needsInput: Bool { self == .silu }
}

/// 2^n (e^r) with |r| <= ln2/2 by a degree-7 polynomial (Cephes' expf),
/// branch-free so loops over it vectorize; x is clamped to the range where
/// the result is a normal float.
@inline(__always)
func expParts(_ x: Float) -> (scale: Float, em1: Float) {
    let x = min(max(x, -87.3), 88.3)
    let n = (x * 1.442695041).rounded(.toNearestOrEven)
    let r = x - n * 0.693359375 + n * 2.12194440e-4   // Cody-Waite: ln2 in two parts
    var p: Float = 1.9875691500e-4
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    let scale = Float(bitPattern: UInt32(bitPattern: Int32(n) + 127) << 23)
    return (scale, p * r * r + r)   // e^r - 1
}

@inline(__always) func fastExp(_ x: Float) -> Float {
    let (s, e) = expParts(x)
    return (e + 1) * s
}

/// e^x - 1 without the cancellation of fastExp(x) - 1 near 0.
@inline(__always) func fastExpm1(_ x: Float) -> Float {
    let (s, e) = expParts(x)
    return e * s + (s - 1)
}

/// What a kernel applies last: one of the model's activations, identity (a
/// block's last unit when attention follows it) or sigmoid (the gates).
public enum Nonlinearity: Sendable, Equatable {
    case identity, relu, leakyReLU, elu, silu, sigmoid

    public init(_ a: ModelConfig.Activation?) {
        switch a {
        case nil: self = .identity
        case .relu?: self = .relu
        case .leakyReLU?: self = .leakyReLU
        case .elu?: self = .elu
        case .silu?: self = .silu
        }
    }

    /// Whether backward needs the pre-activation z kept, not only the output.
    public var needsInput: Bool { self == .silu }
}

/// out = act(inp * scale + shift [+ residual]), per channel of [M, C] rows:
/// batch norm's output pass (scale and shift fold gamma, beta and the
/// statistics), or with neither an add and activation. With
/// `preactivation`, act's argument is written there too.
func affineActivationForward(
    _ act: Nonlinearity,
    _ out: UnsafeMutablePointer<Float>,              // [M, C]
    preactivation: UnsafeMutablePointer<Float>?,     // [M, C] written, or nil
    _ inp: UnsafePointer<Float>,                     // [M, C]
    scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?,  // [C] each, or both nil
    residual: UnsafePointer<Float>?,                 // [M, C] or nil
    M: Int, C: Int, workers: Int
) {
    @inline(__always) func rows<A: ActivationFunction>(_: A.Type, _ m0: Int, _ m1: Int) {
        // One loop per combination, none with an optional inside: they vectorize.
        if C == 1, let sc = scale?[0], let sh = shift?[0], residual == nil, preactivation == nil {
            for m in m0..<m1 { out[m] = A.f(inp[m] * sc + sh) }   // one channel (CBAM's spatial gate): along the rows
        } else if let sc = scale, let sh = shift {
            switch (residual, preactivation) {
            case let (r?, nil):
                for m in m0..<m1 {
                    let i = inp + m * C, o = out + m * C, r = r + m * C
                    for c in 0..<C { o[c] = A.f(i[c] * sc[c] + sh[c] + r[c]) }
                }
            case (nil, nil):
                for m in m0..<m1 {
                    let i = inp + m * C, o = out + m * C
                    for c in 0..<C { o[c] = A.f(i[c] * sc[c] + sh[c]) }
                }
            case let (r?, z?):
                for m in m0..<m1 {
                    let i = inp + m * C, o = out + m * C, r = r + m * C, z = z + m * C
                    for c in 0..<C { let v = i[c] * sc[c] + sh[c] + r[c]; z[c] = v; o[c] = A.f(v) }
                }
            case let (nil, z?):
                for m in m0..<m1 {
                    let i = inp + m * C, o = out + m * C, z = z + m * C
                    for c in 0..<C { let v = i[c] * sc[c] + sh[c]; z[c] = v; o[c] = A.f(v) }
                }
            }
        } else {
            precondition(scale == nil && shift == nil, "scale and shift come together")
            let n0 = m0 * C, n1 = m1 * C
            switch (residual, preactivation) {
            case let (r?, nil): for i in n0..<n1 { out[i] = A.f(inp[i] + r[i]) }
            case (nil, nil): for i in n0..<n1 { out[i] = A.f(inp[i]) }
            case let (r?, z?): for i in n0..<n1 { let v = inp[i] + r[i]; z[i] = v; out[i] = A.f(v) }
            case let (nil, z?): for i in n0..<n1 { let v = inp[i]; z[i] = v; out[i] = A.f(v) }
            }
        }
    }
    @inline(__always) func run<A: ActivationFunction>(_ a: A.Type) {
        forRowChunks(M, workers: rowWorkers(M, rowCost: C, workers: workers)) { _, m0, m1 in rows(a, m0, m1) }
    }
    switch act {
    case .identity: run(IdentityActivation.self)
    case .relu: run(ReLUActivation.self)
    case .leakyReLU: run(LeakyReLUActivation.self)
    case .elu: run(ELUActivation.self)
    case .silu: run(SiLUActivation.self)
    case .sigmoid: run(SigmoidActivation.self)
    }
}

/// out = act(y * channelGate[n, c] (* spatialGate[n, p]) + residual), over
/// the P pixels of each of N images: the output pass of attention (SE has no
/// spatial gate; CBAM has both, applied in that order as its authors' code
/// does). With `preactivation`, act's argument is written there too.
func gatedActivationForward(
    _ act: Nonlinearity,
    _ out: UnsafeMutablePointer<Float>,            // [N, P, C]
    preactivation: UnsafeMutablePointer<Float>?,   // [N, P, C] written, or nil
    _ y: UnsafePointer<Float>,                     // [N, P, C]
    channelGate: UnsafePointer<Float>,             // [N, C]
    spatialGate: UnsafePointer<Float>?,            // [N, P] or nil
    residual: UnsafePointer<Float>?,               // [N, P, C] or nil
    N: Int, P: Int, C: Int, workers: Int
) {
    @inline(__always) func run<A: ActivationFunction>(_: A.Type) {
        forRowChunks(N * P, workers: rowWorkers(N * P, rowCost: C, workers: workers)) { _, m0, m1 in
            for m in m0..<m1 {
                let i = y + m * C, o = out + m * C, g = channelGate + (m / P) * C
                let s = spatialGate?[m] ?? 1   // (y g) 1 is y g exactly
                switch (residual, preactivation) {
                case let (r?, nil):
                    let r = r + m * C
                    for c in 0..<C { o[c] = A.f(i[c] * g[c] * s + r[c]) }
                case (nil, nil):
                    for c in 0..<C { o[c] = A.f(i[c] * g[c] * s) }
                case let (r?, z?):
                    let r = r + m * C, z = z + m * C
                    for c in 0..<C { let v = i[c] * g[c] * s + r[c]; z[c] = v; o[c] = A.f(v) }
                case let (nil, z?):
                    let z = z + m * C
                    for c in 0..<C { let v = i[c] * g[c] * s; z[c] = v; o[c] = A.f(v) }
                }
            }
        }
    }
    switch act {
    case .identity: run(IdentityActivation.self)
    case .relu: run(ReLUActivation.self)
    case .leakyReLU: run(LeakyReLUActivation.self)
    case .elu: run(ELUActivation.self)
    case .silu: run(SiLUActivation.self)
    case .sigmoid: run(SigmoidActivation.self)
    }
}

/// dinp = dout * act'(z), written, from the forward's output and (SiLU)
/// its input z; dinp may be dout (in place). Elementwise over `count`.
public func activationBackward(
    _ act: Nonlinearity,
    _ dinp: UnsafeMutablePointer<Float>,  // [count] written
    _ dout: UnsafePointer<Float>,         // [count]
    inp: UnsafePointer<Float>,            // [count] the forward's input z (read by SiLU only; pass out otherwise)
    out: UnsafePointer<Float>,            // [count] the forward's output
    count: Int, workers: Int = 1
) {
    @inline(__always) func run<A: ActivationFunction>(_: A.Type) {
        forRowChunks(count, workers: rowWorkers(count, rowCost: 1, workers: workers)) { _, i0, i1 in
            for i in i0..<i1 { dinp[i] = A.backward(dout[i], z: inp[i], out: out[i]) }
        }
    }
    switch act {
    case .identity: if UnsafePointer(dinp) != dout { dinp.update(from: dout, count: count) }
    case .relu: run(ReLUActivation.self)
    case .leakyReLU: run(LeakyReLUActivation.self)
    case .elu: run(ELUActivation.self)
    case .silu: run(SiLUActivation.self)
    case .sigmoid: run(SigmoidActivation.self)
    }
}

/// out = act(inp) elementwise (the head's fc1; the attention gates). out may be inp.
public func activationForward(
    _ act: Nonlinearity,
    _ out: UnsafeMutablePointer<Float>,   // [count]
    _ inp: UnsafePointer<Float>,          // [count]
    count: Int
) {
    affineActivationForward(act, out, preactivation: nil, inp, scale: nil, shift: nil, residual: nil, M: count, C: 1, workers: 1)
}
