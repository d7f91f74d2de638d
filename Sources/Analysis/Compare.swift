import Faces
import Failures
import Foundation
import Registry
import Specs

/// Completed runs of experiments side by side against their baselines, on
/// paired per-image predictions.
public enum Compare {
    public struct RunData {
        public var id: String, experiment: String, parent: String?, seed: Int, fingerprint: String
        public var specJSON: String, params: Int, bestEpoch: Int, trainSeconds: Double
        public var flops: Double                  // forward FLOPs per image of the run's model
        public var correct: [String: Bool]        // image -> prediction right
        public var confusion: [[Int]]
        public var accuracy: Double { correct.isEmpty ? .nan : Double(correct.values.filter { $0 }.count) / Double(correct.count) }
        public var recall: [Double?] { Metrics(confusion: confusion).recall }
        public var macroF1: Double { Metrics(confusion: confusion).macroF1 }
        public var balancedAccuracy: Double { Metrics(confusion: confusion).balancedAccuracy }
    }

    public struct Row {
        public var experiment: String, baseline: String?
        public var runs: Int, accMean: Double, accStd: Double
        /// Δ accuracy against the baseline, its 95% interval and the two-sided p of
        /// the seed-aware test (ProcedureComparison): nil with a one-run arm.
        public var delta: Double?, ciLow: Double?, ciHigh: Double?, pValue: Double?
        public var macroF1: Double, recall: [Double?], params: Int, bestEpoch: Double, trainSeconds: Double
        public var flops: Double = .nan            // forward, per image
        public var balancedAccuracy: Double = .nan // mean per-class recall, averaged over the runs
        public var confusion: [[Int]] = []         // summed over the runs: where the errors go
        public var changes: [String]
        public var note: String?
        /// The seed-aware p Holm-adjusted over the comparisons shown with this one.
        public var holmP: Double? = nil
        /// P(a run of this experiment beats a run of the baseline), with its 95% interval.
        public var pImprove: Double? = nil, pImproveLow: Double? = nil, pImproveHigh: Double? = nil
        /// The smallest Δ this comparison detects with 80% power (5%, two-sided).
        public var minDetectable: Double? = nil
        /// Exact McNemar between two trained models, only where an arm has one run.
        public var mcnemarP: Double? = nil
    }

    /// Runs with predictions on `split`, by experiment name.
    public static func load(_ reg: Registry, split: EvalSplit) throws -> [String: [RunData]] {
        var out = [String: [RunData]]()
        for l in try reg.completedRuns() {
            let r = l.run
            let preds = try reg.predictions(run: r.id, split: split)
            if preds.isEmpty { continue }
            var correct = [String: Bool]()
            for p in preds { correct[p.image] = p.trueClass == p.predictedClass }
            out[l.experiment.name, default: []].append(RunData(
                id: r.id, experiment: l.experiment.name, parent: l.experiment.parent, seed: r.seed, fingerprint: r.datasetFingerprint ?? "",
                specJSON: l.experiment.specJson, params: r.params ?? 0, bestEpoch: r.bestEpoch ?? 0,
                trainSeconds: r.trainSeconds ?? 0, flops: forwardFLOPs(l.experiment.specJson), correct: correct,
                confusion: Confusion.matrix(preds)))
        }
        return out
    }

    /// Only the runs with these seeds; experiments left without runs drop out.
    public static func restricted(_ all: [String: [RunData]], toSeeds seeds: [Int]) -> [String: [RunData]] {
        all.mapValues { $0.filter { seeds.contains($0.seed) } }.filter { !$0.value.isEmpty }
    }

    /// Forward FLOPs per image of a stored spec's model (NaN if it no longer resolves).
    static func forwardFLOPs(_ specJSON: String) -> Double {
        guard let spec = try? SpecLoader.stored(specJSON, file: "stored spec") else { return .nan }
        return spec.model.config.forwardFLOPs(imageSize: spec.dataset.imageSize)
    }

    /// An experiment's runs of its latest spec (run ids sort by time).
    public static func latestRuns(of name: String, in all: [String: [RunData]]) throws -> [RunData] {
        guard let runs = all[name], let latest = runs.last?.specJSON else {
            throw Failure(.registry, "no completed runs of experiment \(name) with predictions on this split")
        }
        return runs.filter { $0.specJSON == latest }
    }

    /// Per-run correctness in one image order, [runs][images]; the runs must
    /// have been scored on the same images of the same data.
    public static func correctness(_ runs: [RunData]) throws -> [[Bool]] {
        guard let first = runs.first else { return [] }
        let images = first.correct.keys.sorted()
        let mismatch = Failure(.registry, "the runs of \(first.experiment) were not all scored on the same images of the same data")
        return try runs.map { r in
            guard r.fingerprint == first.fingerprint, r.correct.count == images.count else { throw mismatch }
            return try images.map { guard let c = r.correct[$0] else { throw mismatch }; return c }
        }
    }

    /// One row per experiment (optionally only `only`), each against its
    /// `extends` parent or `baseline` when given.
    public static func rows(_ all: [String: [RunData]], only: [String] = [], baseline: String? = nil) throws -> [Row] {
        // A name whose spec file was edited between runs: compare the runs of
        // its latest spec only (run ids sort by time), and say what was left out.
        var leftOut = [String: Int]()
        var all = all
        for (name, runs) in all {
            let latest = runs.last!.specJSON
            let current = runs.filter { $0.specJSON == latest }
            if current.count < runs.count { leftOut[name] = runs.count - current.count; all[name] = current }
        }
        let wanted = only.isEmpty ? all.keys.sorted() : only
        for w in wanted where all[w] == nil {
            throw Failure(.registry, "no completed runs of experiment \(w) with predictions on this split")
        }
        if let baseline, all[baseline] == nil {
            throw Failure(.registry, "baseline \(baseline) has no completed runs with predictions on this split")
        }
        // Baselines first (no parent, --baseline, or the parent of another row shown), then their ablations.
        let parents = Set(wanted.compactMap { all[$0]!.first!.parent })
        func isBase(_ name: String) -> Bool { all[name]!.first!.parent == nil || name == baseline || parents.contains(name) }
        let ordered = wanted.sorted { a, b in isBase(a) != isBase(b) ? isBase(a) : a < b }
        return withHolm(ordered.map { name in
            var row = summary(name, all[name]!)
            if let n = leftOut[name] { row.note = "\(n) run\(n == 1 ? "" : "s") of an earlier spec with this name left out" }
            let baseName = name == baseline ? nil : (baseline ?? all[name]!.first!.parent)
            guard let baseName, let base = all[baseName], baseName != name else { return row }
            paired(&row, all[name]!, against: base, named: baseName)
            return row
        })
    }

    /// An experiment's own numbers, averaged over its runs.
    static func summary(_ name: String, _ runs: [RunData]) -> Row {
        let accs = runs.map(\.accuracy)
        var row = Row(experiment: name, baseline: nil, runs: runs.count, accMean: Statistics.mean(accs), accStd: Statistics.std(accs),
                      delta: nil, ciLow: nil, ciHigh: nil, pValue: nil,
                      macroF1: Statistics.mean(runs.map(\.macroF1)),
                      recall: (0..<Emotion.count).map { k in
                          let v = runs.compactMap { $0.recall[k] }
                          return v.isEmpty ? nil : Statistics.mean(v)
                      },
                      params: runs.first!.params, bestEpoch: Statistics.mean(runs.map { Double($0.bestEpoch) }),
                      trainSeconds: Statistics.mean(runs.map(\.trainSeconds)), changes: [], note: nil)
        row.balancedAccuracy = Statistics.mean(runs.map(\.balancedAccuracy))
        row.flops = runs.last!.flops
        row.confusion = runs.map(\.confusion).reduce(into: [[Int]]()) { sum, c in
            sum = sum.isEmpty ? c : zip(sum, c).map { zip($0, $1).map(+) }
        }
        return row
    }

    /// Δ accuracy against the baseline's runs and, when both saw the same
    /// images and have two or more runs each, the seed-aware interval, test,
    /// P(A > B) and smallest detectable difference (ProcedureComparison).
    static func paired(_ row: inout Row, _ runs: [RunData], against base: [RunData], named baseName: String) {
        row.baseline = baseName
        let a = (try? JSONValue(parsing: Data(base.first!.specJSON.utf8))) ?? .object([:])
        let b = (try? JSONValue(parsing: Data(runs.first!.specJSON.utf8))) ?? .object([:])
        row.changes = SpecDiff.describe(a, b)
        row.delta = row.accMean - Statistics.mean(base.map(\.accuracy))
        // Pairing needs the same images from the same data.
        let fps = Set((runs + base).map(\.fingerprint))
        let images = Set(runs.first!.correct.keys)
        guard fps.count == 1, (runs + base).allSatisfy({ Set($0.correct.keys) == images }) else {
            row.note = fps.count > 1 ? "not paired: trained on different data (fingerprints differ)" : "not paired: different "
                + "evaluation images (split settings differ)"
            return
        }
        let imgs = images.sorted()
        func table(_ rs: [RunData]) -> [[Bool]] { rs.map { r in imgs.map { r.correct[$0]! } } }
        guard runs.count >= 2, base.count >= 2 else {
            modelLevel(&row, runs, against: base, images: imgs)
            return
        }
        guard let c = ProcedureComparison(a: table(runs), b: table(base)) else {
            row.note = "every run scored alike: no spread between runs to test against"
            return
        }
        row.ciLow = c.ciLow; row.ciHigh = c.ciHigh; row.pValue = c.p
        row.pImprove = c.pImprove; row.pImproveLow = c.pImproveLow; row.pImproveHigh = c.pImproveHigh
        row.minDetectable = c.minDetectable
    }

    /// One run in an arm: its seed and the change cannot be told apart, so the
    /// only test left compares two trained models on these images (McNemar),
    /// the same-seed run of the other arm where there is one.
    static func modelLevel(_ row: inout Row, _ runs: [RunData], against base: [RunData], images: [String]) {
        let bySeed = Dictionary(base.map { ($0.seed, $0) }, uniquingKeysWith: { x, _ in x })
        let pair = runs.lazy.compactMap { r in bySeed[r.seed].map { (r, $0) } }.first ?? (runs[0], base[0])
        var onlyBase = 0, onlyThis = 0
        for img in images {
            let e = pair.0.correct[img]!, bl = pair.1.correct[img]!
            if bl && !e { onlyBase += 1 }
            if !bl && e { onlyThis += 1 }
        }
        let p = Statistics.mcnemarExact(b: onlyBase, c: onlyThis)
        row.mcnemarP = p
        row.note = "one run in an arm: the change and the seed cannot be told apart; McNemar p = \(pString(p)) compares "
            + "two trained models (seeds \(pair.0.seed) and \(pair.1.seed)) on these images, not the two procedures"
    }

    /// One table is one family of tests: each ablation against its baseline,
    /// so Holm adjusts over exactly the rows shown.
    static func withHolm(_ rows: [Row]) -> [Row] {
        let tested = rows.indices.filter { rows[$0].pValue != nil }
        var out = rows
        for (i, p) in zip(tested, Statistics.holm(tested.map { rows[$0].pValue! })) { out[i].holmP = p }
        return out
    }

    public static let familyWiseAlpha = 0.05

    /// The adjusted p with `marker` when the difference survives at 5% family-wise.
    public static func holmString(_ r: Row, marker: String, pad: Bool = false) -> String {
        guard let p = r.holmP else { return "-" }
        return pString(p) + (p < familyWiseAlpha ? marker : (pad ? " " : ""))
    }

    /// The line under a table that says which differences survive the correction.
    public static func holmFootnote(_ rows: [Row], marker: String) -> String? {
        let tested = rows.filter { $0.holmP != nil }
        guard !tested.isEmpty else { return nil }
        let kept = tested.filter { $0.holmP! < familyWiseAlpha }.map { "\($0.experiment) vs \($0.baseline ?? "-")" }
        return "\(marker) significant at 5% family-wise (Holm over the \(tested.count) seed-aware test\(tested.count == 1 ? "" : "s") "
            + "shown): "
            + (kept.isEmpty ? "none" : kept.joined(separator: ", "))
    }

    public static func f(_ v: Double?, _ d: Int = 2) -> String { v.map { $0.isNaN ? "-" : String(format: "%.\(d)f", $0) } ?? "-" }
    public static func pct(_ v: Double?) -> String { v.map { $0.isNaN ? "-" : String(format: "%.1f", $0 * 100) } ?? "-" }
    /// Mean accuracy, with its spread only where there is one: one run has no standard deviation.
    public static func accuracy(_ r: Row, separator: String = " ± ") -> String {
        r.runs > 1 ? "\(pct(r.accMean))\(separator)\(pct(r.accStd))" : pct(r.accMean)
    }

    /// An epoch is an integer; a mean over seeds keeps one decimal only when it needs it.
    public static func epoch(_ v: Double?) -> String {
        guard let v, !v.isNaN else { return "-" }
        return v == v.rounded() ? String(Int(v)) : String(format: "%.1f", v)
    }

    public static func signedPct(_ v: Double?) -> String { v.map { String(format: "%+.1f", $0 * 100) } ?? "-" }

    public static func pString(_ p: Double?) -> String {
        guard let p else { return "-" }
        return p < 0.001 ? "<0.001" : String(format: "%.3f", p)
    }

    public static let shortClass = ["hap", "sur", "sad", "ang", "dis", "fea"]

    /// How the table's statistics are made, for the lines above every rendering of it.
    public static let method = [
        "Δ: the difference of the runs' mean accuracy, with a 95% interval and p from a t-test whose variance counts the runs (seeds) "
            + "of each arm "
            + "and the images (paired across arms), Welch-Satterthwaite df; Holm adjusts p over the rows shown.",
        "P(A>B): the chance that a run of the experiment beats a run of its baseline (95% interval: bootstrap over runs). "
            + "MDE: the smallest Δ this comparison detects with 80% power at 5%.",
    ]

    public static func deltaString(_ r: Row) -> String {
        r.delta.map { d in r.ciLow.map { "\(signedPct(d)) [\(signedPct($0)), \(signedPct(r.ciHigh))]" } ?? signedPct(d) } ?? "-"
    }

    public static func improveString(_ r: Row) -> String {
        guard let p = r.pImprove else { return "-" }
        return "\(f(p)) [\(f(r.pImproveLow)), \(f(r.pImproveHigh))]"
    }

    /// Δ in accuracy points, unsigned: the MDE is a size.
    public static func mdeString(_ r: Row) -> String { r.minDetectable.map { String(format: "%.1f", $0 * 100) } ?? "-" }

    /// "385M", "1.2G": forward FLOPs at a glance.
    public static func flopsString(_ v: Double) -> String {
        guard v.isFinite else { return "-" }
        return v >= 1e9 ? String(format: "%.2fG", v / 1e9) : String(format: "%.0fM", v / 1e6)
    }

    /// Prose lines broken at spaces to fit a terminal.
    static func wrapped(_ paragraphs: [String], width: Int) -> [String] {
        paragraphs.flatMap { p -> [String] in
            var lines = [String](), line = ""
            for word in p.split(separator: " ") {
                if !line.isEmpty && line.count + 1 + word.count > width { lines.append(line); line = "" }
                line += (line.isEmpty ? "" : " ") + word
            }
            return lines + [line]
        }
    }

    /// Terminal text: the main table, per-class recall, and what each experiment changes.
    public static func text(_ rows: [Row], split: EvalSplit) -> String {
        var out = ["split: \(split == .test ? split.name : "\(split.name) (best epoch)")",
                   "accuracy and balanced accuracy (mean per-class recall) in %; forward FLOPs per image", ""]
        out.append(TextTable.render(
            ["experiment", "runs", "acc mean±std", "bal acc", "macro-F1", "params", "FLOPs", "best ep", "train"],
            rows.map { r in
                [r.experiment, "\(r.runs)", accuracy(r, separator: "±"), pct(r.balancedAccuracy), f(r.macroF1, 3),
                 "\(r.params)", flopsString(r.flops), epoch(r.bestEpoch), Format.duration(r.trainSeconds)]
            }, rightAligned: Set(1...8)))
        let compared = rows.filter { $0.baseline != nil }
        if !compared.isEmpty {
            out += ["", "against the baseline (Δ and MDE in accuracy points):"] + wrapped(method, width: 118) + [""]
            out.append(TextTable.render(
                ["experiment", "vs", "Δ acc [95% CI]", "p", "Holm p", "P(A>B) [95% CI]", "MDE"],
                compared.map { r in
                    [r.experiment, r.baseline ?? "-", deltaString(r), pString(r.pValue), holmString(r, marker: "*", pad: true),
                     improveString(r), mdeString(r)]
                }, rightAligned: Set(2...6)))
            if let note = holmFootnote(rows, marker: "*") { out.append(note) }
        }
        out.append("")
        out.append("per-class recall (%):")
        out.append(TextTable.render(["experiment"] + Emotion.allCases.map(\.name),
                                    rows.map { r in [r.experiment] + r.recall.map { pct($0) } }, rightAligned: Set(1...6)))
        out.append("")
        out.append("most confused (true → predicted, images summed over runs):")
        for r in rows { out.append("  \(r.experiment): \(confusedSummary(r.confusion))") }
        let changed = rows.filter { !$0.changes.isEmpty || $0.note != nil }
        if !changed.isEmpty {
            out.append("")
            for r in changed {
                out.append("\(r.experiment) vs \(r.baseline ?? "-"): "
                    + "\(r.changes.isEmpty ? "same spec" : r.changes.joined(separator: ", "))\(r.note.map { "  [\($0)]" } ?? "")")
            }
        }
        return out.joined(separator: "\n")
    }

    /// The top pairs of off-diagonal confusion, e.g. "fear → happiness 12, disgust → anger 5".
    static func confusedSummary(_ confusion: [[Int]], top: Int = 3) -> String {
        let pairs = Report.confusedPairs(confusion).prefix(top)
        return pairs.isEmpty ? "no errors" : pairs.map { "\($0.0) → \($0.1) \($0.2)" }.joined(separator: ", ")
    }

    public static let csvHeader = ["experiment", "baseline", "split", "runs", "accuracy_mean", "accuracy_std", "delta_accuracy",
                                   "ci_low", "ci_high", "p_value", "holm_p", "p_improve", "p_improve_low", "p_improve_high",
                                   "min_detectable", "mcnemar_p",
                                   "macro_f1", "balanced_accuracy"] + Emotion.allCases.map { "recall_\($0.name)" }
        + ["params", "flops", "best_epoch", "train_seconds", "most_confused", "changes", "note"]

    public static func csv(_ rows: [Row], split: EvalSplit) -> String {
        func p6(_ v: Double?) -> String { v.map { String(format: "%.6f", $0) } ?? "" }
        var lines = [csvHeader.joined(separator: ",")]
        for r in rows {
            let cells: [String] = [r.experiment, r.baseline ?? "", split.rawValue, "\(r.runs)", f(r.accMean, 4), f(r.accStd, 4),
                                   f(r.delta, 4), f(r.ciLow, 4), f(r.ciHigh, 4), p6(r.pValue), p6(r.holmP),
                                   f(r.pImprove, 4), f(r.pImproveLow, 4), f(r.pImproveHigh, 4), f(r.minDetectable, 4), p6(r.mcnemarP)]
                + [f(r.macroF1, 4), f(r.balancedAccuracy, 4)] + r.recall.map { f($0, 4) }
                + ["\(r.params)", f(r.flops, 0), f(r.bestEpoch, 1), f(r.trainSeconds, 1),
                   confusedSummary(r.confusion), r.changes.joined(separator: "; "), r.note ?? ""]
            lines.append(cells.map(CSV.escape).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
