import Faces
import Foundation

// Procedurally drawn faces standing in for RAF-DB, which is licensed and not
// shipped. The design goal is scientific rather than pretty: the expression
// must live only in the parts of the face where real expressions live (brows,
// eyes, the nose-wrinkle zone, the mouth), at varying and sometimes subtle
// intensity, while everything a shortcut could latch onto (skin, hair,
// background, framing, lighting, occluders, camera) is drawn from a random
// stream that never sees the expression. Labels come from simulated crowd
// votes, so, as in RAF-DB, a majority label can disagree with what was drawn.

/// One rendered synthetic face with its labels and ground-truth geometry.
public struct SyntheticFace: Sendable {
    public var size: Int                 // image side in pixels
    public var rgb: [UInt8]              // size*size*3, row-major, RGB
    public var expression: Int           // the expression that was drawn, RAF-DB code 1...7
    public var distribution: [Float]     // 7 entries summing to 1, RAF-DB code order
    public var label: Int                // majority of `distribution` (RAF code 1...7)
    public var landmarks: [SIMD2<Float>] // left eye, right eye, nose tip, left mouth corner, right mouth corner
    public var mask: [UInt8]             // size*size, 255 inside the expressive regions

    public init(size: Int, rgb: [UInt8], expression: Int, distribution: [Float], label: Int,
                landmarks: [SIMD2<Float>], mask: [UInt8]) {
        self.size = size
        self.rgb = rgb
        self.expression = expression
        self.distribution = distribution
        self.label = label
        self.landmarks = landmarks
        self.mask = mask
    }
}

public enum SyntheticFaces {
    /// RAF-DB basic's class prior (train counts by code 1..7): 1290, 281, 717, 4772, 1982, 705, 2524.
    public static let prior: [Double] = {
        let counts: [Double] = [1290, 281, 717, 4772, 1982, 705, 2524]
        let total = counts.reduce(0, +)
        return counts.map { $0 / total }
    }()

    /// Deterministic in (seed, index): the same arguments always give the same face, bit for bit, on any thread.
    /// `expression` forces the drawn expression (1...7); nil samples it from `prior`.
    public static func render(seed: UInt64, index: Int, size: Int = 100, expression: Int? = nil) -> SyntheticFace {
        precondition(size >= 16, "SyntheticFaces.render: size must be at least 16")
        precondition(expression.map { (1...7).contains($0) } ?? true, "SyntheticFaces.render: expression must be 1...7")

        // Separate streams: the person, scene and camera never depend on the
        // expression, so no nuisance statistic can carry the label, and
        // forcing an expression changes only the face's movements.
        var exprRNG = FaceRNG(seed: seed, index: index, stream: 1)
        var lookRNG = FaceRNG(seed: seed, index: index, stream: 2)
        var sceneRNG = FaceRNG(seed: seed, index: index, stream: 3)
        var voteRNG = FaceRNG(seed: seed, index: index, stream: 4)
        var noiseRNG = FaceRNG(seed: seed, index: index, stream: 5)

        // Always consume the prior draw, so that a forced expression equal to
        // the sampled one reproduces the unforced face exactly.
        let sampled = exprRNG.pick(prior) + 1
        let code = expression ?? sampled
        let act = ExpressionAct.sample(code: code, rng: &exprRNG)
        let look = Look.sample(size: size, rng: &lookRNG)

        var motion = act.motion
        motion.v += look.restingMotion.v
        let layout = FaceLayout(look: look, motion: motion)

        let raster = Raster(size: size)
        let painter = FacePainter(raster: raster, look: look, layout: layout, motion: motion)
        painter.drawScene(rng: &sceneRNG)
        painter.drawPerson()
        painter.markExpressiveRegions()

        raster.blur(amount: look.camera.blur)
        if look.camera.blur > 1 { raster.blur(amount: look.camera.blur - 1) }
        var rgb = [UInt8](repeating: 0, count: size * size * 3)
        raster.develop(into: &rgb, lightDirection: look.camera.lightDirection, lightStrength: look.camera.lightStrength,
                       whiteBalance: look.camera.whiteBalance, exposure: look.camera.exposure,
                       saturation: look.camera.saturation, noiseSigma: look.camera.noise, rng: &noiseRNG)

        var mask = [UInt8](repeating: 0, count: size * size)
        for i in 0..<(size * size) where raster.region[i] > 0.5 && raster.visible[i] > 0.5 {
            mask[i] = 255
        }

        let distribution = CrowdVotes.distribution(for: act, rng: &voteRNG)
        var label = code
        for c in 1...7 where distribution[c - 1] > distribution[label - 1] { label = c }

        let t = raster.transform
        let landmarks = [
            t.apply(layout.eyes[0].center), t.apply(layout.eyes[1].center), t.apply(layout.noseTip),
            t.apply(layout.mouth.left), t.apply(layout.mouth.right),
        ]
        return SyntheticFace(size: size, rgb: rgb, expression: code, distribution: distribution, label: label,
                             landmarks: landmarks, mask: mask)
    }
}

// MARK: - Expression model

/// Facial movements as additive offsets from a relaxed face (face units are
/// fractions of the face's half height). Additivity is what lets an
/// expression be scaled by intensity and blended with a look-alike one.
struct FaceMotion {
    enum Channel: Int {
        case browLift        // whole brow up (+)
        case browInner       // inner end up (+) or down (-) relative to the brow
        case browTogether    // inner ends pulled toward the midline
        case browArch        // extra arch
        case eyeOpen         // relative change of the lid opening
        case lowerLid        // lower lid pushed up (cheek raise, squint)
        case lidSlant        // + opens the inner part of the upper lid (sad), - the outer (glare)
        case noseWrinkle     // lines across the nose bridge, nostrils lifted
        case glabella        // vertical frown lines between the brows
        case cheekRaise      // crease under the lower lid
        case mouthWidth      // relative change of the mouth width
        case cornerLift      // mouth corners up (+) or down (-)
        case mouthOpen       // gap between the lips at the centre
        case mouthRound      // opening shaped like an O
        case mouthSquare     // opening shaped like a box
        case upperLipRaise   // upper lip lifted off the teeth
        case lipAsym         // side of the upper-lip raise (-1 left, +1 right)
        case teethUpper      // visibility of the upper teeth in the opening
        case teethLower      // visibility of the lower teeth
        case lipPress        // lips pressed thin
        case lowerLipPush    // lower lip pushed up (pout, chin raise)
    }

    var v = SIMD32<Float>()

    subscript(_ c: Channel) -> Float {
        get { v[c.rawValue] }
        set { v[c.rawValue] = newValue }
    }

    init() {}

    init(_ values: [Channel: Float]) {
        for (c, x) in values { v[c.rawValue] = x }
    }

    /// The full-intensity movements of one expression. `variant` picks one of
    /// the common forms (open vs closed smile, pressed vs bared-teeth anger,
    /// side of the disgust sneer).
    static func prototype(_ code: Int, variant: Int) -> FaceMotion {
        switch code {
        case Emotion.surprise.rafCode:
            return FaceMotion([.browLift: 0.12, .browInner: 0.015, .browArch: 0.035, .eyeOpen: 0.7,
                               .mouthOpen: 0.21, .mouthRound: 1, .mouthWidth: -0.38, .teethLower: 0.25])
        case Emotion.fear.rafCode:
            return FaceMotion([.browLift: 0.075, .browInner: 0.055, .browTogether: 0.035, .browArch: -0.015,
                               .eyeOpen: 0.65, .lowerLid: 0.15, .lidSlant: 0.3, .glabella: 0.35,
                               .mouthOpen: 0.085, .mouthWidth: 0.25, .cornerLift: -0.03, .mouthSquare: 0.8,
                               .teethLower: 1, .teethUpper: 0.5, .upperLipRaise: 0.2])
        case Emotion.disgust.rafCode:
            return FaceMotion([.browLift: -0.045, .browInner: -0.02, .browTogether: 0.025, .eyeOpen: -0.4,
                               .lowerLid: 0.65, .lidSlant: -0.2, .noseWrinkle: 1, .glabella: 0.45, .cheekRaise: 0.5,
                               .upperLipRaise: 1, .lipAsym: variant == 0 ? -1 : 1, .cornerLift: -0.03,
                               .mouthOpen: 0.012, .teethUpper: 1, .lowerLipPush: 0.35, .mouthWidth: -0.06])
        case Emotion.happiness.rafCode:
            var m = FaceMotion([.browLift: 0.01, .eyeOpen: -0.3, .lowerLid: 1.0, .cheekRaise: 1,
                                .cornerLift: 0.08, .mouthWidth: 0.24])
            if variant == 1 {
                m[.mouthOpen] = 0.075; m[.teethUpper] = 1; m[.upperLipRaise] = 0.25; m[.mouthWidth] = 0.3
            }
            return m
        case Emotion.sadness.rafCode:
            return FaceMotion([.browInner: 0.08, .browTogether: 0.03, .browArch: -0.012, .eyeOpen: -0.2,
                               .lidSlant: 0.7, .glabella: 0.2, .cornerLift: -0.06, .lowerLipPush: 1,
                               .lipPress: 0.25, .mouthWidth: -0.06])
        case Emotion.anger.rafCode:
            var m = FaceMotion([.browLift: -0.05, .browInner: -0.07, .browTogether: 0.055, .browArch: -0.02,
                                .eyeOpen: -0.2, .lowerLid: 0.55, .lidSlant: -0.7, .glabella: 1, .noseWrinkle: 0.3,
                                .lipPress: 1, .mouthWidth: -0.16, .cornerLift: -0.02, .lowerLipPush: 0.5])
            if variant == 1 {
                m[.lipPress] = 0.3; m[.lowerLipPush] = 0; m[.mouthWidth] = 0.02
                m[.mouthOpen] = 0.07; m[.mouthSquare] = 1; m[.teethUpper] = 1; m[.teethLower] = 1
                m[.upperLipRaise] = 0.35
            }
            return m
        default:
            return FaceMotion()
        }
    }

    static func variantCount(_ code: Int) -> Int {
        switch code {
        case Emotion.disgust.rafCode, Emotion.happiness.rafCode, Emotion.anger.rafCode: return 2
        default: return 1
        }
    }
}

/// Which expression was drawn, how strongly, and which look-alike expression
/// was mixed in (the source of genuine crowd disagreement).
struct ExpressionAct {
    var code: Int
    var intensity: Float          // 0 for neutral
    var partner: Int?             // blended-in confusable expression
    var partnerWeight: Float
    var motion: FaceMotion

    /// Realistic confusions, in the spirit of RAF-DB's crowd labels.
    static func confusions(_ code: Int) -> [(Int, Float)] {
        switch code {
        case Emotion.surprise.rafCode: return [(Emotion.fear.rafCode, 0.5), (Emotion.happiness.rafCode, 0.2), (Emotion.rafNeutral, 0.3)]
        case Emotion.fear.rafCode:
            return [(Emotion.surprise.rafCode, 0.6), (Emotion.sadness.rafCode, 0.2), (Emotion.disgust.rafCode, 0.1),
                    (Emotion.anger.rafCode, 0.1)]
        case Emotion.disgust.rafCode: return [(Emotion.anger.rafCode, 0.45), (Emotion.sadness.rafCode, 0.3), (Emotion.rafNeutral, 0.25)]
        case Emotion.happiness.rafCode:
            return [(Emotion.rafNeutral, 0.7), (Emotion.surprise.rafCode, 0.15), (Emotion.disgust.rafCode, 0.15)]
        case Emotion.sadness.rafCode: return [(Emotion.rafNeutral, 0.6), (Emotion.fear.rafCode, 0.15), (Emotion.disgust.rafCode, 0.25)]
        case Emotion.anger.rafCode: return [(Emotion.disgust.rafCode, 0.6), (Emotion.sadness.rafCode, 0.2), (Emotion.rafNeutral, 0.2)]
        default:
            return [(Emotion.sadness.rafCode, 0.5), (Emotion.happiness.rafCode, 0.2), (Emotion.anger.rafCode, 0.15),
                    (Emotion.disgust.rafCode, 0.15)]
        }
    }

    static func sample(code: Int, rng: inout FaceRNG) -> ExpressionAct {
        // Skewed toward clear expressions but with a real tail of subtle ones.
        let intensity: Float = code == Emotion.rafNeutral ? 0 : 0.22 + 0.78 * powf(rng.uniform(), 0.75)
        var motion = FaceMotion.prototype(code, variant: rng.int(FaceMotion.variantCount(code)))
        motion.v *= code == Emotion.rafNeutral ? 0 : intensity

        // The partner is drawn whether or not it is used, so every face
        // consumes the same number of draws and stays comparable across runs.
        var partner: Int?
        var weight: Float = 0
        let partnerRoll = rng.uniform()
        let conf = confusions(code)
        let pick = conf[rng.pick(conf.map { Double($0.1) })].0
        let w = rng.uniform(0.08, 0.45)
        let partnerVariant = rng.int(FaceMotion.variantCount(pick))
        if partnerRoll < 0.5 {
            partner = pick
            weight = w * (code == Emotion.rafNeutral ? 0.8 : (1.1 - 0.75 * intensity))
            var extra = FaceMotion.prototype(pick, variant: partnerVariant)
            extra.v *= weight
            motion.v += extra.v
        }

        // Small per-image wobble, so no two faces of a class are identical.
        for c: FaceMotion.Channel in [.browLift, .browInner, .cornerLift] { motion[c] += rng.normal(0.006) }
        motion[.eyeOpen] += rng.normal(0.05)
        motion[.mouthOpen] = max(0, motion[.mouthOpen] + rng.normal(0.004))
        return ExpressionAct(code: code, intensity: intensity, partner: partner, partnerWeight: weight, motion: motion)
    }
}

/// ~40 simulated annotators per image, as RAF-DB had.
enum CrowdVotes {
    static let annotators = 40

    static func distribution(for act: ExpressionAct, rng: inout FaceRNG) -> [Float] {
        var w = [Float](repeating: 0.015, count: 7)
        let strong = act.code == Emotion.rafNeutral ? 1.0 : 0.25 + 1.0 * act.intensity
        w[act.code - 1] += strong
        // Weakly expressed faces are more ambiguous even without a blend.
        let ambiguity: Float = act.code == Emotion.rafNeutral ? 0.3 : 0.25 + 0.35 * (1 - act.intensity)
        for (c, x) in ExpressionAct.confusions(act.code) { w[c - 1] += ambiguity * x }
        if let p = act.partner { w[p - 1] += 2.4 * act.partnerWeight }
        // Annotators differ in their thresholds: jitter the shares per image.
        for i in 0..<7 { w[i] *= rng.uniform(0.8, 1.25) }

        let total = w.reduce(0, +)
        var votes = [Float](repeating: 0, count: 7)
        for _ in 0..<annotators {
            var r = rng.uniform() * total
            var c = 6
            for i in 0..<7 {
                r -= w[i]
                if r < 0 { c = i; break }
            }
            votes[c] += 1
        }
        return votes.map { $0 / Float(annotators) }
    }
}

// MARK: - Appearance (everything that must not carry the label)

struct Look {
    struct Camera {
        var pixelsPerUnit: Float
        var angle: Float
        var origin: V2
        var lightDirection: V2
        var lightStrength: Float
        var whiteBalance: C3
        var exposure: Float
        var saturation: Float
        var blur: Float            // 0...2: passes of a [1 2 1] blur, fractional = blended
        var noise: Float
    }

    enum HairStyle { case bald, short, long }
    enum Hand { case none, lower, upper }

    var camera: Camera
    var skin: C3
    var lip: C3
    var hair: C3
    var brow: C3
    var iris: C3
    var clothes: C3

    // Face shape and feature placement (identity).
    var faceHalfWidth: Float
    var jaw: Float
    var eyeSpacing: Float
    var eyeY: Float
    var eyeSize: Float
    var eyeTilt: Float
    var eyeOpening: Float
    var browGap: Float
    var browLength: Float
    var browThickness: Float
    var browArch: Float
    var browHeight: Float
    var noseTipY: Float
    var noseWidth: Float
    var mouthY: Float
    var mouthWidth: Float
    var lipThickness: Float
    var yaw: Float
    var gaze: V2
    var restingMotion: FaceMotion

    var hairStyle: HairStyle
    var hairline: Float
    var hairCurve: Float
    var hairTilt: Float
    var hairLength: Float
    var hairVolume: Float
    var sideLocks: Bool
    var glasses: Bool
    var glassesColor: C3
    var glassesShape: V2
    var hand: Hand
    var handSide: Float
    var handReach: Float
    var handTone: C3

    static func sample(size: Int, rng: inout FaceRNG) -> Look {
        let s = Float(size)
        // Camera framing: the face oval spans 55-80% of the crop; the eyes sit
        // near 40% of the height, as in aligned crops, give or take.
        let fill = rng.uniform(0.55, 0.8)
        let unit = fill * s * 0.5
        let angle = rng.uniform(-10, 10) * .pi / 180
        let shift = V2(rng.uniform(-0.05, 0.05), rng.uniform(-0.045, 0.045)) * s
        let origin = V2(0.5 * s, 0.41 * s + 0.1 * unit) + shift
        let lightAngle = rng.uniform(0, 2 * .pi)
        let blurRoll = rng.uniform()
        let blur: Float = blurRoll < 0.4 ? 0 : (blurRoll < 0.85 ? rng.uniform(0.3, 1) : rng.uniform(1.1, 1.6))
        let grey = rng.chance(0.06)
        let camera = Camera(pixelsPerUnit: unit, angle: angle, origin: origin,
                            lightDirection: V2(cosf(lightAngle), sinf(lightAngle)),
                            lightStrength: rng.uniform(0, 0.7),
                            whiteBalance: C3(rng.uniform(0.9, 1.1), 1, rng.uniform(0.88, 1.1)),
                            exposure: rng.uniform(0.8, 1.12),
                            saturation: grey ? 0 : rng.uniform(0.75, 1.2),
                            blur: blur, noise: rng.uniform(0.003, 0.025))

        let skin = skinTone(rng.uniform(), rng: &rng)
        let lip = skin * C3(rng.uniform(0.8, 0.9), rng.uniform(0.46, 0.58), rng.uniform(0.48, 0.6)) + C3(0.05, 0, 0.01)
        let hair = hairColor(rng: &rng)
        let browBase = mix(hair, C3(0.08, 0.06, 0.05), rng.uniform(0.3, 0.7))
        let brow = pointwiseMin(browBase, skin * 0.55)
        let irises: [C3] = [C3(0.22, 0.13, 0.07), C3(0.35, 0.21, 0.1), C3(0.42, 0.36, 0.18),
                            C3(0.28, 0.42, 0.58), C3(0.3, 0.42, 0.3), C3(0.38, 0.42, 0.46)]
        let iris = irises[rng.pick([4, 3, 1.2, 1.2, 0.8, 0.8])]
        let clothes = C3(rng.uniform(0.05, 0.9), rng.uniform(0.05, 0.9), rng.uniform(0.05, 0.9))

        var rest = FaceMotion()
        rest[.browLift] = rng.normal(0.012)
        rest[.browInner] = rng.normal(0.01)
        rest[.cornerLift] = rng.normal(0.008)
        rest[.eyeOpen] = rng.normal(0.07)
        rest[.mouthWidth] = rng.normal(0.04)
        rest[.lidSlant] = rng.normal(0.1)

        let styleRoll = rng.uniform()
        let hairStyle: HairStyle = styleRoll < 0.07 ? .bald : (styleRoll < 0.5 ? .short : .long)
        let bangs = rng.chance(0.15)
        let hairline = bangs ? rng.uniform(-0.5, -0.38) : rng.uniform(-0.82, -0.55)

        let handRoll = rng.uniform()
        let hand: Hand = handRoll < 0.045 ? .lower : (handRoll < 0.07 ? .upper : .none)

        return Look(
            camera: camera, skin: skin, lip: lip, hair: hair, brow: brow, iris: iris, clothes: clothes,
            faceHalfWidth: rng.uniform(0.66, 0.8), jaw: rng.uniform(-0.2, 0.4),
            eyeSpacing: rng.uniform(0.3, 0.34), eyeY: rng.uniform(-0.13, -0.07),
            eyeSize: rng.uniform(0.88, 1.12), eyeTilt: rng.uniform(-0.01, 0.025), eyeOpening: rng.uniform(0.85, 1.15),
            browGap: rng.uniform(0.08, 0.115), browLength: rng.uniform(0.9, 1.08),
            browThickness: rng.uniform(0.75, 1.3), browArch: rng.uniform(0.4, 1.4), browHeight: rng.uniform(0.17, 0.2),
            noseTipY: rng.uniform(0.22, 0.29), noseWidth: rng.uniform(0.85, 1.2),
            mouthY: rng.uniform(0.5, 0.56), mouthWidth: rng.uniform(0.9, 1.1), lipThickness: rng.uniform(0.7, 1.3),
            yaw: rng.uniform(-1, 1), gaze: V2(rng.normal(0.01), rng.normal(0.006)), restingMotion: rest,
            hairStyle: hairStyle, hairline: hairline, hairCurve: rng.uniform(0.8, 1.5),
            hairTilt: rng.uniform(-0.15, 0.15), hairLength: rng.uniform(0, 1), hairVolume: rng.uniform(0, 1),
            sideLocks: hairStyle == .long && rng.chance(0.5),
            glasses: rng.chance(0.15),
            glassesColor: [C3(0.05, 0.05, 0.05), C3(0.3, 0.18, 0.1), C3(0.6, 0.6, 0.62), C3(0.5, 0.1, 0.1)][rng.int(4)],
            glassesShape: V2(rng.uniform(0.04, 0.07), rng.uniform(0.065, 0.095)),
            hand: hand, handSide: rng.chance(0.5) ? -1 : 1, handReach: rng.uniform(0, 1),
            handTone: C3(rng.uniform(0.92, 1.06), rng.uniform(0.9, 1.04), rng.uniform(0.88, 1.04)))
    }

    /// Light to dark along a realistic skin axis, plus a little hue jitter.
    static func skinTone(_ t: Float, rng: inout FaceRNG) -> C3 {
        let stops: [C3] = [C3(0.98, 0.86, 0.77), C3(0.93, 0.75, 0.63), C3(0.8, 0.58, 0.44),
                           C3(0.58, 0.39, 0.27), C3(0.34, 0.22, 0.16)]
        let x = t * Float(stops.count - 1)
        let i = min(Int(x), stops.count - 2)
        let c = mix(stops[i], stops[i + 1], x - Float(i))
        return c * C3(rng.uniform(0.96, 1.04), rng.uniform(0.96, 1.03), rng.uniform(0.94, 1.04))
    }

    static func hairColor(rng: inout FaceRNG) -> C3 {
        let palette: [C3] = [C3(0.05, 0.04, 0.035), C3(0.17, 0.11, 0.07), C3(0.35, 0.22, 0.13),
                             C3(0.72, 0.58, 0.36), C3(0.5, 0.22, 0.1), C3(0.6, 0.6, 0.6)]
        let c = palette[rng.pick([4, 3, 2, 1, 0.6, 0.6])]
        return c * rng.uniform(0.85, 1.15)
    }
}

// MARK: - Layout (feature geometry in face units)

/// Face units: origin at the centre of the face oval, y down, the oval's half
/// height is 1. Negative x is image left.
struct FaceLayout {
    struct Eye {
        var side: Float          // -1 image left, +1 image right
        var center: V2
        var halfWidth: Float
        var upper: [V2]          // inner corner -> outer corner
        var lower: [V2]
        var crease: [V2]
        var cheek: [V2]          // crease under the lower lid
        var iris: V2
        var irisRadius: Float
        var opening: [V2] { upper + lower.reversed().dropFirst().dropLast() }
    }

    struct Brow {
        var points: [V2]         // inner -> outer
        var halfWidths: [Float]
    }

    struct Mouth {
        var left: V2, right: V2
        var upperOuter: [V2], upperInner: [V2], lowerInner: [V2], lowerOuter: [V2]
        var gap: Float           // largest lip separation
        var lips: [V2] { upperOuter + lowerOuter.reversed().dropFirst().dropLast() }
        var opening: [V2] { upperInner + lowerInner.reversed().dropFirst().dropLast() }
        var upperLip: [V2] { upperOuter + upperInner.reversed().dropFirst().dropLast() }
    }

    var eyes: [Eye]
    var brows: [Brow]
    var noseTip: V2
    var noseBridgeX: Float
    var mouth: Mouth

    init(look: Look, motion m: FaceMotion) {
        var eyes = [Eye](), brows = [Brow]()
        for side: Float in [-1, 1] {
            eyes.append(FaceLayout.eye(side: side, look: look, m: m))
            brows.append(FaceLayout.brow(side: side, look: look, m: m))
        }
        self.eyes = eyes
        self.brows = brows
        noseTip = V2(look.yaw * 0.15, look.noseTipY)
        noseBridgeX = look.yaw * 0.08
        mouth = FaceLayout.mouth(look: look, m: m)
    }

    static func eye(side s: Float, look: Look, m: FaceMotion) -> Eye {
        // The nearer eye (yaw) is slightly larger; features slide with yaw.
        let hw = 0.145 * look.eyeSize * (1 + 0.1 * s * look.yaw)
        let c = V2(s * look.eyeSpacing + look.yaw * 0.07, look.eyeY)
        let inner = V2(c.x - s * hw, c.y + 0.008)
        let outer = V2(c.x + s * hw, c.y - look.eyeTilt)
        let open = max(0.25, 1 + m[.eyeOpen])
        let hu = 0.056 * look.eyeOpening * open * look.eyeSize
        let hl = (0.034 * (0.7 + 0.3 * open) - 0.034 * m[.lowerLid]) * look.eyeSize
        let slant = m[.lidSlant]
        let n = 10
        var upper = [V2](), lower = [V2](), crease = [V2](), cheek = [V2]()
        for i in 0...n {
            let u = Float(i) / Float(n)
            let base = mix(inner, outer, u)
            let b = sinf(.pi * u)
            let skew = max(0.25, 1 + 0.45 * slant * (1 - 2 * u))
            let up = base.y - hu * b * skew
            // The lids never cross: a squint leaves a slit, not nothing.
            let lo = max(base.y + hl * powf(b, 1.2), up + 0.008 * b)
            upper.append(V2(base.x, up))
            lower.append(V2(base.x, lo))
            // Crease rides above the lid; a wide-open eye pulls it close.
            let creaseGap: Float = 0.02 + 0.025 * max(0, 1.3 - open) / 1.3
            crease.append(V2(base.x, up - creaseGap * (0.4 + 0.6 * b) - 0.008))
            cheek.append(V2(base.x, lo + (0.022 + 0.01 * m[.lowerLid]) * (0.5 + 0.5 * b)))
        }
        let iris = c + look.gaze + V2(0, 0.004)
        return Eye(side: s, center: c, halfWidth: hw, upper: upper, lower: lower,
                   crease: Array(crease[1..<n]), cheek: Array(cheek[2..<n]),
                   iris: iris, irisRadius: 0.056 * look.eyeSize)
    }

    static func brow(side s: Float, look: Look, m: FaceMotion) -> Brow {
        let shift = look.yaw * 0.065
        let innerX = s * max(0.05, look.browGap - m[.browTogether]) + shift
        let outerX = s * (look.browGap + 0.4 * look.browLength) + shift
        let baseY = look.eyeY - look.browHeight - m[.browLift]
        let inner = V2(innerX, baseY - m[.browInner] + 0.012)
        let outer = V2(outerX, baseY + 0.025 + 0.35 * m[.browInner] - 0.25 * max(0, m[.browLift]))
        let arch = 0.026 * look.browArch + m[.browArch]
        let n = 8
        var pts = [V2](), widths = [Float]()
        for i in 0...n {
            let u = Float(i) / Float(n)
            let p = mix(inner, outer, u) - V2(0, arch * sinf(.pi * min(u * 1.15, 1)))
            pts.append(p)
            widths.append(mix(0.03, 0.012, powf(u, 1.4)) * look.browThickness)
        }
        return Brow(points: pts, halfWidths: widths)
    }

    static func mouth(look: Look, m: FaceMotion) -> Mouth {
        let cx = look.yaw * 0.09
        let w = 0.24 * look.mouthWidth * max(0.5, 1 + m[.mouthWidth])
        let raise = max(0, m[.upperLipRaise])
        let asym = max(-1, min(1, m[.lipAsym]))
        // A one-sided sneer also lifts that side's corner a little.
        let leftY = look.mouthY - m[.cornerLift] - 0.02 * raise * max(0, -asym)
        let rightY = look.mouthY - m[.cornerLift] - 0.02 * raise * max(0, asym)
        let left = V2(cx - w, leftY), right = V2(cx + w, rightY)
        let open = max(0, m[.mouthOpen])
        let pout = 0.014 * max(0, m[.lowerLipPush])
        let round = clamp01(m[.mouthRound]), square = clamp01(m[.mouthSquare]) * (1 - round)
        let smile = clamp01(m[.cornerLift] / 0.08)
        let thin = (1 - 0.65 * clamp01(m[.lipPress])) * (1 - 0.3 * smile) * look.lipThickness
        let tU = 0.042 * thin
        let tL = 0.058 * thin * (1 + 0.3 * clamp01(m[.lowerLipPush]))
        let upperMid = look.mouthY - 0.25 * open - pout
        let lowerMid = look.mouthY + 0.75 * open - pout

        let n = 14
        var uo = [V2](), ui = [V2](), li = [V2](), lo = [V2]()
        var gap: Float = 0
        for i in 0...n {
            let u = -1 + 2 * Float(i) / Float(n)
            let x = cx + w * u
            let baseline = mix(leftY, rightY, (u + 1) / 2)
            let cornerMid = (leftY + rightY) / 2
            let parab = 1 - u * u
            let ellip = max(0, 1 - u * u).squareRoot()
            let box = 1 - powf(abs(u), 6)
            let prof = (1 - round - square) * parab + round * ellip + square * box
            let lift = 0.04 * raise * (1 - u * u) * (1 + 0.9 * asym * u)
            let yUI = baseline + (upperMid - cornerMid) * prof - lift
            let yLI = max(yUI, baseline + (lowerMid - cornerMid) * prof)
            let lipProf = powf(max(0, 1 - u * u * u * u), 0.7)
            let bow = tU * (0.3 * expf(-(u * u) / 0.02) - 0.12 * expf(-((abs(u) - 0.3) * (abs(u) - 0.3)) / 0.02))
            uo.append(V2(x, yUI - tU * lipProf + bow))
            ui.append(V2(x, yUI))
            li.append(V2(x, yLI))
            lo.append(V2(x, yLI + tL * powf(max(0, 1 - u * u), 0.6)))
            gap = max(gap, yLI - yUI)
        }
        return Mouth(left: left, right: right, upperOuter: uo, upperInner: ui, lowerInner: li, lowerOuter: lo, gap: gap)
    }
}

// MARK: - Painter

/// Draws one face, back to front. Every part is its own function so that a
/// reader can find, say, the brow without reading the mouth.
struct FacePainter {
    let raster: Raster
    let look: Look
    let layout: FaceLayout
    let motion: FaceMotion

    init(raster: Raster, look: Look, layout: FaceLayout, motion: FaceMotion) {
        self.raster = raster
        self.look = look
        self.layout = layout
        self.motion = motion
    }

    private var skin: C3 { look.skin }
    private func shade(_ f: Float) -> RasterInk { .scale(C3(f, f * 0.97, f * 0.95)) }

    // MARK: Scene

    /// Background clutter in pixel space: a gradient wall and random shapes,
    /// from a stream of its own.
    func drawScene(rng: inout FaceRNG) {
        raster.setTransform(.identity)
        let s = Float(raster.size)
        func color(_ rng: inout FaceRNG) -> C3 {
            let c = C3(rng.uniform(0.05, 0.95), rng.uniform(0.05, 0.95), rng.uniform(0.05, 0.95))
            let grey = (c.x + c.y + c.z) / 3
            return mix(C3(repeating: grey), c, rng.uniform(0.2, 1))
        }
        let a = rng.uniform(0, 2 * .pi)
        let dir = V2(cosf(a), sinf(a)) * s * 0.5
        raster.fillGradient(color(&rng), color(&rng), from: V2(s / 2, s / 2) - dir, to: V2(s / 2, s / 2) + dir)
        let count = 2 + rng.int(6)
        for _ in 0..<count {
            let c = V2(rng.uniform(-0.1, 1.1), rng.uniform(-0.1, 1.1)) * s
            let r = V2(rng.uniform(0.06, 0.45), rng.uniform(0.06, 0.45)) * s
            let ang = rng.uniform(0, .pi)
            let opacity = rng.uniform(0.5, 1)
            let col = color(&rng)
            switch rng.int(5) {
            case 0:
                raster.paint(.ellipse(center: c, radii: r, angle: ang), col, opacity: opacity, soft: rng.uniform(1, 3))
            case 1:
                raster.paint(.rect(center: c, half: r, angle: ang), col, opacity: opacity, soft: 1)
            case 2:
                let d = V2(cosf(ang), sinf(ang))
                raster.paint(.rect(center: c, half: r, angle: ang),
                             .stripes(col, color(&rng), direction: d, period: rng.uniform(4, 14)),
                             opacity: opacity, soft: 1)
            case 3:
                let e = c + V2(rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.6)) * s
                raster.paint(.line(c, e, rng.uniform(0.5, 3)), col, opacity: opacity, soft: 1)
            default:
                // A soft out-of-focus blob.
                raster.paint(.ellipse(center: c, radii: r, angle: ang), col, opacity: opacity * 0.7, soft: rng.uniform(8, 20))
            }
        }
    }

    // MARK: Person

    func drawPerson() {
        let cam = look.camera
        raster.setTransform(.similarity(scale: cam.pixelsPerUnit, angle: cam.angle, translation: cam.origin))
        drawBackHair()
        drawBody()
        drawEars()
        drawFaceSkin()
        drawNose()
        for eye in layout.eyes { drawEye(eye) }
        for brow in layout.brows { drawBrow(brow) }
        drawWrinkles()
        drawMouth()
        drawFrontHair()
        if look.glasses { drawGlasses() }
        switch look.hand {
        case .none: break
        case .lower: drawHand(upper: false)
        case .upper: drawHand(upper: true)
        }
    }

    private func drawBody() {
        raster.paint(.ellipse(center: V2(0, 2.05), radii: V2(1.55, 0.8), angle: 0),
                     .rimmed(look.clothes, rim: 0.3, width: 6))
        raster.paint(.polygon([V2(-0.3, 0.5), V2(0.3, 0.5), V2(0.36, 1.45), V2(0, 1.6), V2(-0.36, 1.45)]),
                     .rimmed(skin * 0.85, rim: 0.25, width: 5))
        // The jaw's shadow on the neck.
        raster.paint(.ellipse(center: V2(0, 0.93), radii: V2(0.42, 0.16), angle: 0), shade(0.7), soft: 6)
    }

    private func drawBackHair() {
        let a = look.faceHalfWidth
        switch look.hairStyle {
        case .bald:
            return
        case .short:
            raster.paint(.ellipse(center: V2(0, -0.14), radii: V2(a + 0.07 + 0.06 * look.hairVolume, 0.98 + 0.05 * look.hairVolume),
                                  angle: 0),
                         .rimmed(look.hair, rim: 0.35, width: 4))
        case .long:
            let len = look.hairLength
            raster.paint(.oval(center: V2(0, 0.2 + 0.25 * len), radii: V2(a + 0.18 + 0.1 * look.hairVolume, 1.3 + 0.35 * len), jaw: -0.3),
                         .rimmed(look.hair, rim: 0.35, width: 5))
        }
    }

    private func drawEars() {
        let a = look.faceHalfWidth
        for s: Float in [-1, 1] {
            let c = V2(s * (a - 0.02) + look.yaw * 0.03, look.eyeY + 0.15)
            raster.paint(.ellipse(center: c, radii: V2(0.08, 0.16), angle: s * 0.15), .rimmed(skin * 0.95, rim: 0.3, width: 3))
            raster.paint(.ellipse(center: c + V2(s * 0.015, 0), radii: V2(0.035, 0.1), angle: s * 0.15), shade(0.78), soft: 2)
        }
    }

    private func drawFaceSkin() {
        let oval = RasterShape.oval(center: .zero, radii: V2(look.faceHalfWidth, 1), jaw: look.jaw)
        // Side lighting on the face itself: lit side to shaded side.
        let l = look.camera.lightDirection
        let lit = skin * 1.04, dark = skin * 0.86
        raster.paint(oval, .gradient(dark, lit, from: l * 0.8, to: -l * 0.8, rim: 0.22, width: 0.2 * raster.unit),
                     visibility: .reveal)
        if look.sideLocks {
            let a = look.faceHalfWidth
            for s: Float in [-1, 1] {
                var pts = [V2](), widths = [Float]()
                for k in 0...6 {
                    let t = Float(k) / 6
                    pts.append(V2(s * (a - 0.05 + 0.07 * t * t), -0.6 + 1.25 * t))
                    widths.append(0.06 + 0.04 * sinf(.pi * t))
                }
                let lock = RasterShape.stroke(pts, halfWidths: widths)
                raster.paint(lock, .rimmed(look.hair, rim: 0.3, width: 3), soft: 1.5, visibility: .hide)
            }
        }
    }

    private func drawNose() {
        let tip = layout.noseTip
        let nw = look.noseWidth
        let wrinkle = clamp01(motion[.noseWrinkle])
        let ls: Float = look.camera.lightDirection.x > 0 ? -1 : 1     // shaded side of the bridge
        let top = V2(layout.noseBridgeX + ls * 0.045, look.eyeY + 0.04)
        raster.paint(.stroke([top, V2(tip.x + ls * 0.07, tip.y - 0.04)], halfWidths: [0.015, 0.025]), shade(0.88), soft: 4)
        raster.paint(.ellipse(center: tip + V2(0, 0.055), radii: V2(0.09, 0.025), angle: 0), shade(0.82), soft: 4)
        raster.paint(.circle(tip + V2(-0.01, -0.025), 0.03), .scale(C3(repeating: 1.07)), soft: 4)
        let lift = 0.015 * wrinkle
        for s: Float in [-1, 1] {
            let wing = [V2(tip.x + s * 0.055 * nw, tip.y - 0.045 - lift), V2(tip.x + s * 0.095 * nw, tip.y - lift),
                        V2(tip.x + s * 0.08 * nw, tip.y + 0.03 - lift), V2(tip.x + s * 0.05 * nw, tip.y + 0.04 - lift)]
            raster.paint(.stroke(wing, halfWidths: [0.003, 0.007, 0.007, 0.004]), shade(0.72), soft: 1.5)
            raster.paint(.ellipse(center: V2(tip.x + s * 0.045 * nw, tip.y + 0.028 - lift), radii: V2(0.022, 0.011), angle: s * 0.35),
                         skin * 0.4, soft: 1.2)
        }
    }

    private func drawEye(_ eye: FaceLayout.Eye) {
        let opening = RasterShape.polygon(eye.opening)
        let c = eye.center
        // Socket shade between lid and brow gives the eye depth.
        raster.paint(.ellipse(center: c + V2(0, -0.025), radii: V2(eye.halfWidth * 1.35, 0.085), angle: 0), shade(0.9), soft: 5)
        raster.paint(opening, mix(C3(0.93, 0.91, 0.88), skin, 0.15), soft: 1)
        raster.paint(.circle(eye.iris, eye.irisRadius), .rimmed(look.iris, rim: 0.5, width: 2.5), soft: 1, clip: opening)
        raster.paint(.circle(eye.iris, eye.irisRadius * 0.45), C3(0.03, 0.02, 0.02), soft: 1, clip: opening)
        raster.paint(.circle(eye.iris + V2(-0.3, -0.35) * eye.irisRadius, eye.irisRadius * 0.22), C3(1, 1, 1),
                     opacity: 0.85, soft: 1, clip: opening)
        // The upper lid casts a shadow onto the eyeball.
        raster.paint(.stroke(eye.upper, halfWidths: Array(repeating: 0.018, count: eye.upper.count)), shade(0.7),
                     soft: 2.5, clip: opening)
        let n = eye.upper.count
        let lidWidths = (0..<n).map { i -> Float in mix(0.007, 0.013, Float(i) / Float(n - 1)) }
        raster.paint(.stroke(eye.upper, halfWidths: lidWidths), C3(0.1, 0.07, 0.06), soft: 1.1)
        raster.paint(.stroke(eye.lower, halfWidths: Array(repeating: 0.004, count: n)), skin * 0.6, opacity: 0.75, soft: 1.2)
        raster.paint(.stroke(eye.crease, halfWidths: Array(repeating: 0.005, count: eye.crease.count)), shade(0.72),
                     opacity: 0.8, soft: 1.5)
        let cheek = clamp01(motion[.cheekRaise] + 0.4 * motion[.lowerLid])
        if cheek > 0.05 {
            raster.paint(.stroke(eye.cheek, halfWidths: Array(repeating: 0.006, count: eye.cheek.count)), shade(0.76),
                         opacity: min(1, cheek), soft: 1.8)
        }
    }

    private func drawBrow(_ brow: FaceLayout.Brow) {
        let shape = RasterShape.stroke(brow.points, halfWidths: brow.halfWidths)
        raster.paint(.stroke(brow.points, halfWidths: brow.halfWidths.map { $0 * 1.4 }), look.brow, opacity: 0.25, soft: 3)
        raster.paint(shape, look.brow, opacity: 0.92, soft: 1.4)
    }

    private func drawWrinkles() {
        let wrinkle = clamp01(motion[.noseWrinkle])
        let bx = layout.noseBridgeX
        let ey = look.eyeY
        if wrinkle > 0.03 {
            raster.paint(.ellipse(center: V2(bx, ey + 0.06), radii: V2(0.08, 0.08), angle: 0), shade(0.92), opacity: wrinkle, soft: 5)
            for k in 0..<3 {
                let y = ey + 0.02 + 0.035 * Float(k)
                let hw = 0.05 - 0.006 * Float(k)
                raster.paint(.stroke([V2(bx - hw, y + 0.012), V2(bx, y), V2(bx + hw, y + 0.012)], halfWidths: [0.003, 0.005, 0.003]),
                             shade(0.68), opacity: wrinkle, soft: 1.3)
            }
            for s: Float in [-1, 1] {
                raster.paint(.stroke([V2(bx + s * 0.045, ey + 0.005), V2(bx + s * 0.1, ey + 0.1)], halfWidths: [0.003, 0.005]),
                             shade(0.7), opacity: wrinkle * 0.9, soft: 1.3)
            }
        }
        let glabella = clamp01(motion[.glabella])
        if glabella > 0.03 {
            let top = min(layout.brows[0].points[0].y, layout.brows[1].points[0].y)
            for s: Float in [-1, 1] {
                raster.paint(.stroke([V2(bx + s * 0.02, top - 0.03), V2(bx + s * 0.026, top + 0.05)], halfWidths: [0.003, 0.005]),
                             shade(0.7), opacity: glabella * 0.9, soft: 1.3)
            }
        }
    }

    private func drawMouth() {
        let mo = layout.mouth
        let lowerMid = mo.lowerOuter[mo.lowerOuter.count / 2]
        let w = (mo.right.x - mo.left.x) / 2
        raster.paint(.ellipse(center: V2(lowerMid.x, lowerMid.y + 0.03), radii: V2(w * 0.6, 0.028), angle: 0), shade(0.82), soft: 4)
        raster.paint(.polygon(mo.lips), look.lip, soft: 1.2)
        raster.paint(.polygon(mo.upperLip), shade(0.88), soft: 1)
        raster.paint(.circle(V2(lowerMid.x, lowerMid.y - 0.018), 0.03), .scale(C3(repeating: 1.1)), soft: 4)

        if mo.gap > 0.004 {
            let opening = RasterShape.polygon(mo.opening)
            raster.paint(opening, C3(0.2, 0.05, 0.06), soft: 1)
            let teethU = clamp01(motion[.teethUpper])
            let teethL = clamp01(motion[.teethLower])
            if teethU > 0.05 {
                let band = mo.upperInner + mo.upperInner.reversed().map { $0 + V2(0, 0.05) }
                raster.paint(.polygon(band), C3(0.92, 0.9, 0.82), opacity: teethU, soft: 1, clip: opening)
                toothGaps(along: mo.upperInner, depth: 0.045, opacity: teethU, clip: opening)
            }
            if teethL > 0.05 {
                let band = mo.lowerInner.map { $0 - V2(0, 0.035) } + mo.lowerInner.reversed()
                raster.paint(.polygon(band), C3(0.85, 0.83, 0.75), opacity: teethL, soft: 1, clip: opening)
                toothGaps(along: mo.lowerInner.map { $0 - V2(0, 0.035) }, depth: 0.035, opacity: teethL, clip: opening)
            }
        }
        // Line where the lips meet, strongest when the mouth is closed.
        let closed = 1 - clamp01(mo.gap / 0.03)
        raster.paint(.stroke(mo.upperInner, halfWidths: Array(repeating: 0.006, count: mo.upperInner.count)),
                     look.lip * 0.4, opacity: 0.55 + 0.4 * closed, soft: 1.2)
        for p in [mo.left, mo.right] {
            raster.paint(.circle(p, 0.012), shade(0.7), soft: 2)
        }
        // Smile folds beside the corners; chin crease for a pushed-up lower lip.
        let smile = clamp01(motion[.cornerLift] / 0.08)
        if smile > 0.05 {
            for (p, s) in [(mo.left, Float(-1)), (mo.right, Float(1))] {
                raster.paint(.stroke([p + V2(s * 0.03, -0.07), p + V2(s * 0.045, -0.02), p + V2(s * 0.025, 0.035)],
                                     halfWidths: [0.003, 0.006, 0.003]), shade(0.78), opacity: smile, soft: 1.8)
            }
        }
        let push = clamp01(motion[.lowerLipPush])
        if push > 0.05 {
            raster.paint(.stroke([V2(lowerMid.x - 0.06, lowerMid.y + 0.06), V2(lowerMid.x, lowerMid.y + 0.045),
                                  V2(lowerMid.x + 0.06, lowerMid.y + 0.06)], halfWidths: [0.003, 0.006, 0.003]),
                         shade(0.8), opacity: push * 0.8, soft: 1.8)
        }
    }

    private func toothGaps(along edge: [V2], depth: Float, opacity: Float, clip: RasterShape) {
        for k in stride(from: 2, to: edge.count - 2, by: 2) {
            let p = edge[k]
            raster.paint(.line(p, p + V2(0, depth), 0.0035), shade(0.75), opacity: opacity * 0.8, soft: 1, clip: clip)
        }
    }

    private func drawFrontHair() {
        guard look.hairStyle != .bald else { return }
        let a = look.faceHalfWidth
        let c = V2(0, -0.12)
        let cap = RasterShape.cap(center: c, radii: V2(a + 0.1 + 0.05 * look.hairVolume, 1.0 + 0.04 * look.hairVolume),
                                  h0: look.hairline - c.y, curve: look.hairCurve, tilt: look.hairTilt)
        raster.paint(cap, .rimmed(look.hair, rim: 0.3, width: 4), soft: 1.5, visibility: .hide)
        // A few strands so the hair is not a flat blob.
        for k in 0..<5 {
            let x = (Float(k) - 2) * 0.22 * a
            let strand = RasterShape.stroke([V2(x * 0.6, -1.05), V2(x, look.hairline - 0.2), V2(x * 1.25, look.hairline + 0.05)],
                                            halfWidths: [0.01, 0.02, 0.01])
            raster.paint(strand, .scale(C3(repeating: k % 2 == 0 ? 1.25 : 0.8)), opacity: 0.5, soft: 2, clip: cap)
        }
    }

    private func drawGlasses() {
        let g = look.glassesColor
        var inner = [V2](), outer = [V2]()
        for eye in layout.eyes {
            let c = eye.center + V2(0, 0.005)
            let r = V2(eye.halfWidth + look.glassesShape.x, look.glassesShape.y)
            raster.paint(.ellipse(center: c, radii: r, angle: 0), .scale(C3(0.95, 0.97, 1.0)), opacity: 0.7, soft: 1)
            raster.paint(.line(c + V2(-0.6, -0.2) * r, c + V2(-0.1, -0.9) * r, 0.008), C3(1, 1, 1), opacity: 0.2, soft: 2)
            raster.paint(.ring(center: c, radii: r, angle: 0, halfWidth: 0.012), g, soft: 1)
            inner.append(c + V2(-eye.side * r.x, -0.01))
            outer.append(c + V2(eye.side * r.x, -0.02))
        }
        let mid = V2((inner[0].x + inner[1].x) / 2, inner[0].y - 0.02)
        raster.paint(.stroke([inner[0], mid, inner[1]], halfWidths: [0.009, 0.009, 0.009]), g, soft: 1)
        for (k, s) in [Float(-1), 1].enumerated() {
            raster.paint(.line(outer[k], V2(s * look.faceHalfWidth * 0.99, outer[k].y - 0.01), 0.01), g, soft: 1)
        }
    }

    /// A hand resting on the face, covering part of the lower or upper face.
    private func drawHand(upper: Bool) {
        let s = look.handSide
        let tone = skin * look.handTone
        let palm: V2, dir: V2
        if upper {
            palm = V2(s * 0.8, -0.5)
            dir = normalized(V2(-s * 0.9, 0.3))
        } else {
            palm = V2(s * 0.5, 1.0)
            dir = normalized(V2(-s * 0.75, -0.65))
        }
        let across = V2(-dir.y, dir.x)
        let reach = 0.3 + 0.12 * look.handReach
        var fingers = [RasterShape]()
        for k in 0..<4 {
            let off = (Float(k) - 1.5) * 0.1
            let base = palm + dir * 0.2 + across * off
            let len = reach * (k == 0 || k == 3 ? 0.85 : 1)
            fingers.append(.line(base, base + dir * len, 0.052))
        }
        let palmShape = RasterShape.ellipse(center: palm, radii: V2(0.32, 0.27), angle: atan2f(dir.y, dir.x))
        // Soft contact shadow first, then the hand itself.
        for f in fingers + [palmShape] {
            raster.paint(f, shade(0.7), opacity: 0.6, soft: 6)
        }
        for f in fingers + [palmShape] {
            raster.paint(f, .rimmed(tone, rim: 0.25, width: 3), soft: 1.2, visibility: .hide)
        }
        for k in 0..<3 {
            let off = (Float(k) - 1) * 0.1
            let base = palm + dir * 0.24 + across * off
            raster.paint(.line(base, base + dir * reach * 0.85, 0.004), shade(0.7), opacity: 0.7, soft: 1.2)
        }
    }

    // MARK: Mask

    /// Expressive regions, drawn with the same transform as the face: both
    /// brows, both eyes, the nose-wrinkle zone and the mouth, grown by a few
    /// pixels. The caller intersects them with the visible skin.
    func markExpressiveRegions() {
        let grow: Float = 2
        for brow in layout.brows {
            raster.markRegion(.stroke(brow.points, halfWidths: brow.halfWidths.map { $0 + 0.025 }), dilate: grow)
        }
        for eye in layout.eyes {
            let pts = eye.upper + eye.lower + eye.crease + eye.cheek
            raster.markRegion(box(pts, pad: 0.025), dilate: grow)
        }
        let top = min(layout.brows[0].points[0].y, layout.brows[1].points[0].y) - 0.02
        let bottom = look.eyeY + 0.15
        let bx = layout.noseBridgeX
        raster.markRegion(.polygon([V2(bx - 0.07, top), V2(bx + 0.07, top), V2(bx + 0.12, bottom), V2(bx - 0.12, bottom)]), dilate: grow)
        let mo = layout.mouth
        // Include the smile folds beside the corners and the chin crease.
        let folds = [mo.left + V2(-0.05, -0.07), mo.right + V2(0.05, -0.07), mo.lowerOuter[mo.lowerOuter.count / 2] + V2(0, 0.06)]
        raster.markRegion(box(mo.upperOuter + mo.lowerOuter + folds, pad: 0.03), dilate: grow)
    }

    private func box(_ pts: [V2], pad: Float) -> RasterShape {
        var lo = pts[0], hi = pts[0]
        for p in pts { lo = pointwiseMin(lo, p); hi = pointwiseMax(hi, p) }
        lo -= pad; hi += pad
        return .polygon([lo, V2(hi.x, lo.y), hi, V2(lo.x, hi.y)])
    }
}

@inline(__always) private func normalized(_ v: V2) -> V2 { v / max(length(v), 1e-9) }
