import Engine
import XCTest

final class WeightAverageTests: XCTestCase {
    func model() -> Model {
        let m = Model(config: ModelConfig(widths: [2, 3], convsPerBlock: [1, 1], hidden: 4, dropout: 0), imageSize: 8)
        for p in m.parameters { for i in 0..<p.value.count { p.value[i] = 1 } }
        return m
    }

    /// Two updates worked by hand, with the decay's warm-up: d_0 = min(0.99, 1/10), d_1 = min(0.99, 2/11).
    func testUpdatesFollowTheWarmedUpDecay() {
        let m = model()
        let avg = WeightAverage(model: m, decay: 0.99)
        let w = m.parameters[0].value
        w[0] = 3
        avg.update()                                  // 0.1 * 1 + 0.9 * 3 = 2.8
        w[0] = 5
        avg.update()                                  // (2/11) * 2.8 + (9/11) * 5 = 4.6
        XCTAssertEqual(avg.updates, 2)
        avg.swap()
        XCTAssertEqual(w[0], Float(2) / 11 * (0.1 + 0.9 * 3) + Float(9) / 11 * 5, accuracy: 1e-6, "the model holds the average")
        XCTAssertEqual(m.parameters[1].value[0], 1, accuracy: 1e-7, "an unchanged weight averages to itself")
        avg.swap()
        XCTAssertEqual(w[0], 5, "swapping back restores the live weights exactly")
        // Running statistics are averaged too.
        XCTAssertTrue(avg.names.contains("block1.bn1.running_var"))
        XCTAssertEqual(avg.names.count, m.parameters.count + 2 * 2)
    }

    /// What resuming stores (the model's checkpoint while swapped, plus the held
    /// live weights) rebuilds the same average and live weights.
    func testHeldStateRoundTrip() throws {
        let m = model()
        let avg = WeightAverage(model: m, decay: 0.9)
        for step in 0..<5 {
            for p in m.parameters { for i in 0..<p.value.count { p.value[i] += Float(step + i % 3) * 0.1 } }
            avg.update()
        }
        avg.swap()
        let saved = m.checkpoint()
        let held = avg.heldState()
        avg.swap()
        let live = m.parameters.map(\.value.array)

        let (copy, _) = try Model.load(checkpoint: saved)
        let restored = WeightAverage(model: copy, decay: 0.9)
        try restored.restore(held: held.tensors, updates: held.updates, swapped: true)
        restored.swap()
        XCTAssertEqual(copy.parameters.map(\.value.array), live, "the live weights are back in the model")
        XCTAssertEqual(restored.updates, 5)
        restored.swap()
        avg.swap()
        XCTAssertEqual(copy.parameters.map(\.value.array), m.parameters.map(\.value.array), "and the same average")
    }
}
