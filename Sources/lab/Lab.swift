import ArgumentParser
import Engine
import Foundation
import LabKit
import Registry

@main
struct Lab: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab",
        abstract: "Facial expression recognition experiments on RAF-DB, tracked in a SQLite registry.",
        subcommands: [Run.self, Resume.self, Test.self, Runs.self, Show.self, CompareCommand.self, CalibrateCommand.self, ReportCommand.self, ExportCommand.self, ExplainCommand.self, DatasetCommand.self, Bench.self, Sweep.self, Merge.self, ServeCommand.self]
    )

    static func main() {
        chooseBLASKernels()
        main(nil)
    }

    /// OpenBLAS reads OPENBLAS_CORETYPE once, when it loads; to change its
    /// choice the process starts itself again with the variable set.
    static func chooseBLASKernels() {
        guard let core = BLASKernels.betterCoreType() else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        setenv(BLASKernels.chosenByLabVariable, "1", 1)
        let args = CommandLine.arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", args)
        // execv returned: keep running on the kernels OpenBLAS chose.
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
    nonisolated(unsafe) static var lastPlain = Date.distantPast
    static let lock = NSLock()

    static func show(_ line: String) {
        if isTerminal {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
            return
        }
        lock.lock(); defer { lock.unlock() }
        guard Date().timeIntervalSince(lastPlain) >= 15 else { return }
        lastPlain = Date()
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    static func done() { if isTerminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) } }

    /// A line to keep (clears a pending status line first).
    static func log(_ line: String) {
        FileHandle.standardError.write(Data(((isTerminal ? "\r\u{1B}[K" : "") + line + "\n").utf8))
    }
}

