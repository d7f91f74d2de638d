import Foundation

/// Which resolved keys two specs disagree on, as dotted paths.
public enum SpecDiff {
    /// Keys that say what a spec is, not how it differs.
    static let ignored: Set<String> = ["name", "description", "parent"]

    public static func changed(_ a: JSONValue, _ b: JSONValue, prefix: String = "") -> [String] {
        let ao = a.object ?? [:], bo = b.object ?? [:]
        var out = [String]()
        for key in Set(ao.keys).union(bo.keys).sorted() {
            let path = prefix.isEmpty ? key : "\(prefix).\(key)"
            if prefix.isEmpty && ignored.contains(key) { continue }
            switch (ao[key], bo[key]) {
            case let (x?, y?) where x.object != nil && y.object != nil: out += changed(x, y, prefix: path)
            case let (x?, y?): if x != y { out.append(path) }
            case (nil, nil): break
            default: out.append(path)
            }
        }
        return out
    }

    /// "model.skip=false" lines: what b sets where it differs from a.
    public static func describe(_ a: JSONValue, _ b: JSONValue) -> [String] {
        changed(a, b).map { path in "\(path)=\(value(b, path))" }
    }

    public static func value(_ d: JSONValue, _ path: String) -> String {
        d[path: path.split(separator: ".").map(String.init)]?.canonical ?? "null"
    }
}
