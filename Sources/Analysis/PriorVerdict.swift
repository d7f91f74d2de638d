import Foundation

/// Does a saliency method beat the centre prior on the same faces? Per-face
/// pairs, so the answer is a paired test, not two means side by side:
/// Wilcoxon signed-rank on energy in the expressive regions, exact McNemar
/// (a sign test on the faces where only one of the two points inside) on pointing.
public struct PriorVerdict: Sendable, Equatable {
    public struct Test: Sendable, Equatable {
        public var map: Double, prior: Double    // means over the faces
        public var better: Int, worse: Int       // faces where the map scores above / below the prior
        public var p: Double
        /// "beats", "worse than" or "no better than" the centre prior at level 0.05.
        public var outcome: String {
            guard p < 0.05, better != worse else { return "no better than" }
            return better > worse ? "beats" : "worse than"
        }
    }

    public var method: String
    public var faces: Int
    public var energy: Test
    public var pointing: Test

    /// One face's scores: the map's and the centre prior's.
    public struct Pair: Sendable {
        public var energy: Double, priorEnergy: Double, hit: Bool, priorHit: Bool
        public init(energy: Double, priorEnergy: Double, hit: Bool, priorHit: Bool) {
            self.energy = energy; self.priorEnergy = priorEnergy; self.hit = hit; self.priorHit = priorHit
        }
    }

    public init?(method: String, pairs: [Pair]) {
        guard !pairs.isEmpty else { return nil }
        func mean(_ v: [Double]) -> Double { v.reduce(0, +) / Double(v.count) }
        let diffs = pairs.map { $0.energy - $0.priorEnergy }
        energy = Test(map: mean(pairs.map(\.energy)), prior: mean(pairs.map(\.priorEnergy)),
                      better: diffs.filter { $0 > 0 }.count, worse: diffs.filter { $0 < 0 }.count,
                      p: Statistics.wilcoxonSignedRank(diffs))
        let onlyMap = pairs.filter { $0.hit && !$0.priorHit }.count, onlyPrior = pairs.filter { !$0.hit && $0.priorHit }.count
        pointing = Test(map: mean(pairs.map { $0.hit ? 1 : 0 }), prior: mean(pairs.map { $0.priorHit ? 1 : 0 }),
                        better: onlyMap, worse: onlyPrior, p: Statistics.mcnemarExact(b: onlyMap, c: onlyPrior))
        self.method = method; faces = pairs.count
    }

    static func p(_ p: Double) -> String { p < 0.001 ? "p < 0.001" : String(format: "p = %.3f", p) }

    /// e.g. "energy in regions 0.61 vs 0.48, better on 25 of 32 faces, Wilcoxon p < 0.001: beats the centre prior"
    public var energyText: String {
        String(format: "energy in regions %.3f vs %.3f, higher on %d and lower on %d faces, Wilcoxon %@: %@ the centre prior",
               energy.map, energy.prior, energy.better, energy.worse, PriorVerdict.p(energy.p), energy.outcome)
    }

    public var pointingText: String {
        String(format: "pointing %.2f vs %.2f, only the map hits on %d and only the prior on %d faces, McNemar %@: %@ the centre prior",
               pointing.map, pointing.prior, pointing.better, pointing.worse, PriorVerdict.p(pointing.p), pointing.outcome)
    }

    /// The verdict for `lab explain`: one line per measure under a heading line.
    public var text: String {
        "verdict, \(method) vs centre prior over \(faces) faces (paired):\n  \(energyText)\n  \(pointingText)"
    }

    /// Short cells for the report's table, e.g. "beats (p < 0.001)".
    public var energyCell: String { "\(energy.outcome.replacingOccurrences(of: " than", with: "")) (\(PriorVerdict.p(energy.p)))" }
    public var pointingCell: String { "\(pointing.outcome.replacingOccurrences(of: " than", with: "")) (\(PriorVerdict.p(pointing.p)))" }
}
