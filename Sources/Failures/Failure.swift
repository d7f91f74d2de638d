/// The one error lab shows a user: a single line that names the culprit (a
/// spec file and key path, an image, a run id, a registry file) and, where it
/// can, what to do. `lab` prints it as "Error: <line>" with exit code 1 and no
/// stack trace; `lab serve` shows it on an error page. The kind says which
/// layer refused, so a caller can catch one layer's failures and let the
/// others through (the compare page answers a registry failure with 404).
public struct Failure: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: Sendable {
        case spec           // a spec file or --set
        case data           // a dataset, image or JPEG
        case registry       // runs.db, or a run or experiment it does not hold
        case explain        // an explanation that cannot be made as asked
        case sweep          // a sweep plan, its lock, its tasks, or the scheduler running them
        case io             // an output lab could not write, a port it could not open
        case usage          // the command line itself
    }

    public let kind: Kind
    public let description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}
