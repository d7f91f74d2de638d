import XCTest
@testable import Engine
import LabRandom
@testable import Explain

/// Grad-CAM and Grad-CAM++ on tensors small enough to work out by hand.
final class CAMTests: XCTestCase {
    // P = 2 positions, C = 2 channels, [P, C] row-major.
    let A: [Float] = [1, 2,  3, 0]
    let G: [Float] = [0.5, -1,  1.5, 0]

    func testGradCAMByHand() {
        // alpha = mean over positions: (0.5 + 1.5)/2 = 1, (-1 + 0)/2 = -0.5.
        // map = relu([1*1 - 0.5*2, 1*3 - 0.5*0]) = [0, 3].
        let r = CAM.gradCAM(A, G, P: 2, C: 2)
        XCTAssertEqual(r.weights, [1, -0.5])
        XCTAssertEqual(r.map, [0, 3])
    }

    func testGradCAMPlusPlusByHand() {
        // Channel 0, sum A = 4: p0 g=0.5 -> 0.25 / (0.5 + 4*0.125) = 0.25, times relu(g) = 0.125;
        //                      p1 g=1.5 -> 2.25 / (4.5 + 4*3.375) = 0.125, times 1.5 = 0.1875; w0 = 0.3125.
        // Channel 1, sum A = 2: p0 g=-1 -> denominator 2 + 2*(-1) = 0 -> alpha 0; p1 g=0 -> 0; w1 = 0.
        let r = CAM.gradCAMPlusPlus(A, G, P: 2, C: 2)
        XCTAssertEqual(r.weights[0], 0.3125, accuracy: 1e-7)
        XCTAssertEqual(r.weights[1], 0)
        XCTAssertEqual(r.map[0], 0.3125, accuracy: 1e-7)
        XCTAssertEqual(r.map[1], 0.9375, accuracy: 1e-7)
    }

    func testZeroGradientsGiveZeroMapsNotNaN() {
        let zeros = [Float](repeating: 0, count: 4)
        for r in [CAM.gradCAM(A, zeros, P: 2, C: 2), CAM.gradCAMPlusPlus(A, zeros, P: 2, C: 2)] {
            XCTAssertEqual(r.map, [0, 0])
            XCTAssertEqual(CAM.normalized(CAM.upsample(r.map, h: 1, w: 2, to: 4)), [Float](repeating: 0, count: 16))
        }
        XCTAssertEqual(CAM.normalized([0, .nan, 2]), [0, 0, 1])
    }

    func testUpsampleMatchesPyTorchBilinear() {
        // torch.nn.functional.interpolate(t([[0,1],[2,3]]), size=4, mode="bilinear", align_corners=False)
        let up = CAM.upsample([0, 1, 2, 3], h: 2, w: 2, to: 4)
        XCTAssertEqual(up, [0, 0.25, 0.75, 1,  0.5, 0.75, 1.25, 1.5,  1.5, 1.75, 2.25, 2.5,  2, 2.25, 2.75, 3])
    }

    func testPointingTakesTheFirstOfTiedMaxima() {
        let mask: [UInt8] = [0, 0, 0, 255]
        XCTAssertFalse(Localization.pointingHit([0.9, 0.2, 0.3, 0.9], mask))
        XCTAssertTrue(Localization.pointingHit([0.2, 0.2, 0.3, 0.9], mask))
        XCTAssertFalse(Localization.pointingHit([], []))
    }

    func testLocalizationScoresByHand() {
        let mask: [UInt8] = [255, 0, 0, 255]
        XCTAssertEqual(Localization.energyInMask([1, 1, 0, 2], mask), 0.75)
        XCTAssertEqual(Localization.energyInMask([0, 0, 0, 0], mask), 0)
        XCTAssertTrue(Localization.pointingHit([0.1, 0.2, 0.3, 0.9], mask))
        XCTAssertFalse(Localization.pointingHit([0.1, 0.9, 0.3, 0.2], mask))
        XCTAssertFalse(Localization.pointingHit([0, 0, 0, 0], mask))
        XCTAssertEqual(Localization.spearman([1, 2, 3, 4], [10, 20, 30, 40]), 1, accuracy: 1e-6)
        XCTAssertEqual(Localization.spearman([1, 2, 3, 4], [4, 3, 2, 1]), -1, accuracy: 1e-6)
        let prior = Localization.centerPrior(9)
        XCTAssertEqual(prior[4 * 9 + 4], 1, accuracy: 1e-6)
        XCTAssertLessThan(prior[0], 0.1)
    }

    /// The engine-side plumbing: batched maps equal one-image maps (eval mode
    /// keeps images independent), and stopping the backward at the layer
    /// gives the same layer gradient as a full backward.
    func testExplainerBatchesAndStopsCorrectly() throws {
        let model = Model(config: ModelConfig(widths: [4, 8], convsPerBlock: [2, 2], hidden: 8, dropout: 0.5, classes: 6), imageSize: 16)
        var rng = RNG(seed: 3)
        model.initialize(rng: &rng)
        let x = (0..<(3 * 16 * 16 * 3)).map { _ in rng.uniform(-1, 1) }
        let ex = try Explainer(model: model, layer: "block2.conv2")
        let batch = ex.explain(x, N: 3, targets: [nil, 2, 5], methods: CAMMethod.allCases)
        XCTAssertEqual(batch.targets[1], 2); XCTAssertEqual(batch.targets[2], 5)
        for n in 0..<3 {
            let one = ex.explain(Array(x[(n * 768)..<((n + 1) * 768)]), N: 1, targets: [batch.targets[n]], methods: CAMMethod.allCases)
            for m in CAMMethod.allCases {
                let a = batch.maps[m]![n], b = one.maps[m]![0]
                XCTAssertEqual(a.count, 256)
                for i in 0..<256 { XCTAssertEqual(a[i], b[i], accuracy: 1e-4, "\(m) image \(n)") }
            }
        }
        // Stop-at backward vs full backward: same gradient at the layer.
        var seed = [Float](repeating: 0, count: 6); seed[4] = 1
        model.forward(Array(x.prefix(768)), N: 1, training: false, rng: &rng)
        model.backward(dlogits: seed, N: 1, training: false, stopAt: "block1.conv2")
        let stopped = model.unit(named: "block1.conv2")!.da.array.prefix(16 * 16 * 4)
        model.backward(dlogits: seed, N: 1, training: false)
        let full = model.unit(named: "block1.conv2")!.da.array.prefix(16 * 16 * 4)
        XCTAssertEqual(Array(stopped), Array(full))
        // A skip block's first unit: its gradient has two producers (conv2 and the skip).
        let first = model.unit(named: "block1.conv1")!, n1 = first.H * first.W * first.OC
        model.backward(dlogits: seed, N: 1, training: false, stopAt: "block1.conv1")
        let stopped1 = Array(first.da.array.prefix(n1))
        model.backward(dlogits: seed, N: 1, training: false)
        XCTAssertEqual(stopped1, Array(first.da.array.prefix(n1)))
        XCTAssertTrue(model.blocks[0].units.last!.addsResidual, "block 1 has a skip: both producers ran")
        XCTAssertThrowsError(try Explainer(model: model, layer: "block9.conv1"))
    }

    /// Grad-CAM on any explainable layer of a model with attention and a
    /// projection: a block's output (after attention, the shortcut and the
    /// activation), the projection, a convolution before attention; maps are
    /// Grad-CAM of the layer's activation and its gradient (one backward that
    /// stops there), and unknown layers are refused naming the valid ones.
    func testExplainerOnBlockOutputsAndTheNewLayers() throws {
        let cfg = ModelConfig(widths: [4, 8], convsPerBlock: [2, 1], hidden: 0, dropout: 0, classes: 6, conv: .separable,
                              shortcut: .projection, attention: .cbam, attentionReduction: 2)
        let model = Model(config: cfg, imageSize: 8)
        var rng = RNG(seed: 5)
        model.initialize(rng: &rng)
        let x = (0..<(2 * 8 * 8 * 3)).map { _ in rng.uniform(-1, 1) }
        for layer in ["block2", "block2.shortcut", "block2.conv1", "block1", "block1.conv1"] {
            let ex = try Explainer(model: model, layer: layer)
            let r = ex.explain(x, N: 2, targets: [1, 4], methods: [.gradCAM])
            // By hand: the full backward leaves the same gradient at the layer.
            var seed = [Float](repeating: 0, count: 12); seed[1] = 1; seed[6 + 4] = 1
            model.forward(x, N: 2, training: false, rng: &rng)
            model.backward(dlogits: seed, N: 2, training: false)
            let l = try XCTUnwrap(model.explainableLayer(named: layer))
            let P = l.H * l.W
            for n in 0..<2 {
                let raw = CAM.gradCAM(l.activation.data + n * P * l.C, l.gradient.data + n * P * l.C, P: P, C: l.C).map
                let expected = CAM.normalized(CAM.upsample(raw, h: l.H, w: l.W, to: 8))
                XCTAssertEqual(r.maps[.gradCAM]![n].count, 64)
                for i in 0..<64 { XCTAssertEqual(r.maps[.gradCAM]![n][i], expected[i], accuracy: 1e-5, "\(layer) image \(n)") }
            }
        }
        XCTAssertThrowsError(try Explainer(model: model, layer: "block2.se")) {
            XCTAssertTrue("\($0)".contains("layers: block1.conv1, block1.conv2, block1.shortcut, block1, block2.conv1, block2.shortcut, block2"), "\($0)")
        }
        // The randomization check walks every layer with weights, from the top.
        XCTAssertEqual(CascadingRandomization.stages(model).map(\.0),
                       ["fc2", "block2.cbam", "block2.shortcut", "block2.conv1", "block1.cbam", "block1.shortcut", "block1.conv2", "block1.conv1"])
        XCTAssertEqual(CascadingRandomization.stages(model).first { $0.0 == "block1.conv2" }!.1.map(\.name),
                       ["block1.conv2.depthwise.weight", "block1.conv2.pointwise.weight"])
        XCTAssertEqual(CascadingRandomization.stages(model).first { $0.0 == "block2.cbam" }!.1.map(\.name).last, "block2.cbam.spatial.conv.weight")
    }
}
