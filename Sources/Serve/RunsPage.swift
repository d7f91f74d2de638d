import Foundation
import Analysis
import Specs
import Registry

/// One cell of the runs table as both the page and /api/runs carry it, so
/// the live update shows exactly what a reload would.
struct Cell: Encodable {
    var text: String
    var sort: Double?          // numeric sort key; text sorts otherwise
    var href: String?
    var progress: Double?      // 0...1 for a running run's bar
}

struct RunsRow: Encodable {
    var id: String
    var status: String
    var cells: [Cell]
}

enum RunsPage {
    static let header = ["run", "experiment", "seed", "status", "epochs", "heartbeat", "best val acc", "val macro-F1",
                         "test acc", "duration", "host"]
    static let numeric: Set<Int> = [2, 4, 5, 6, 7, 8, 9]

    static func rows(_ runs: [RunRow], now: Date) -> [RunsRow] {
        runs.reversed().map { r in   // newest first: ids sort by time
            RunsRow(id: r.id, status: r.status.rawValue, cells: cells(r, now: now))
        }
    }

    static func cells(_ r: RunRow, now: Date) -> [Cell] {
        let running = r.status == .running
        let maxEpochs = SpecFacts.maxEpochs(r.specJSON)
        let age = running ? Time.parse(r.heartbeatAt).map { now.timeIntervalSince($0) } : nil
        let seconds = running ? Time.parse(r.startedAt).map { now.timeIntervalSince($0) } : r.trainSeconds
        // As `lab runs` shows it (best/run), or how far a running run has come.
        let epochs = running ? "\(r.epochsRun)\(maxEpochs.map { " of \($0)" } ?? "")"
            : "\(r.bestEpoch.map { "\($0)/" } ?? "")\(r.epochsRun)"
        return [
            Cell(text: String(r.id.prefix(10)), href: "/runs/\(r.id)"),
            Cell(text: r.experiment),
            Cell(text: "\(r.seed)", sort: Double(r.seed)),
            Cell(text: r.status.rawValue),
            Cell(text: epochs, sort: Double(r.epochsRun),
                 progress: running ? maxEpochs.map { min(1, Double(r.epochsRun) / Double(max(1, $0))) } : nil),
            Cell(text: age.map { "\(Format.duration($0)) ago" } ?? "-", sort: age),
            Cell(text: HTML.pct(r.bestValAccuracy), sort: r.bestValAccuracy),
            Cell(text: HTML.f(r.bestValMacroF1), sort: r.bestValMacroF1),
            Cell(text: HTML.pct(r.testAccuracy), sort: r.testAccuracy),
            Cell(text: seconds.map { Format.duration($0) } ?? "-", sort: seconds),
            Cell(text: r.host ?? "-"),
        ]
    }

    static func summary(_ runs: [RunRow]) -> String {
        "\(runs.count) run\(runs.count == 1 ? "" : "s"), \(runs.filter { $0.status == .running }.count) running."
    }

    /// A cell as HTML; lab.js builds the same markup from the JSON.
    static func html(_ c: Cell) -> String {
        var s = c.href.map { "<a href=\"\(HTML.esc($0))\">\(HTML.esc(c.text))</a>" } ?? HTML.esc(c.text)
        if let p = c.progress { s += " <progress max=\"1\" value=\"\(String(format: "%.3f", p))\"></progress>" }
        return s
    }

    /// Rows holding every whitespace-separated term (case-insensitive), as lab.js filters.
    static func matches(_ row: RunsRow, _ query: String) -> Bool {
        let text = row.cells.map(\.text).joined(separator: " ").lowercased()
        return query.lowercased().split(whereSeparator: \.isWhitespace).allSatisfy { text.contains($0) }
    }

    static func render(_ runs: [RunRow], now: Date, query: String = "") -> String {
        let rows = rows(runs, now: now).filter { matches($0, query) }
        var tr = [String]()
        for r in rows {
            let cells = r.cells.enumerated().map { i, c in
                "<td\(numeric.contains(i) ? " class=\"num\"" : "")\(c.sort.map { " data-sort=\"\($0)\"" } ?? "")>\(html(c))</td>"
            }
            tr.append("<tr class=\"status-\(HTML.esc(r.status))\" data-run=\"\(HTML.esc(r.id))\">\(cells.joined())</tr>")
        }
        let head = header.enumerated().map { i, h in "<th\(numeric.contains(i) ? " class=\"num\"" : "")>\(HTML.esc(h))</th>" }.joined()
        let body = """
        <h1>Runs</h1>
        <p class="summary"><span id="summary-count">\(HTML.esc(summary(runs)))</span> \
        Epochs: best/run, or done of planned while running. Click a heading to sort.</p>
        <form method="get" action="/"><label>Filter <input id="filter" name="q" type="search" value="\(HTML.esc(query))" \
        placeholder="experiment, status, host…"></label></form>
        <div class="wide"><table id="runs" class="sortable" data-live="/api/runs">\
        <thead><tr>\(head)</tr></thead><tbody>\(tr.joined())</tbody></table></div>
        \(runs.isEmpty ? "<p>No runs yet: <code>lab run experiments/quickstart.json</code>.</p>" : "")
        """
        return HTML.page(title: "Runs", body: body)
    }
}

/// Facts read from a run's resolved spec JSON.
enum SpecFacts {
    static func maxEpochs(_ specJSON: String) -> Int? {
        (try? JSONValue(parsing: Data(specJSON.utf8)))?[path: ["train", "max_epochs"]]?.number.map { Int($0) }
    }

    static func pretty(_ specJSON: String) -> String {
        (try? JSONValue(parsing: Data(specJSON.utf8)))?.pretty ?? specJSON
    }
}

enum Time {
    static func parse(_ s: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: s) ?? ISO8601DateFormatter().date(from: s)
    }
}
