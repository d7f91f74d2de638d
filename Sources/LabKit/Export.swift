import Foundation
import Registry

/// `lab export`: tidy CSVs and a ready Jupyter notebook.
public enum Export {
    static func cell(_ v: StoredValue) -> String {
        switch v {
        case .null: return ""
        case .integer(let i): return String(i)
        case .real(let d): return String(format: "%.6g", d)
        case .text(let s): return CSV.escape(s)
        case .blob: return ""
        }
    }

    public static func write(_ reg: Registry, to dir: URL) throws -> [URL] {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var out = [URL]()
        for table in ExportTable.allCases {
            let (columns, rows) = try reg.export(table)
            let text = ([columns.joined(separator: ",")] + rows.map { $0.map(cell).joined(separator: ",") }).joined(separator: "\n") + "\n"
            let url = dir.appendingPathComponent("\(table.rawValue).csv")
            try Data(text.utf8).write(to: url)
            out.append(url)
        }
        let nb = dir.appendingPathComponent("analysis.ipynb")
        try notebook().write(to: nb)
        out.append(nb)
        let readme = dir.appendingPathComponent("README.md")
        try Data("""
            # notebooks-export

            Written by `lab export` from `\(reg.path)`: one CSV per registry table (tidy: one row per
            observation; `predictions.probabilities` is a JSON array in class order happiness, surprise,
            sadness, anger, disgust, fear) and `analysis.ipynb`, which loads them with pandas and draws
            learning curves and confusion matrices.

            Open it with:

                pip install notebook pandas matplotlib
                jupyter notebook analysis.ipynb

            Regenerate after new runs with `swift run lab export`.

            """.utf8).write(to: readme)
        out.append(readme)
        return out
    }

    static func notebook() throws -> Data {
        func md(_ s: String) -> [String: Any] { ["cell_type": "markdown", "metadata": [String: Any](), "source": lines(s)] }
        func code(_ s: String) -> [String: Any] {
            ["cell_type": "code", "metadata": [String: Any](), "execution_count": NSNull(), "outputs": [Any](), "source": lines(s)]
        }
        func lines(_ s: String) -> [String] {
            let parts = s.components(separatedBy: "\n")
            return parts.enumerated().map { $0.offset < parts.count - 1 ? $0.element + "\n" : $0.element }
        }
        let cells: [[String: Any]] = [
            md("# lab runs\nLearning curves and confusion matrices from the CSVs `lab export` wrote beside this notebook."),
            code("import json\nimport pandas as pd\nimport matplotlib.pyplot as plt\n\nruns = pd.read_csv('runs.csv')\nepochs = pd.read_csv('epochs.csv')\nconfusion = pd.read_csv('confusion.csv')\npredictions = pd.read_csv('predictions.csv')\nruns[['run_id', 'experiment', 'status', 'seed', 'val_accuracy', 'val_macro_f1', 'test_accuracy']]"),
            md("## Learning curves"),
            code("fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4))\nfor run_id, g in epochs.groupby('run_id'):\n    label = f\"{g.experiment.iloc[0]} {run_id[:8]}\"\n    a.plot(g.epoch, g.val_loss, label=label)\n    b.plot(g.epoch, g.val_accuracy, label=label)\na.set(xlabel='epoch', ylabel='validation loss'); b.set(xlabel='epoch', ylabel='validation accuracy')\nb.legend(fontsize=7)\nplt.show()"),
            md("## Confusion matrices (validation, summed over runs, row-normalized)"),
            code("classes = ['happiness', 'surprise', 'sadness', 'anger', 'disgust', 'fear']\nval = confusion[confusion.split == 'val']\nfor name, g in val.groupby('experiment'):\n    m = g.pivot_table(index='true_class', columns='predicted_class', values='count', aggfunc='sum').reindex(index=classes, columns=classes).fillna(0)\n    m = m.div(m.sum(axis=1).replace(0, 1), axis=0)\n    plt.figure(figsize=(5, 4)); plt.imshow(m.values, cmap='Blues', vmin=0, vmax=1)\n    plt.xticks(range(6), classes, rotation=45); plt.yticks(range(6), classes)\n    plt.title(name); plt.colorbar(); plt.tight_layout(); plt.show()"),
            md("## Per-image probabilities"),
            code("probs = predictions.probabilities.apply(json.loads).apply(pd.Series)\nprobs.columns = classes\npd.concat([predictions[['experiment', 'split', 'image', 'true_class', 'predicted_class']], probs], axis=1).head()"),
        ]
        let nb: [String: Any] = [
            "nbformat": 4, "nbformat_minor": 5,
            "metadata": ["kernelspec": ["name": "python3", "display_name": "Python 3", "language": "python"],
                         "language_info": ["name": "python"]],
            "cells": cells.enumerated().map { i, c in var c = c; c["id"] = "cell-\(i)"; return c },
        ]
        return try JSONSerialization.data(withJSONObject: nb, options: [.prettyPrinted, .sortedKeys])
    }
}
