import ArgumentParser
import Failures
import Foundation
import Registry

extension Lab {
    struct Merge: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fold registries (cluster shards, another machine's runs.db) into one.",
            discussion: """
                Experiments are matched by spec hash and runs by id, with all their rows; merging the same \
                file twice changes nothing. A run both files hold with different content (in any table) is \
                reported by run and table, kept as the target has it, and makes the exit status non-zero, \
                except that a completed copy replaces an unfinished one. Sources are only read; one written \
                by a newer lab is refused.
                """)

        @Argument(help: "Registries to merge from.", completion: .file(extensions: ["db"]))
        var sources: [String]

        @Option(help: "The registry to merge into.", completion: .file(extensions: ["db"]))
        var into = "runs.db"

        func run() throws {
            let target = try Registry(path: into)
            var refused = 0, conflicts = 0
            for source in sources {
                if URL(fileURLWithPath: source).standardized.path == URL(fileURLWithPath: into).standardized.path {
                    Progress.log("skipped \(source): it is the target"); continue
                }
                do {
                    let s = try target.merge(from: source)
                    print(s.line)
                    for c in s.conflicts { Progress.log(c) }
                    conflicts += s.conflicts.count
                } catch let e as Failure where e.kind == .registry {
                    Progress.log("Error: \(e)")
                    refused += 1
                }
            }
            // A conflict keeps the target's rows; the exit status says the registries disagree.
            if refused > 0 || conflicts > 0 { throw ExitCode.failure }
        }
    }
}
