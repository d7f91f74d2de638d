import Foundation
import Subprocess
import Synchronization
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The one way lab starts another program, on swift-subprocess: a command
/// whose output is collected (git, swift --version, sbatch, squeue, python),
/// and a child whose output goes to a log file (a `lab sweep --jobs` task).
///
/// Programs are started as `/usr/bin/env NAME ARGS...`, so PATH is searched
/// as a shell would and a missing program is exit status 127, not a throw.
public enum ChildProcess {
    /// A finished command: its exit status (the signal number when a signal
    /// ended it, as Foundation's Process reported it) and what it printed.
    public struct Finished: Sendable {
        public var status: Int32
        public var output: String
        public var errors: String
        public var succeeded: Bool { status == 0 }
    }

    /// More than any command lab runs prints; past it the command counts as failed to run.
    static let outputLimit = 64 << 20

    /// Runs `program` with `arguments` and waits for it, collecting standard
    /// output and standard error. `environment` replaces the inherited one
    /// when given. Throws only when nothing could be started at all.
    ///
    /// Blocks the calling thread: call it from synchronous code, never from a
    /// task on Swift's cooperative pool (the work it waits for runs there).
    public static func run(_ program: String, _ arguments: [String], environment: [String: String]? = nil) throws -> Finished {
        let env: Environment = environment.map { e in
            .custom(Dictionary(uniqueKeysWithValues: e.compactMap { k, v in Environment.Key(rawValue: k).map { ($0, v) } }))
        } ?? .inherit
        return try wait {
            let r = try await Subprocess.run(.path(FilePath("/usr/bin/env")), arguments: Arguments([program] + arguments), environment: env,
                                             output: .string(limit: outputLimit), error: .string(limit: outputLimit))
            return Finished(status: code(r.terminationStatus), output: r.standardOutput, errors: r.standardError)
        }
    }

    /// Runs `executable` with both its outputs appended to the file `log`,
    /// in a process group of its own, so that a Ctrl-C at the terminal
    /// reaches lab alone. The first time `stop()` answers true the child is
    /// sent one SIGINT (a second would make a lab child quit unsaved).
    /// Returns the child's exit status once it has ended.
    public static func runLogged(_ executable: String, _ arguments: [String], log: String,
                                 stop: @escaping @Sendable () -> Bool) async throws -> Int32 {
        let fd = try FileDescriptor.open(FilePath(log), .writeOnly, options: [.append, .create],
                                         permissions: [.ownerReadWrite, .groupRead, .otherRead])
        var options = PlatformOptions()
        options.processGroupID = 0      // its own group, led by itself
        let r = try await Subprocess.run(.path(FilePath(executable)), arguments: Arguments(arguments), platformOptions: options,
                                         input: .none, output: .fileDescriptor(fd, closeAfterSpawningProcess: true),
                                         error: .combinedWithOutput) { execution in
            var sent = false
            while !hasEnded(execution.processIdentifier) {
                if !sent && stop() {
                    try? execution.send(signal: .interrupt)
                    sent = true
                }
                try? await Task.sleep(nanoseconds: 100_000_000)
            }
        }
        return code(r.terminationStatus)
    }

    /// Whether the child has ended, without reaping it (swift-subprocess does
    /// that): its process descriptor turns readable when it exits.
    static func hasEnded(_ id: ProcessIdentifier) -> Bool {
        #if os(Linux)
        if id.processDescriptor >= 0 {
            var p = pollfd(fd: id.processDescriptor, events: Int16(POLLIN), revents: 0)
            return poll(&p, 1, 0) == 1
        }
        #endif
        var info = siginfo_t()
        return waitid(P_PID, id_t(id.value), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info._sifields._kill.si_pid != 0
    }

    static func code(_ status: TerminationStatus) -> Int32 {
        switch status {
        case .exited(let c): return c
        case .signaled(let s): return s
        }
    }

    /// Runs `body` on Swift's concurrency pool and blocks this thread until it is done.
    public static func wait<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let outcome = Outcome<T>(), done = DispatchSemaphore(value: 0)
        Task {
            let result: Result<T, any Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            outcome.value.withLock { $0 = result }
            done.signal()
        }
        done.wait()
        return try outcome.value.withLock { $0! }.get()
    }
}

/// What a task leaves for the thread that waits on it.
private final class Outcome<T: Sendable>: Sendable {
    let value = Mutex<Result<T, any Error>?>(nil)
}
