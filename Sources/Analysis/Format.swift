import Foundation

/// Aligned text tables for the terminal.
public enum TextTable {
    public static func render(_ header: [String], _ rows: [[String]], rightAligned: Set<Int> = []) -> String {
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                let pad = String(repeating: " ", count: widths[i] - c.count)
                return rightAligned.contains(i) ? pad + c : c + pad
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        return ([line(header), line(widths.map { String(repeating: "-", count: $0) })] + rows.map(line)).joined(separator: "\n")
    }
}

/// Numbers as every text view writes them.
public enum Format {
    /// "1h05m", "3m07s", "42s"; "?" for what is not a time.
    public static func duration(_ s: Double) -> String {
        guard s.isFinite, s >= 0 else { return "?" }
        let t = Int(s.rounded())
        if t >= 3600 { return "\(t / 3600)h\(String(format: "%02d", (t % 3600) / 60))m" }
        if t >= 60 { return "\(t / 60)m\(String(format: "%02d", t % 60))s" }
        return "\(t)s"
    }

    /// A share as a percentage with two decimals, "-" when absent.
    public static func percent(_ v: Double?) -> String { v.map { String(format: "%.2f%%", $0 * 100) } ?? "-" }
}

/// A CSV cell, quoted when it must be.
public enum CSV {
    public static func escape(_ s: String) -> String {
        s.contains(",") || s.contains("\"") || s.contains("\n") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}
