import Foundation
import GRDB
import Registry

/// `lab export`: tidy CSVs and a ready Jupyter notebook.
public enum Export {
    static let tables: [(String, String)] = [
        ("runs", "SELECT * FROM run_summary ORDER BY run_id"),
        ("epochs", "SELECT e.name AS experiment, p.* FROM epochs p JOIN runs r ON r.id = p.run_id JOIN experiments e ON e.id = r.experiment_id ORDER BY p.run_id, p.epoch"),
        ("confusion", "SELECT e.name AS experiment, c.* FROM confusion c JOIN runs r ON r.id = c.run_id JOIN experiments e ON e.id = r.experiment_id ORDER BY c.run_id, c.split, c.true_class, c.predicted_class"),
        ("predictions", "SELECT e.name AS experiment, p.* FROM predictions p JOIN runs r ON r.id = p.run_id JOIN experiments e ON e.id = r.experiment_id ORDER BY p.run_id, p.split, p.image"),
        ("explanations", "SELECT e.name AS experiment, x.* FROM explanations x JOIN runs r ON r.id = x.run_id JOIN experiments e ON e.id = r.experiment_id ORDER BY x.run_id, x.layer, x.method, x.image"),
        ("test_evaluations", "SELECT * FROM test_evaluations ORDER BY id"),
    ]

    static func cell(_ v: DatabaseValue) -> String {
        switch v.storage {
        case .null: return ""
        case .int64(let i): return String(i)
        case .double(let d): return String(format: "%.6g", d)
        case .string(let s): return CSV.escape(s)
        case .blob: return ""
        }
    }

    public static func write(_ reg: Registry, to dir: URL) throws -> [URL] {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var out = [URL]()
        for (name, sql) in tables {
            let text: String = try reg.read { db in
                let stmt = try db.makeStatement(sql: sql)
                var lines = [stmt.columnNames.joined(separator: ",")]
                let rows = try Row.fetchCursor(stmt)
                while let r = try rows.next() { lines.append(r.databaseValues.map(cell).joined(separator: ",")) }
                return lines.joined(separator: "\n") + "\n"
            }
            let url = dir.appendingPathComponent("\(name).csv")
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

    /// The notebook is a template file (Resources/analysis.ipynb): edit it in Jupyter, not here.
    static func notebook() throws -> Data {
        guard let url = Bundle.module.url(forResource: "analysis", withExtension: "ipynb") else {
            throw RegistryError("lab's notebook template (analysis.ipynb) is missing from its resources; rebuild lab")
        }
        return try Data(contentsOf: url)
    }
}
