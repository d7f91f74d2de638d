import Foundation

/// A JSON document as a value. Specs live at this level while they are still
/// being assembled (`extends` merged over the defaults, `--set` over that) and
/// are decoded into the typed `ExperimentSpec` only when complete; stored
/// resolved specs are diffed at this level too.
public enum JSONValue: Equatable, Hashable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])
}

extension JSONValue {
    /// Parses a JSON text (a document or a bare value such as `5` or `"hard"`).
    /// Foundation's parser, as when the first runs were recorded: its
    /// choices (the last of two equal keys wins; JSONDecoder keeps the first)
    /// reach the hashed text, so they must not change.
    public init(parsing data: Data) throws {
        self = try JSONValue(foundation: JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]))
    }

    /// The one place Foundation's untyped parse tree becomes a typed value.
    init(foundation v: Any) throws {
        switch v {
        case is NSNull: self = .null
        case let s as String: self = .string(s)
        case let n as NSNumber:
            // JSON true/false arrive as Foundation's boolean NSNumber subclass.
            self = String(describing: type(of: n)).contains("Boolean") ? .bool(n.boolValue) : .number(n.doubleValue)
        case let a as NSArray: self = .array(try a.map { try JSONValue(foundation: $0) })
        case let d as NSDictionary:
            var o = [String: JSONValue]()
            for (k, v) in d { o["\(k)"] = try JSONValue(foundation: v) }
            self = .object(o)
        default: throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "not JSON: \(type(of: v))"))
        }
    }

    /// The JSON form of any Encodable value.
    public init<T: Encodable>(encoding value: T) throws {
        self = try JSONValue(parsing: JSONEncoder().encode(value))
    }

    /// Decodes a typed value from this document.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(type, from: Data(canonical.utf8))
    }

    public subscript(key: String) -> JSONValue? {
        get { if case .object(let o) = self { return o[key] } else { return nil } }
        set {
            guard case .object(var o) = self else { return }
            o[key] = newValue
            self = .object(o)
        }
    }

    /// The value at a dotted key path, nil where any step is missing.
    public subscript(path path: [String]) -> JSONValue? {
        path.reduce(Optional(self)) { $0?[$1] }
    }

    public var object: [String: JSONValue]? { if case .object(let o) = self { return o } else { return nil } }
    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var number: Double? { if case .number(let n) = self { return n } else { return nil } }

    /// `over` merged into this value: objects key by key, anything else replaced.
    public func merging(_ over: JSONValue) -> JSONValue {
        guard case .object(var base) = self, case .object(let top) = over else { return over }
        for (k, v) in top { base[k] = base[k].map { $0.merging(v) } ?? v }
        return .object(base)
    }

    /// {"a": {"b": value}} for the path ["a", "b"].
    public static func nested(_ path: [String], _ value: JSONValue) -> JSONValue {
        path.reversed().reduce(value) { inner, key in .object([key: inner]) }
    }
}

extension JSONValue {
    /// Sorted keys, no spaces, numbers without a trailing ".0" and "/" escaped:
    /// for every value the spec schema accepts (lower-case keys, integers far
    /// below 1e15), byte for byte what JSONSerialization wrote with
    /// `.sortedKeys` when the first runs were recorded. Experiment ids hash
    /// this text, so it must not drift (ResolvedSpecTests hold it to specs
    /// resolved back then and to JSONSerialization itself).
    public var canonical: String {
        var out = ""
        write(into: &out)
        return out
    }

    func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += JSONValue.format(n)
        case .string(let s): JSONValue.quote(s, into: &out)
        case .array(let a):
            out += "["
            for (i, v) in a.enumerated() { if i > 0 { out += "," }; v.write(into: &out) }
            out += "]"
        case .object(let o):
            out += "{"
            for (i, k) in o.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                JSONValue.quote(k, into: &out)
                out += ":"
                o[k]!.write(into: &out)
            }
            out += "}"
        }
    }

    /// Indented two spaces with " : " after keys, sorted: JSONSerialization's
    /// `.prettyPrinted` layout, for specs shown to people.
    public var pretty: String {
        var out = ""
        writePretty(into: &out, indent: "")
        return out
    }

    func writePretty(into out: inout String, indent: String) {
        let inner = indent + "  "
        switch self {
        case .array(let a):
            out += "[\n"
            for (i, v) in a.enumerated() { out += (i > 0 ? ",\n" : "") + inner; v.writePretty(into: &out, indent: inner) }
            out += "\n" + indent + "]"
        case .object(let o):
            out += "{\n"
            for (i, k) in o.keys.sorted().enumerated() {
                out += (i > 0 ? ",\n" : "") + inner
                JSONValue.quote(k, into: &out)
                out += " : "
                o[k]!.writePretty(into: &out, indent: inner)
            }
            out += "\n" + indent + "}"
        default: write(into: &out)
        }
    }

    static func format(_ n: Double) -> String {
        if n == 0 && n.sign == .minus { return "-0" }
        if n == n.rounded(), abs(n) < 1e15 { return String(Int64(n)) }
        return n.description
    }

    static func quote(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "/": out += "\\/"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{8}": out += "\\b"
            case "\u{c}": out += "\\f"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }

    /// How an error message shows a value the user wrote.
    public var shortDescription: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let n): return JSONValue.format(n)
        case .string(let s): return "\"\(s)\""
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

extension JSONValue: CustomStringConvertible {
    public var description: String { canonical }
}
