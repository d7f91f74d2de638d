import ArgumentParser
import Explain
import Foundation
import Registry
import Specs

// Spec choices as option values: ArgumentParser lists their cases in the
// help and rejects anything else with the valid spellings.
extension DatasetSpec.Source: ExpressibleByArgument {}
extension EvalSplit: ExpressibleByArgument {}

/// `lab explain --method`.
enum MethodChoice: String, CaseIterable, ExpressibleByArgument {
    case gradcam, gradcamPlusPlus = "gradcam++", both

    var methods: [CAMMethod] {
        switch self {
        case .gradcam: return [.gradCAM]
        case .gradcamPlusPlus: return [.gradCAMPlusPlus]
        case .both: return CAMMethod.allCases
        }
    }
}

/// `--seeds 1,2,3`: comma-separated non-negative integers.
enum SeedList {
    static func parse(_ argument: String) throws -> [Int] {
        let v = argument.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !v.isEmpty, v.allSatisfy({ ($0 ?? -1) >= 0 }) else {
            throw ValidationError("--seeds must be comma-separated non-negative integers, e.g. 1,2,3")
        }
        return v.compactMap { $0 }
    }
}
