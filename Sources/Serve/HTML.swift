import Foundation

/// HTML built as strings: every value from the registry goes through `esc`.
enum HTML {
    static func esc(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// A path segment or query value, percent-encoded (then escaped where it lands in HTML).
    static func url(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? ""
    }

    /// The frame every page shares; `body` is HTML already escaped.
    static func page(title: String, body: String, bodyAttributes: String = "") -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(esc(title)) · lab</title>
        <link rel="stylesheet" href="/static/lab.css">
        <script src="/static/lab.js" defer></script>
        </head><body\(bodyAttributes)>
        <nav><a href="/">runs</a> <a href="/compare">compare</a> <a href="/sweeps">sweeps</a></nav>
        <main>
        \(body)
        </main></body></html>
        """
    }

    /// A table whose cells are HTML already; `sortable` lets lab.js sort it by a header click.
    static func table(_ header: [String], _ rows: [[String]], id: String? = nil, numeric: Set<Int> = [], sortable: Bool = false) -> String {
        var s = "<div class=\"wide\"><table\(id.map { " id=\"\(esc($0))\"" } ?? "")\(sortable ? " class=\"sortable\"" : "")><thead><tr>"
        for (i, h) in header.enumerated() { s += "<th\(numeric.contains(i) ? " class=\"num\"" : "")>\(esc(h))</th>" }
        s += "</tr></thead><tbody>"
        for r in rows {
            s += "<tr>" + r.enumerated().map { i, c in "<td\(numeric.contains(i) ? " class=\"num\"" : "")>\(c)</td>" }.joined() + "</tr>"
        }
        return s + "</tbody></table></div>"
    }

    /// Key-value lines (provenance, summaries).
    static func definitions(_ pairs: [(String, String?)]) -> String {
        "<dl>" + pairs.map { "<dt>\(esc($0.0))</dt><dd>\(esc($0.1 ?? "-"))</dd>" }.joined() + "</dl>"
    }

    static func f(_ v: Double?, _ digits: Int = 4) -> String {
        v.map { $0.isFinite ? String(format: "%.\(digits)f", $0) : "-" } ?? "-"
    }

    static func pct(_ v: Double?) -> String { v.map { $0.isFinite ? String(format: "%.2f%%", $0 * 100) : "-" } ?? "-" }
}
