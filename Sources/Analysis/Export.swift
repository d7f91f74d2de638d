import Foundation
import Registry
import Specs

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
        for split in EvalSplit.allCases {
            let all = try Compare.load(reg, split: split)
            guard !all.isEmpty else { continue }
            let url = dir.appendingPathComponent("comparison_\(split.rawValue).csv")
            try Data(Compare.csv(try Compare.rows(all), split: split).utf8).write(to: url)
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
            sadness, anger, disgust, fear), `comparison_val.csv` (and `comparison_test.csv` when runs were
            evaluated on test: `lab compare --csv`), and `analysis.ipynb`, which loads them with pandas and
            draws learning curves, the comparison and confusion matrices.

            Open it with:

                pip install notebook pandas matplotlib
                jupyter notebook analysis.ipynb

            Regenerate after new runs with `swift run lab export`.

            """.utf8).write(to: readme)
        out.append(readme)
        return out
    }

    /// The notebook is a template file (Resources/analysis.ipynb, embedded in
    /// the binary at build time): edit it in Jupyter, not here.
    static func notebook() -> Data { Data(PackageResources.analysis_ipynb) }
}
