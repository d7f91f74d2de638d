import Foundation
import Synchronization

/// Ctrl-C handling: the first SIGINT (or SIGTERM, or Slurm's SIGUSR1 before
/// a time limit) asks the runner to stop at the next batch boundary, mark
/// the run interrupted and exit; a second one exits at once (the registry is
/// consistent at every commit, so nothing stored is lost).
public enum Interrupt {
    struct State {
        var requested = false
        var cause = "the user"
        /// The signal sources, once installed: one per signal, however often install() is called.
        var sources: [any DispatchSourceSignal] = []
    }
    static let state = Mutex(State())

    public static var requested: Bool { state.withLock { $0.requested } }

    /// Who asked, for the run's error column: "the user" (Ctrl-C) or the signal.
    public static var requestedBy: String { state.withLock { $0.cause } }

    /// Handles SIGINT, SIGTERM and SIGUSR1 from now on. Calling it again
    /// changes nothing: a second set of handlers would count one Ctrl-C twice
    /// and quit at once, unsaved.
    public static func install() {
        state.withLock { s in
            guard s.sources.isEmpty else { return }
            for sig in [SIGINT, SIGTERM, SIGUSR1] {
                signal(sig, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                source.setEventHandler { received(sig) }
                source.resume()
                s.sources.append(source)
            }
        }
    }

    static func received(_ sig: Int32) {
        let name = sig == SIGINT ? "the user" : sig == SIGUSR1 ? "SIGUSR1 (Slurm: time limit near)" : "SIGTERM"
        let again = state.withLock { s in
            defer { s.requested = true }
            if !s.requested { s.cause = name }
            return s.requested
        }
        if again { exit(130) }
        let how = sig == SIGINT ? "Ctrl-C" : "the signal"
        FileHandle.standardError.write(Data("\nstopping after this batch (\(how) again to quit at once)\n".utf8))
    }

    /// Tests simulate a Ctrl-C.
    public static func request() { state.withLock { $0.requested = true } }
    public static func reset() { state.withLock { $0.requested = false; $0.cause = "the user" } }
}

public struct Interrupted: Error, CustomStringConvertible {
    public let runID: String
    public var description: String { "run \(runID) interrupted; continue it with: lab resume \(runID)" }
}
