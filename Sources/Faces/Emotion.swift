/// The six classes, in the order the model's outputs use.
/// RAF-DB numbers them differently (1 surprise, 2 fear, 3 disgust,
/// 4 happiness, 5 sadness, 6 anger, 7 neutral): map by name, never by index.
public enum Emotion: Int, CaseIterable, Sendable, Codable {
    case happiness = 0, surprise, sadness, anger, disgust, fear

    public static let count = 6
    public static let rafNeutral = 7

    public var name: String {
        switch self {
        case .happiness: return "happiness"
        case .surprise: return "surprise"
        case .sadness: return "sadness"
        case .anger: return "anger"
        case .disgust: return "disgust"
        case .fear: return "fear"
        }
    }

    /// RAF-DB's label code for this class.
    public var rafCode: Int {
        switch self {
        case .surprise: return 1
        case .fear: return 2
        case .disgust: return 3
        case .happiness: return 4
        case .sadness: return 5
        case .anger: return 6
        }
    }

    /// The class of a RAF-DB code; nil for neutral (7), which is excluded.
    public init?(rafCode: Int) {
        guard let e = Emotion.allCases.first(where: { $0.rafCode == rafCode }) else { return nil }
        self = e
    }

    public init?(name: String) {
        guard let e = Emotion.allCases.first(where: { $0.name == name.lowercased() }) else { return nil }
        self = e
    }

    /// RAF-DB code names, index = code - 1.
    public static let rafNames = ["surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"]
}
