import Faces
import Failures
import Foundation
import Registry
import Specs

/// Everything the registry holds about one run, as `lab show` prints it and
/// `lab serve`'s run page draws it: one model, two renderings.
public struct RunView: Sendable {
    public var row: RunRow
    public var run: Run
    public var epochs: [Epoch]
    /// Validation at the best epoch, then test when it was evaluated.
    public var evaluations: [Evaluation]
    public var testLooks: [TestEvaluation]
    public var explanations: [ExplanationSummary]
    public var hasBestCheckpoint: Bool

    /// One split's confusion matrix and per-class metrics.
    public struct Evaluation: Sendable {
        public var split: EvalSplit
        /// Rows true, columns predicted, in class order.
        public var matrix: [[Int]]
        public var classes: [Emotion: ClassMetric]
        public var summary: Metrics { Metrics(confusion: matrix) }
        /// The heading: validation at the best epoch, or the test split.
        public var title: String { split == .val ? "\(split.name), best epoch" : split.name }
    }

    /// The run whose id starts with `prefix`.
    public static func load(_ reg: Registry, _ prefix: String) throws -> RunView {
        let row = try RunRow.one(reg, prefix)
        guard let run = try reg.run(row.id) else { throw Failure(.registry, "no run \(row.id)") }
        let evaluations = try EvalSplit.allCases.compactMap { split -> Evaluation? in
            let cells = try reg.confusion(run: row.id, split: split)
            if cells.isEmpty { return nil }
            let metrics = try reg.classMetrics(run: row.id, split: split)
            return Evaluation(split: split, matrix: Confusion.matrix(cells),
                              classes: Dictionary(metrics.map { ($0.emotion, $0) }, uniquingKeysWith: { a, _ in a }))
        }
        return RunView(row: row, run: run, epochs: try reg.epochs(run: row.id), evaluations: evaluations,
                       testLooks: try reg.testEvaluations(run: row.id), explanations: try reg.explanationSummaries(run: row.id),
                       hasBestCheckpoint: try reg.hasCheckpoint(run: row.id, kind: .best))
    }

    /// `lab show`: provenance, the resolved spec, epochs, confusion matrices and test looks.
    public var text: String {
        let r = row
        var out = ["run \(r.id)  \(r.experiment)\(r.parent.map { " (extends \($0))" } ?? "")  seed \(r.seed)  \(r.status)"]
        if let e = r.error { out.append("note: \(e)") }
        for (k, v) in provenance { out.append("  " + k.padding(toLength: 20, withPad: " ", startingAt: 0) + (v ?? "-")) }
        out.append("\nresolved spec:")
        if let spec = try? JSONValue(parsing: Data(r.specJSON.utf8)) { out.append(spec.pretty) }
        out.append("\nepochs:")
        let f: (Double?, String) -> String = { v, fmt in v.map { String(format: fmt, $0) } ?? "-" }
        out.append(TextTable.render(["epoch", "train loss", "train acc", "val loss", "val acc", "val macro-F1", "seconds", "img/s"],
            epochs.map { e in
                ["\(e.epoch)\(e.epoch == r.bestEpoch ? "*" : "")", f(e.trainLoss, "%.4f"), f(e.trainAccuracy, "%.4f"), f(e.valLoss, "%.4f"),
                 f(e.valAccuracy, "%.4f"), f(e.valMacroF1, "%.4f"), f(e.seconds, "%.1f"), f(e.imagesPerSecond, "%.0f")]
            }, rightAligned: Set(0..<8)))
        let names = Emotion.allCases.map(\.name)
        for ev in evaluations {
            let m = ev.matrix
            out.append("\nconfusion (\(ev.title); rows true, columns predicted):")
            out.append(TextTable.render(["true \\ pred"] + names + ["recall"],
                Emotion.allCases.map { e in [e.name] + m[e.rawValue].map(String.init) + [Format.percent(ev.classes[e]?.recall)] },
                rightAligned: Set(1...(names.count + 1))))
            let summary = ev.summary
            out.append(String(format: "accuracy %.2f%%, balanced accuracy %.2f%%, macro-F1 %.4f; most confused: %@",
                              summary.accuracy * 100, summary.balancedAccuracy * 100, summary.macroF1, Compare.confusedSummary(m)))
        }
        if !testLooks.isEmpty {
            out.append("\ntest evaluations:")
            for l in testLooks {
                out.append(String(format: "  %@  accuracy %.4f  macro-F1 %.4f  (%@)", l.evaluatedAt, l.accuracy, l.macroF1,
                                  l.trigger.rawValue))
            }
        }
        return out.joined(separator: "\n")
    }

    /// The provenance lines of `lab show`, under their column names; numbers
    /// as SQLite holds them (git_dirty 0 or 1).
    public var provenance: [(String, String?)] {
        let r = run
        func s<T>(_ v: T?) -> String? { v.map { "\($0)" } }
        return [("started_at", r.startedAt), ("finished_at", r.finishedAt), ("train_seconds", s(r.trainSeconds)),
                ("git_commit", r.gitCommit), ("git_dirty", r.gitDirty.map { $0 ? "1" : "0" }), ("host", r.host),
                ("threads", s(r.threads)), ("blas", r.blas), ("build", r.build), ("dataset_source", r.datasetSource),
                ("dataset_root", r.datasetRoot), ("dataset_fingerprint", r.datasetFingerprint), ("label_mode", r.labelMode),
                ("n_train", s(r.nTrain)), ("n_val", s(r.nVal)), ("n_test", s(r.nTest)), ("params", s(r.params))]
    }
}
