import ArgumentParser
import Engine
import Foundation
import LabKit

@main
struct Lab: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab",
        abstract: "Facial expression recognition experiments on RAF-DB, tracked in a SQLite registry.",
        subcommands: [Bench.self]
    )
}

/// Options every compute command shares.
struct ComputeOptions: ParsableArguments {
    @Option(help: "BLAS and worker threads (default: all cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }
}

/// Progress on stderr; a carriage-return line on a terminal, plain lines otherwise.
enum Progress {
    static let isTerminal = isatty(STDERR_FILENO) != 0
    static func show(_ line: String) {
        if isTerminal {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        } else {
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }
    static func done() { if isTerminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) } }
}

/// A user error: printed as one line `error: ...`, exit code 1, no stack trace.
struct LabError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
