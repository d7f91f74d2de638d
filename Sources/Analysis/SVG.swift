import Foundation

/// Small, dependency-free SVG charts for reports: fixed decimals and stable
/// ordering, so the same registry gives byte-identical files.
public enum SVG {
    static func n(_ v: Double) -> String { String(format: "%.1f", v) }
    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]

    public struct Series { public var label: String; public var points: [(Double, Double)]; public var dashed: Bool }

    /// A line chart with axes, ticks and a legend.
    public static func lineChart(title: String, xLabel: String, yLabel: String, series: [Series], width: Double = 420,
                                 height: Double = 280) -> String {
        let left = 56.0, right = 12.0, top = 28.0, bottom = 44.0
        let xs = series.flatMap { $0.points.map(\.0) }, ys = series.flatMap { $0.points.map(\.1) }
        let x0 = xs.min() ?? 0, x1 = max((xs.max() ?? 1), x0 + 1)
        var y0 = ys.min() ?? 0, y1 = ys.max() ?? 1
        if y1 - y0 < 1e-9 { y0 -= 0.5; y1 += 0.5 }
        let pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad
        let pw = width - left - right, ph = height - top - bottom
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * pw }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * ph }
        var s = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(n(width))\" height=\"\(n(height))\" font-family=\"sans-serif\" "
            + "font-size=\"11\">",
                 "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
                 "<text x=\"\(n(width / 2))\" y=\"16\" text-anchor=\"middle\" font-size=\"13\">\(esc(title))</text>",
                 "<rect x=\"\(n(left))\" y=\"\(n(top))\" width=\"\(n(pw))\" height=\"\(n(ph))\" fill=\"none\" stroke=\"#888\"/>"]
        for i in 0...4 {
            let y = y0 + (y1 - y0) * Double(i) / 4
            s.append("<line x1=\"\(n(left))\" x2=\"\(n(left + pw))\" y1=\"\(n(py(y)))\" y2=\"\(n(py(y)))\" stroke=\"#eee\"/>")
            s.append("<text x=\"\(n(left - 4))\" y=\"\(n(py(y) + 4))\" text-anchor=\"end\">\(String(format: "%.3g", y))</text>")
        }
        let xt = Int(x1 - x0) <= 10 ? Int(x1 - x0) : 5
        for i in 0...max(1, xt) {
            let x = x0 + (x1 - x0) * Double(i) / Double(max(1, xt))
            s.append("<text x=\"\(n(px(x)))\" y=\"\(n(top + ph + 14))\" text-anchor=\"middle\">\(String(format: "%.0f", x))</text>")
        }
        s.append("<text x=\"\(n(left + pw / 2))\" y=\"\(n(height - 8))\" text-anchor=\"middle\">\(esc(xLabel))</text>")
        s.append("<text x=\"14\" y=\"\(n(top + ph / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 14 "
            + "\(n(top + ph / 2)))\">\(esc(yLabel))</text>")
        for (i, ser) in series.enumerated() {
            let color = palette[i % palette.count]
            let pts = ser.points.map { "\(n(px($0.0))),\(n(py($0.1)))" }.joined(separator: " ")
            s.append("<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.8\"\(ser.dashed ? " stroke-dasharray=\"5 3\"" : "") "
                + "points=\"\(pts)\"/>")
            let ly = top + 12 + Double(i) * 14
            s.append("<line x1=\"\(n(left + pw - 110))\" x2=\"\(n(left + pw - 92))\" y1=\"\(n(ly - 4))\" y2=\"\(n(ly - 4))\" "
                + "stroke=\"\(color)\" stroke-width=\"2\"\(ser.dashed ? " stroke-dasharray=\"5 3\"" : "")/>")
            s.append("<text x=\"\(n(left + pw - 88))\" y=\"\(n(ly))\">\(esc(ser.label))</text>")
        }
        s.append("</svg>")
        return s.joined(separator: "\n") + "\n"
    }

    /// A confusion matrix heatmap: rows true, columns predicted; cells show
    /// counts or row percentages, shaded by the row-normalized value.
    public static func confusion(title: String, classes: [String], counts: [[Int]], normalized: Bool) -> String {
        let cell = 60.0, left = 90.0, top = 70.0
        let k = classes.count
        let width = left + cell * Double(k) + 20, height = top + cell * Double(k) + 40
        var s = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(n(width))\" height=\"\(n(height))\" font-family=\"sans-serif\" "
            + "font-size=\"11\">",
                 "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
                 "<text x=\"\(n(width / 2))\" y=\"16\" text-anchor=\"middle\" font-size=\"13\">\(esc(title))</text>",
                 "<text x=\"\(n(left + cell * Double(k) / 2))\" y=\"34\" text-anchor=\"middle\">predicted</text>",
                 "<text x=\"14\" y=\"\(n(top + cell * Double(k) / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 14 "
                     + "\(n(top + cell * Double(k) / 2)))\">true</text>"]
        for (j, c) in classes.enumerated() {
            s.append("<text x=\"\(n(left + cell * (Double(j) + 0.5)))\" y=\"\(n(top - 8))\" "
                + "text-anchor=\"middle\">\(esc(String(c.prefix(9))))</text>")
        }
        for i in 0..<k {
            let total = max(1, counts[i].reduce(0, +))
            s.append("<text x=\"\(n(left - 6))\" y=\"\(n(top + cell * (Double(i) + 0.5) + 4))\" "
                + "text-anchor=\"end\">\(esc(classes[i]))</text>")
            for j in 0..<k {
                let v = Double(counts[i][j]) / Double(total)
                let shade = Int((1 - v) * 255)
                let fill = String(format: "#%02x%02xff", shade, shade)
                let label = normalized ? String(format: "%.0f%%", v * 100) : "\(counts[i][j])"
                s.append("<rect x=\"\(n(left + cell * Double(j)))\" y=\"\(n(top + cell * Double(i)))\" width=\"\(n(cell))\" "
                    + "height=\"\(n(cell))\" fill=\"\(fill)\" stroke=\"#ccc\"/>")
                s.append("<text x=\"\(n(left + cell * (Double(j) + 0.5)))\" y=\"\(n(top + cell * (Double(i) + 0.5) + 4))\" "
                    + "text-anchor=\"middle\" fill=\"\(v > 0.5 ? "white" : "black")\">\(label)</text>")
            }
        }
        s.append("</svg>")
        return s.joined(separator: "\n") + "\n"
    }
}
