import Faces
import Registry

/// The one way a confusion matrix is built from what the registry holds:
/// counts in class order, rows true and columns predicted.
public enum Confusion {
    public static func matrix(_ entries: some Sequence<(truth: Emotion, predicted: Emotion, count: Int)>) -> [[Int]] {
        var m = [[Int]](repeating: [Int](repeating: 0, count: Emotion.count), count: Emotion.count)
        for e in entries { m[e.truth.rawValue][e.predicted.rawValue] += e.count }
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
