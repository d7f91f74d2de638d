import Failures
import Foundation
import LabRandom

/// A/A calibration of the comparison: runs of ONE spec split at random into
/// two disjoint arms, many times. The null hypothesis holds in every split,
/// so a sound 5% test rejects in about 5% of them; more means the test sees
/// seed noise as effects.
public struct Calibration: Sendable {
    public var experiment: String
    public var runs: Int, images: Int, arm: Int
    public var splits: Int
    public var rejected: Int           // p < 0.05
    public var missedZero: Int         // 95% interval excludes 0
    public var runSD: Double           // of per-run accuracy, over all runs
    public var meanMinDetectable: Double
    /// Runs per arm for 80% power against a 1-point difference at `runSD`.
    public var runsForOnePoint: Int?

    /// `correct`: per-run correctness on one image order, [runs][images].
    public init(experiment: String, correct: [[Bool]], arm: Int, splits wanted: Int, seed: UInt64 = 1) throws {
        guard arm >= 2 else { throw Failure(.usage, "--arm must be at least 2: a one-run arm cannot separate a change from its seed") }
        guard correct.count >= 2 * arm else {
            throw Failure(.usage, "\(experiment) has \(correct.count) completed run\(correct.count == 1 ? "" : "s"); "
                + "\(arm) vs \(arm) A/A splits need at least \(2 * arm) (lab run ... --seeds 1,2,...)")
        }
        self.experiment = experiment
        runs = correct.count; images = correct.first?.count ?? 0; self.arm = arm
        let accuracies = correct.map { r in Double(r.filter { $0 }.count) / Double(max(r.count, 1)) }
        runSD = Statistics.std(accuracies)
        runsForOnePoint = ProcedureComparison.runsNeeded(toDetect: 0.01, runSD: runSD)
        var rng = RNG(seed: seed)
        var seen = Set<[Int]>()
        rejected = 0; missedZero = 0; splits = 0
        var mde = 0.0
        let distinct = Calibration.distinctSplits(runs: runs, arm: arm)
        while splits < min(wanted, distinct) {
            var order = Array(0..<runs)
            for i in stride(from: runs - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            let a = order[0..<arm].sorted(), b = order[arm..<(2 * arm)].sorted()
            guard seen.insert(a.lexicographicallyPrecedes(b) ? a + b : b + a).inserted else { continue }
            splits += 1
            guard let c = ProcedureComparison(a: a.map { correct[$0] }, b: b.map { correct[$0] }) else { continue }
            if c.p < ProcedureComparison.alpha { rejected += 1 }
            if c.ciLow > 0 || c.ciHigh < 0 { missedZero += 1 }
            mde += c.minDetectable
        }
        meanMinDetectable = mde / Double(max(splits, 1))
    }

    /// Unordered pairs of disjoint arms of `arm` runs out of `runs`.
    static func distinctSplits(runs: Int, arm: Int) -> Int {
        func choose(_ n: Int, _ k: Int) -> Double { (0..<k).reduce(1.0) { $0 * Double(n - $1) / Double($1 + 1) } }
        return Int(min(choose(runs, arm) * choose(runs - arm, arm) / 2, 1e9))
    }

    public var text: String {
        func share(_ k: Int) -> String { String(format: "%d of %d splits (%.1f%%)", k, splits, 100 * Double(k) / Double(max(splits, 1))) }
        return [
            "A/A calibration: \(experiment), \(runs) runs on \(images) images, \(splits) random splits into two arms of \(arm) runs",
            "  p < 0.05 in \(share(rejected)); the 95% interval misses 0 in \(share(missedZero)) (a sound test: about 5%)",
            String(format: "  run-to-run spread of accuracy: sd %.2f points; mean smallest detectable difference at %d vs %d runs: "
                + "%.2f points",
                   runSD * 100, arm, arm, meanMinDetectable * 100),
            "  runs per arm to detect a 1-point difference with 80% power at 5%: "
                + (runsForOnePoint.map { "\($0) (at this spread, before any image-by-change interaction)" } ?? "more than 1000"),
        ].joined(separator: "\n")
    }
}
