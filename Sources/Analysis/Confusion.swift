import Faces
import Registry

/// The one way a confusion matrix is built from what the registry holds:
/// counts in class order, rows true and columns predicted. A class name this
/// lab does not know is left out.
public enum Confusion {
    public static func matrix(_ entries: some Sequence<(truth: String, predicted: String, count: Int)>) -> [[Int]] {
        let names = Emotion.allCases.map(\.name)
        var m = [[Int]](repeating: [Int](repeating: 0, count: names.count), count: names.count)
        for e in entries {
            if let i = names.firstIndex(of: e.truth), let j = names.firstIndex(of: e.predicted) { m[i][j] += e.count }
        }
        return m
    }

    /// From stored cells (summed when several runs' cells are given).
    public static func matrix(_ cells: [ConfusionCell]) -> [[Int]] {
        matrix(cells.lazy.map { (truth: $0.trueClass, predicted: $0.predictedClass, count: $0.count) })
    }

    /// From per-image predictions, one count each.
    public static func matrix(_ predictions: [Prediction]) -> [[Int]] {
        matrix(predictions.lazy.map { (truth: $0.trueClass, predicted: $0.predictedClass, count: 1) })
    }
}
