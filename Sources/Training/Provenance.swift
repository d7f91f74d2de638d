import Analysis
import ChildProcess
import Foundation

/// Where and with what a run was made, recorded with every run.
public enum Provenance {
    /// A command's output, trimmed; nil when it cannot run or fails.
    static func shell(_ args: [String]) -> String? {
        guard let program = args.first, let r = try? ChildProcess.run(program, Array(args.dropFirst())), r.succeeded else { return nil }
        return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public static let gitCommit: String? = shell(["git", "rev-parse", "HEAD"])
    /// 1 when tracked files differ from the commit (results may not be reproducible from it).
    public static let gitDirty: Int? = gitCommit == nil ? nil
        : ((shell(["git", "status", "--porcelain", "--untracked-files=no"]) ?? "").isEmpty ? 0 : 1)
    public static let host: String = RunOwner.thisHost
    /// The toolchain's own version line ("Swift version 6.3.1 (...)"), or
    /// what the compiler that built lab knew about itself.
    public static let swiftVersion: String = {
        if let v = shell(["swift", "--version"])?.split(separator: "\n").first(where: { $0.contains("Swift version") }) {
            return String(v)
        }
        #if compiler(>=6.3)
        return "Swift >= 6.3"
        #else
        return "Swift < 6.3"
        #endif
    }()
}
