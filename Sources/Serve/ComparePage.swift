import Failures
import Foundation
import Analysis
import Registry

/// `/compare?e=a&e=b`: the `lab compare` table and the validation curves overlaid.
enum ComparePage {
    static func render(_ site: Site, chosen: [String]) throws -> String {
        let all = try Compare.load(site.registry, split: .val)
        var body = "<h1>Compare</h1>" + picker(all.keys.sorted(), chosen: chosen)
        guard !all.isEmpty else { return HTML.page(title: "Compare", body: body + "<p>No completed runs with validation predictions "
            + "yet.</p>") }
        let rows: [Compare.Row]
        do {
            rows = try Compare.rows(all, only: chosen.uniqued())
        } catch let e as Failure where e.kind == .registry {
            throw NotFound(e.description)
        }
        body += "<p class=\"summary\">Validation split at each run's best epoch. Accuracy in %, Δ and MDE in points, against the "
            + "experiment each one extends. "
            + HTML.esc(Compare.method.joined(separator: " ")) + "</p>"
        body += table(rows)
        if let note = Compare.holmFootnote(rows, marker: "*") { body += "<p class=\"summary\">\(HTML.esc(note))</p>" }
        body += try curves(site, rows.map(\.experiment), all)
        return HTML.page(title: "Compare", body: body)
    }

    /// A plain GET form: choosing experiments works without JavaScript.
    static func picker(_ names: [String], chosen: [String]) -> String {
        guard !names.isEmpty else { return "" }
        let boxes = names.map { n in
            "<label><input type=\"checkbox\" name=\"e\" value=\"\(HTML.esc(n))\"\(chosen.contains(n) ? " checked" : "")> "
                + "\(HTML.esc(n))</label>"
        }.joined(separator: " ")
        return "<form method=\"get\" action=\"/compare\" class=\"picker\">\(boxes) <button type=\"submit\">compare</button> <span "
            + "class=\"summary\">(none ticked: all)</span></form>"
    }

    static func table(_ rows: [Compare.Row]) -> String {
        let header = ["experiment", "vs", "runs", "accuracy", "balanced accuracy", "macro-F1", "Δ [95% CI]", "p", "Holm p",
                      "P(A>B) [95% CI]", "MDE"]
            + Compare.shortClass.map { "recall \($0)" } + ["params", "FLOPs", "best epoch", "changes"]
        let cells: [[String]] = rows.map { r in
            let changes = (r.changes.isEmpty ? (r.baseline == nil ? "" : "same spec") : r.changes.joined(separator: ", "))
                + (r.note.map { " [\($0)]" } ?? "")
            // What imbalance hides leads, as in `lab compare`: balanced accuracy and macro-F1 beside accuracy.
            return ([r.experiment, r.baseline ?? "-", "\(r.runs)", Compare.accuracy(r), Compare.pct(r.balancedAccuracy),
                     Compare.f(r.macroF1, 3),
                     Compare.deltaString(r), Compare.pString(r.pValue), Compare.holmString(r, marker: "*"), Compare.improveString(r),
                     Compare.mdeString(r)]
                    + r.recall.map { Compare.pct($0) }
                    + ["\(r.params)", Compare.flopsString(r.flops), Compare.epoch(r.bestEpoch), changes]).map(HTML.esc)
        }
        return HTML.table(header, cells, id: "compare", numeric: Set(2...19), sortable: true)
    }

    /// Every run of the chosen experiments, one line each, drawn by the report's chart code.
    static func curves(_ site: Site, _ names: [String], _ all: [String: [Compare.RunData]]) throws -> String {
        var runs = [(label: String, curve: Figures.RunCurve)]()
        for name in names {
            for r in all[name] ?? [] {
                runs.append((label: "\(name) s\(r.seed)", curve: .init(seed: r.seed, epochs: try site.registry.epochs(run: r.id))))
            }
        }
        let shown = runs.prefix(Figures.maxOverlaid)
        let more = runs.count - shown.count
        return "<h2>Validation accuracy</h2><div class=\"figures\"><figure>"
            + Figures.validationAccuracy(title: "validation accuracy by epoch", runs: Array(shown))
            + "</figure></div>" + (more > 0 ? "<p class=\"summary\">\(more) more run\(more == 1 ? "" : "s") not drawn (tick fewer "
                + "experiments).</p>" : "")
    }
}
