import Failures
import Foundation

/// One `--set KEY=VALUE`: a dotted key path into the spec and a JSON value.
/// Shared by `lab run` and `lab sweep`, so both parse and check it alike.
public struct SpecOverride: CustomStringConvertible, Sendable {
    public let keyPath: [String]
    public let value: JSONValue
    public let text: String             // as the user typed it

    public var key: String { keyPath.joined(separator: ".") }
    public var description: String { text }

    /// nil when the argument is not KEY=VALUE with a non-empty dotted key.
    /// The value is JSON when it parses (numbers, true/false, arrays, objects,
    /// quoted strings), else the bare text, so `--set dataset.labels=hard` needs no quotes.
    public init?(_ argument: String) {
        guard let eq = argument.firstIndex(of: "=") else { return nil }
        let path = argument[..<eq].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !path.isEmpty, path.allSatisfy({ !$0.isEmpty && !$0.contains(where: \.isWhitespace) }) else { return nil }
        let raw = String(argument[argument.index(after: eq)...])
        keyPath = path
        value = (try? JSONValue(parsing: Data(raw.utf8))) ?? .string(raw)
        text = argument
    }

    public static let usage = "--set takes KEY=VALUE with a dotted spec key, e.g. --set train.max_epochs=5"
}

extension SpecLoader {
    /// Applies overrides to a spec already merged with its `extends` parents.
    /// Each one is checked against the schema on its own first, so a mistake
    /// names the `--set` it came from rather than the file; the result is
    /// then resolved and validated like any spec.
    public static func applying(_ overrides: [SpecOverride], to merged: JSONValue) throws -> JSONValue {
        var out = merged
        for o in overrides {
            // `extends` is already merged and `parent` is derived from it: neither is a setting.
            if ["extends", "parent"].contains(o.keyPath[0]) {
                throw Failure(.spec, "--set \(o.key): cannot be set; --set applies after extends is merged")
            }
            let sparse = JSONValue.nested(o.keyPath, o.value)
            do {
                try SpecSchema.check(sparse.object ?? [:], against: SpecSchema.root, path: "", file: "--set")
            } catch let e as Failure where e.kind == .spec {
                // check() writes "<file>: <key>: ..."; here the key already names the culprit.
                throw Failure(.spec,
                              e.description.hasPrefix("--set: ") ? "--set " + e.description.dropFirst("--set: ".count) : e.description)
            }
            out = out.merging(sparse)
        }
        return out
    }

    /// Loads a spec file and applies `--set` overrides before validation.
    public static func load(_ path: String, overrides: [SpecOverride]) throws -> ExperimentSpec {
        var chain = [String]()
        let merged = try applying(overrides, to: loadMerged(URL(fileURLWithPath: path), chain: &chain))
        do {
            return try resolve(merged, file: path)
        } catch let e as Failure where e.kind == .spec && !overrides.isEmpty && e.description.hasPrefix(path + ": ") {
            // Checks across keys (widths against convs_per_block) judge the file and the overrides together: name both.
            let culprit = ([path] + overrides.map { "--set \($0.text)" }).joined(separator: " ")
            throw Failure(.spec, culprit + e.description.dropFirst(path.count))
        }
    }
}
