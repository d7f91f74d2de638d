import ArgumentParser
import Foundation
import Registry
import Sweeps
import Synchronization
import Training

@main
struct Lab: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab",
        abstract: "Facial expression recognition experiments on RAF-DB, tracked in a SQLite registry.",
        subcommands: [Run.self, Resume.self, Test.self, Runs.self, Show.self, CompareCommand.self, CalibrateCommand.self,
                      ReportCommand.self,
                      ExportCommand.self, ExplainCommand.self, DatasetCommand.self, Bench.self, Sweep.self, Merge.self, ServeCommand.self]
    )

    static func main() {
        BLASKernels.restartWithBetterKernels()
        main(nil)
    }
}

/// The registry every command reads or writes.
struct RegistryOptions: ParsableArguments {
    @Option(name: .customLong("db"), help: "The run registry (SQLite).", completion: .file(extensions: ["db"]))
    var path = "runs.db"

    func open() throws -> Registry { try Registry(path: path) }
}

/// `--data`: where a run's RAF-DB folder is now, if it moved since training.
struct MovedDataOption: ParsableArguments {
    @Option(help: "RAF-DB folder, if it moved since the run started.", completion: .directory)
    var data: String?
}

/// Where run progress and notes go.
let reporter = Reporter(status: { Progress.show($0) }, log: { Progress.log($0) })

/// Options every compute command shares.
struct ComputeOptions: ParsableArguments {
    @Option(name: .customLong("threads"), help: "BLAS and worker threads (default: all cores).")
    var requested: Int?

    /// The thread count to use; recorded with every result.
    var threads: Int { requested ?? ProcessInfo.processInfo.activeProcessorCount }

    func validate() throws {
        if let requested, requested < 1 { throw ValidationError("--threads must be at least 1") }
    }
}

/// Progress on stderr: one rewritten line on a terminal; on a pipe or log
/// file, plain lines at most every 15 seconds.
enum Progress {
    static let isTerminal = isatty(STDERR_FILENO) != 0
    /// When the last plain line was written.
    static let lastPlain = Mutex(Date.distantPast)

    static func show(_ line: String) {
        if isTerminal {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
            return
        }
        let due = lastPlain.withLock { last in
            guard Date().timeIntervalSince(last) >= 15 else { return false }
            last = Date()
            return true
        }
        if due { FileHandle.standardError.write(Data((line + "\n").utf8)) }
    }

    static func done() { if isTerminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) } }

    /// A line to keep (clears a pending status line first).
    static func log(_ line: String) {
        FileHandle.standardError.write(Data(((isTerminal ? "\r\u{1B}[K" : "") + line + "\n").utf8))
    }
}

extension Progress {
    /// `lab sweep --jobs`: on a terminal the block of running tasks is
    /// rewritten in place every second; on a pipe its lines are plain, every 15 s.
    static func poolDisplay() -> LocalPool.Display {
        final class Shown { var lines = 0 }
        let shown = Shown()
        return LocalPool.Display(log: { log($0) }, block: { lines in
            let clear = isTerminal && shown.lines > 0 ? "\u{1B}[\(shown.lines)F\u{1B}[J" : ""
            FileHandle.standardError.write(Data((clear + lines.map { $0 + "\n" }.joined()).utf8))
            shown.lines = isTerminal ? lines.count : 0
        }, interval: isTerminal ? 1 : 15)
    }
}
