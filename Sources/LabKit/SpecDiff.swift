import Foundation

/// Which resolved keys two specs disagree on, as dotted paths.
public enum SpecDiff {
    /// Keys that say what a spec is, not how it differs.
    static let ignored: Set<String> = ["name", "description", "parent"]

    public static func changed(_ a: [String: Any], _ b: [String: Any], prefix: String = "") -> [String] {
        var out = [String]()
        for key in Set(a.keys).union(b.keys).sorted() {
            let path = prefix.isEmpty ? key : "\(prefix).\(key)"
            if prefix.isEmpty && ignored.contains(key) { continue }
            switch (a[key], b[key]) {
            case let (x as [String: Any], y as [String: Any]): out += changed(x, y, prefix: path)
            case let (x?, y?): if !equal(x, y) { out.append(path) }
            case (nil, nil): break
            default: out.append(path)
            }
        }
        return out
    }

    static func equal(_ x: Any, _ y: Any) -> Bool {
        let dx = try? JSONSerialization.data(withJSONObject: [x], options: [.sortedKeys])
        let dy = try? JSONSerialization.data(withJSONObject: [y], options: [.sortedKeys])
        return dx == dy
    }

    /// "model.skip: true -> false" lines.
    public static func describe(_ a: [String: Any], _ b: [String: Any]) -> [String] {
        changed(a, b).map { path in "\(path)=\(value(b, path))" }
    }

    public static func value(_ d: [String: Any], _ path: String) -> String {
        var cur: Any? = d
        for part in path.split(separator: ".") { cur = (cur as? [String: Any])?[String(part)] }
        guard let v = cur, let data = try? JSONSerialization.data(withJSONObject: [v], options: [.sortedKeys]),
              let s = String(data: data, encoding: .utf8) else { return "null" }
        return String(s.dropFirst().dropLast())
    }
}
