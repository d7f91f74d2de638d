import Faces
import Registry

/// The figures `lab report` writes and `lab serve` shows: one drawing path,
/// so a curve in the browser is the curve in the report.
public enum Figures {
    public static let classes = Emotion.allCases.map(\.name)

    /// One run's epochs, with the seed that tells it apart from its siblings.
    public struct RunCurve: Sendable {
        public var seed: Int
        public var epochs: [Epoch]
        public init(seed: Int, epochs: [Epoch]) { self.seed = seed; self.epochs = epochs }
    }

    /// At most four runs are drawn: beyond that the legend is unreadable.
    static let maxRuns = 4
    /// Lines one overlaid chart can tell apart (the palette's colours).
    public static let maxOverlaid = 8

    /// Train (dashed) and validation loss per run.
    public static func loss(title: String, runs: [RunCurve]) -> String {
        SVG.lineChart(title: title, xLabel: "epoch", yLabel: "loss", series: pairs(runs, \.trainLoss, \.valLoss))
    }

    /// Train (dashed) and validation accuracy per run.
    public static func accuracy(title: String, runs: [RunCurve]) -> String {
        SVG.lineChart(title: title, xLabel: "epoch", yLabel: "accuracy", series: pairs(runs, \.trainAccuracy, \.valAccuracy))
    }

    /// Validation accuracy of runs of several experiments on one chart (compare).
    public static func validationAccuracy(title: String, runs: [(label: String, curve: RunCurve)]) -> String {
        SVG.lineChart(title: title, xLabel: "epoch", yLabel: "validation accuracy",
                      series: runs.map { .init(label: $0.label, points: points($0.curve.epochs, \.valAccuracy), dashed: false) })
    }

    /// Counts, or row percentages, with rows true and columns predicted.
    public static func confusion(title: String, counts: [[Int]], normalized: Bool) -> String {
        SVG.confusion(title: title, classes: classes, counts: counts, normalized: normalized)
    }

    static func points(_ epochs: [Epoch], _ value: KeyPath<Epoch, Double?>) -> [(Double, Double)] {
        epochs.compactMap { e in e[keyPath: value].map { (Double(e.epoch), $0) } }
    }

    static func pairs(_ runs: [RunCurve], _ train: KeyPath<Epoch, Double?>, _ val: KeyPath<Epoch, Double?>) -> [SVG.Series] {
        runs.prefix(maxRuns).flatMap { r -> [SVG.Series] in
            let tag = runs.count > 1 ? " s\(r.seed)" : ""
            return [.init(label: "train\(tag)", points: points(r.epochs, train), dashed: true),
                    .init(label: "val\(tag)", points: points(r.epochs, val), dashed: false)]
        }
    }
}
