import Foundation
import Registry

/// The closing lines of `lab run`: where its results are, as paths and
/// commands to paste, so a first run ends by pointing at what it made.
public enum NextSteps {
    public static func text(runs: [String], registryPath: String, report: URL?, explanations: [URL]) -> String {
        guard let last = runs.last else { return "" }
        let short = String(last.prefix(10))
        var lines = ["", "where to look:"]
        if let report { lines.append("  report        \(report.path)   (figures beside it; lab report --markdown rewrites it)") } else {
            lines.append("  report        lab report --markdown   (writes reports/report.md)")
        }
        for dir in explanations {
            lines.append("  Grad-CAM      \(dir.appendingPathComponent("contact_sheet.jpg").path)   "
                         + "(face, Grad-CAM, Grad-CAM++; green frame = correct)")
        }
        lines.append("  this run      lab show \(short)")
        lines.append("  all runs      lab runs   ·   lab compare")
        lines.append("  registry      sqlite3 \(registryPath) \"\(Registry.summaryQueryExample)\"")
        return lines.joined(separator: "\n")
    }
}
