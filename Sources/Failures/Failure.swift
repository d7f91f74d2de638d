/// The one error lab shows a user: a single line that names the culprit (a
/// spec file and key path, an image, a run id, a registry file) and, where it
/// can, what to do. `lab` prints it as "Error: <line>" with exit code 1 and no
/// stack trace; `lab serve` answers a registry failure (no such run or
/// experiment) with 404. The kind says which layer refused, so a caller can
/// catch one layer's failures and let the others through.
public struct Failure: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: Sendable {
        case spec           // a spec file or --set
        case data           // a dataset, image or JPEG
        case registry       // runs.db, or a run or experiment it does not hold
        case explain        // an explanation that cannot be made as asked
        case usage          // the command line itself
    }

    public let kind: Kind
    public let description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}
