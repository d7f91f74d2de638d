import Foundation

/// Ctrl-C handling: the first SIGINT (or SIGTERM, or Slurm's SIGUSR1 before
/// a time limit) asks the runner to stop at
/// the next batch boundary, mark the run interrupted and exit; a second one
/// exits at once (the registry is consistent at every commit, so nothing
/// stored is lost).
public enum Interrupt {
    nonisolated(unsafe) private static var flag = false
    nonisolated(unsafe) private static var cause = "the user"
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []
    private static let lock = NSLock()

    public static var requested: Bool { lock.lock(); defer { lock.unlock() }; return flag }

    /// Who asked, for the run's error column: "the user" (Ctrl-C) or the signal.
    public static var requestedBy: String { lock.lock(); defer { lock.unlock() }; return cause }

    public static func install() {
        for sig in [SIGINT, SIGTERM, SIGUSR1] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler {
                let name = sig == SIGINT ? "the user" : sig == SIGUSR1 ? "SIGUSR1 (Slurm: time limit near)" : "SIGTERM"
                lock.lock(); let again = flag; flag = true; if !again { cause = name }; lock.unlock()
                if again { exit(130) }
                let how = sig == SIGINT ? "Ctrl-C" : "the signal"
                FileHandle.standardError.write(Data("\nstopping after this batch (\(how) again to quit at once)\n".utf8))
            }
            s.resume()
            sources.append(s)
        }
    }

    /// Tests simulate a Ctrl-C.
    public static func request() { lock.lock(); flag = true; lock.unlock() }
    public static func reset() { lock.lock(); flag = false; cause = "the user"; lock.unlock() }
}

public struct Interrupted: Error, CustomStringConvertible {
    public let runID: String
    public var description: String { "run \(runID) interrupted; continue it with: lab resume \(runID)" }
}
