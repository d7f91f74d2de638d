import Faces
import Failures
import Foundation
import Registry

/// Completed runs of experiments side by side against their baselines, on
/// paired per-image predictions.
public enum Compare {
    public struct RunData {
        public var id: String, experiment: String, parent: String?, seed: Int, fingerprint: String
        public var specJSON: String, params: Int, bestEpoch: Int, trainSeconds: Double
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
        public var delta: Double?, ciLow: Double?, ciHigh: Double?, pValue: Double?
        public var macroF1: Double, recall: [Double?], params: Int, bestEpoch: Double, trainSeconds: Double
        public var balancedAccuracy: Double = .nan // mean per-class recall, averaged over the runs
        public var confusion: [[Int]] = []         // summed over the runs: where the errors go
        public var changes: [String]
        public var note: String?
        /// McNemar p Holm-adjusted over the comparisons shown with this one.
        public var holmP: Double? = nil
    }

    /// Runs with predictions on `split`, by experiment name.
    public static func load(_ reg: Registry, split: String) throws -> [String: [RunData]] {
        let names = Emotion.allCases.map(\.name)
        var out = [String: [RunData]]()
        for l in try reg.completedRuns() {
            let r = l.run
            let preds = try reg.predictions(run: r.id, split: split)
            if preds.isEmpty { continue }
            var correct = [String: Bool]()
            var conf = [[Int]](repeating: [Int](repeating: 0, count: names.count), count: names.count)
            for p in preds {
                correct[p.image] = p.trueClass == p.predictedClass
                if let i = names.firstIndex(of: p.trueClass), let j = names.firstIndex(of: p.predictedClass) { conf[i][j] += 1 }
            }
            out[l.experiment.name, default: []].append(RunData(
                id: r.id, experiment: l.experiment.name, parent: l.experiment.parent, seed: r.seed, fingerprint: r.datasetFingerprint ?? "",
                specJSON: l.experiment.specJson, params: r.params ?? 0, bestEpoch: r.bestEpoch ?? 0,
                trainSeconds: r.trainSeconds ?? 0, correct: correct, confusion: conf))
        }
        return out
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
        for w in wanted where all[w] == nil { throw Failure(.registry, "no completed runs of experiment \(w) with predictions on this split") }
        if let baseline, all[baseline] == nil { throw Failure(.registry, "baseline \(baseline) has no completed runs with predictions on this split") }
        // Baselines first, then their ablations.
        let ordered = wanted.sorted { a, b in
            let pa = all[a]!.first!.parent == nil || a == baseline, pb = all[b]!.first!.parent == nil || b == baseline
            return pa != pb ? pa : a < b
        }
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
        row.confusion = runs.map(\.confusion).reduce(into: [[Int]]()) { sum, c in
            sum = sum.isEmpty ? c : zip(sum, c).map { zip($0, $1).map(+) }
        }
        return row
    }

    /// Δ accuracy against the baseline's runs, with a bootstrap interval over
    /// images and McNemar on seed-matched pairs, when both saw the same images.
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
            row.note = fps.count > 1 ? "not paired: trained on different data (fingerprints differ)" : "not paired: different evaluation images (split settings differ)"
            return
        }
        let imgs = images.sorted()
        func share(_ rs: [RunData], _ img: String) -> Double { Double(rs.filter { $0.correct[img]! }.count) / Double(rs.count) }
        let ci = Statistics.bootstrapCI(imgs.map { share(runs, $0) - share(base, $0) })
        row.ciLow = ci.low; row.ciHigh = ci.high
        // McNemar on seed-matched pairs (by order when seeds differ), discordant counts pooled.
        var bCount = 0, cCount = 0
        let bySeed = Dictionary(base.map { ($0.seed, $0) }, uniquingKeysWith: { x, _ in x })
        let matched = runs.compactMap { r in bySeed[r.seed].map { (r, $0) } }
        for (e, bl) in matched.isEmpty ? Array(zip(runs, base)) : matched {
            for img in imgs {
                let ec = e.correct[img]!, bc = bl.correct[img]!
                if bc && !ec { bCount += 1 }
                if !bc && ec { cCount += 1 }
            }
        }
        row.pValue = Statistics.mcnemarExact(b: bCount, c: cCount)
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
        return "\(marker) significant at 5% family-wise (Holm over the \(tested.count) McNemar test\(tested.count == 1 ? "" : "s") shown): "
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

    /// Terminal text: the main table, per-class recall, and what each experiment changes.
    public static func text(_ rows: [Row], split: String) -> String {
        var out = ["split: \(split == "test" ? "test" : "validation (best epoch)")",
                   "accuracy and balanced accuracy (mean per-class recall) in %; Δ acc vs baseline with a 95% bootstrap CI over images;",
                   "McNemar exact p on paired predictions", ""]
        out.append(TextTable.render(
            ["experiment", "vs", "runs", "acc mean±std", "bal acc", "macro-F1", "Δ acc [95% CI]", "McNemar p", "Holm p", "params", "best ep", "train"],
            rows.map { r in
                [r.experiment, r.baseline ?? "-", "\(r.runs)", accuracy(r, separator: "±"), pct(r.balancedAccuracy), f(r.macroF1, 3),
                 r.delta.map { d in r.ciLow.map { "\(signedPct(d)) [\(signedPct($0)), \(signedPct(r.ciHigh))]" } ?? signedPct(d) } ?? "-",
                 pString(r.pValue), holmString(r, marker: "*", pad: true), "\(r.params)", epoch(r.bestEpoch), Runner.duration(r.trainSeconds)]
            }, rightAligned: Set(2...11)))
        if let note = holmFootnote(rows, marker: "*") { out.append(note) }
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
                out.append("\(r.experiment) vs \(r.baseline ?? "-"): \(r.changes.isEmpty ? "same spec" : r.changes.joined(separator: ", "))\(r.note.map { "  [\($0)]" } ?? "")")
            }
        }
        return out.joined(separator: "\n")
    }

    /// The top pairs of off-diagonal confusion, e.g. "fear → happiness 12, disgust → anger 5".
    static func confusedSummary(_ confusion: [[Int]], top: Int = 3) -> String {
        let pairs = Report.confusedPairs(confusion).prefix(top)
        return pairs.isEmpty ? "no errors" : pairs.map { "\($0.0) → \($0.1) \($0.2)" }.joined(separator: ", ")
    }

    public static let csvHeader = ["experiment", "baseline", "split", "runs", "accuracy_mean", "accuracy_std", "delta_accuracy", "ci_low", "ci_high",
                                   "mcnemar_p", "holm_p", "macro_f1", "balanced_accuracy"] + Emotion.allCases.map { "recall_\($0.name)" }
        + ["params", "best_epoch", "train_seconds", "most_confused", "changes", "note"]

    public static func csv(_ rows: [Row], split: String) -> String {
        var lines = [csvHeader.joined(separator: ",")]
        for r in rows {
            let cells: [String] = [r.experiment, r.baseline ?? "", split, "\(r.runs)", f(r.accMean, 4), f(r.accStd, 4), f(r.delta, 4), f(r.ciLow, 4),
                                   f(r.ciHigh, 4), r.pValue.map { String(format: "%.6f", $0) } ?? "", r.holmP.map { String(format: "%.6f", $0) } ?? ""]
                + [f(r.macroF1, 4), f(r.balancedAccuracy, 4)] + r.recall.map { f($0, 4) } + ["\(r.params)", f(r.bestEpoch, 1), f(r.trainSeconds, 1),
                                                                  confusedSummary(r.confusion), r.changes.joined(separator: "; "), r.note ?? ""]
            lines.append(cells.map(CSV.escape).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

enum CSV {
    static func escape(_ s: String) -> String {
        s.contains(",") || s.contains("\"") || s.contains("\n") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}
