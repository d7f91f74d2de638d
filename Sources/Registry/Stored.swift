import Faces
import Foundation
import GRDB

/// A closed set of spellings a text column holds, stored and read through
/// GRDB as its raw value. Layers above the registry see the cases, never
/// the strings.
public protocol StoredChoice: RawRepresentable<String>, CaseIterable, Codable, Sendable, Hashable, DatabaseValueConvertible,
                              CustomStringConvertible {
    /// What one value is called in a message, e.g. "run status".
    static var storedName: String { get }
}

extension StoredChoice {
    /// In text a value reads as it is stored ("gradcam++", not "gradCAMPlusPlus").
    public var description: String { rawValue }
}

/// The held-out splits a run is evaluated and explained on: validation (10%
/// of the official training split) and the untouched test split.
public enum EvalSplit: String, StoredChoice {
    case val, test
    public static let storedName = "split"
    /// As a sentence says it: "validation" or "test".
    public var name: String {
        switch self {
        case .val: return "validation"
        case .test: return "test"
        }
    }
}

/// What scored an explanation: a CAM method of the trained model, the same
/// method on the re-initialized model (the randomization check), or one of
/// the two chance maps every score is read against.
public enum ExplanationMethod: String, StoredChoice {
    case gradCAM = "gradcam", gradCAMPlusPlus = "gradcam++"
    case gradCAMUntrained = "gradcam untrained", gradCAMPlusPlusUntrained = "gradcam++ untrained"
    case centerPrior = "center_prior", random
    public static let storedName = "explanation method"

    /// A trained model's CAM map (not a chance map, not the untrained model's).
    public var isTrainedCAM: Bool { self == .gradCAM || self == .gradCAMPlusPlus }

    /// The same CAM method on the re-initialized model.
    public var untrained: ExplanationMethod? {
        switch self {
        case .gradCAM: return .gradCAMUntrained
        case .gradCAMPlusPlus: return .gradCAMPlusPlusUntrained
        default: return nil
        }
    }
}

/// What asked for a look at the test split.
public enum TestTrigger: String, StoredChoice {
    /// The spec's `evaluate.test` at the end of its run.
    case spec
    /// `lab test`.
    case labTest = "lab test"
    public static let storedName = "test trigger"
}

/// A class is stored by its name ("happiness"), never by its index.
extension Emotion: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue { name.databaseValue }
    public static func fromDatabaseValue(_ value: DatabaseValue) -> Emotion? {
        String.fromDatabaseValue(value).flatMap { Emotion(name: $0) }
    }
}

/// Images per class in each split a run used (runs.class_counts, as JSON
/// {"test": [6], "train": [6], "val": [6]} in class order).
public struct ClassCounts: Codable, Sendable, Equatable {
    public var train: [Int], val: [Int], test: [Int]
    public init(train: [Int], val: [Int], test: [Int]) { self.train = train; self.val = val; self.test = test }

    /// The splits' stored names, in the order reports list them.
    public static var splitNames: [String] { [CodingKeys.train, .val, .test].map(\.stringValue) }

    /// The splits in the order reports list them, each under its stored name.
    public var bySplit: [(split: String, counts: [Int])] { Array(zip(ClassCounts.splitNames, [train, val, test])) }

    /// The stored JSON: keys sorted, as every class_counts value was written.
    public var json: String {
        let e = JSONEncoder()
        e.outputFormatting = .sortedKeys
        return String(decoding: (try? e.encode(self)) ?? Data(), as: UTF8.self)
    }

    public init?(json: String?) {
        guard let json, let c = try? JSONDecoder().decode(ClassCounts.self, from: Data(json.utf8)) else { return nil }
        self = c
    }
}

/// A value stored as text that this lab does not know: another tool or a
/// newer lab wrote it. Registry.describe names the file.
struct UnknownValue: Error {
    var what: String, value: String, known: [String]

    init(what: String, value: String, known: [String]) {
        self.what = what; self.value = value; self.known = known
    }

    /// The choices a column may hold, by their Swift type's name (as GRDB's
    /// decoding errors name them).
    static let choices: [String: (what: String, known: [String])] = {
        func entry<T: StoredChoice>(_ t: T.Type) -> (String, (String, [String])) {
            ("\(t)", (t.storedName, t.allCases.map(\.rawValue)))
        }
        return Dictionary(uniqueKeysWithValues: [entry(Run.Status.self), entry(Checkpoint.Kind.self), entry(EvalSplit.self),
                                                 entry(ExplanationMethod.self), entry(TestTrigger.self),
                                                 ("\(Emotion.self)", ("class", Emotion.allCases.map(\.name)))])
    }()

    /// GRDB's "could not decode Status from database value "paused" - ..." as one of ours.
    init?(decodingError error: Error) {
        let text = "\(error)"
        let prefix = "could not decode "
        guard let start = text.range(of: prefix),
              let from = text.range(of: " from database value ", range: start.upperBound..<text.endIndex),
              let choice = UnknownValue.choices[String(text[start.upperBound..<from.lowerBound])] else { return nil }
        let rest = text[from.upperBound...]
        let value: Substring
        if rest.hasPrefix("\""), let close = rest.dropFirst().firstIndex(of: "\"") {
            value = rest[rest.index(after: rest.startIndex)..<close]
        } else {
            value = rest.prefix { $0 != " " }
        }
        self.init(what: choice.what, value: String(value), known: choice.known)
    }
}
