import Foundation
import Specs

/// The learning rate as a pure function of the optimizer step, so a resumed
/// run (whose Adam step count is restored) continues the same curve.
///
/// `constant`: the research plan's fixed rate. `cosine`: a linear warm-up over
/// `warmupEpochs` epochs from lr/steps to lr, then a half cosine from lr down
/// to zero at the end of `epochs` (Loshchilov & Hutter's SGDR without restarts).
/// A high peak rate needs the warm-up: Adam's first steps, with batch-norm
/// statistics still settling, otherwise overshoot.
public struct LRSchedule: Equatable, Sendable {
    public typealias Kind = TrainSpec.Schedule
    public var kind: Kind
    public var peak: Float
    public var warmupEpochs: Int
    public var epochs: Int

    /// The rate for optimizer step `step` (1-based), with `stepsPerEpoch` batches per epoch.
    public func lr(step: Int, stepsPerEpoch: Int) -> Float {
        guard kind == .cosine else { return peak }
        let warm = warmupEpochs * stepsPerEpoch, total = max(epochs * stepsPerEpoch, warm + 1)
        if step <= warm { return peak * Float(step) / Float(warm) }
        let t = Double(min(step, total) - warm) / Double(total - warm)
        return peak * Float(0.5 * (1 + cos(Double.pi * t)))
    }
}

extension TrainSpec {
    /// Derived from lr and max_epochs, so changing either changes the curve.
    public var lrSchedule: LRSchedule { LRSchedule(kind: schedule, peak: Float(lr), warmupEpochs: warmupEpochs, epochs: maxEpochs) }
}
