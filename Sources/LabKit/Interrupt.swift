import Foundation

/// Ctrl-C handling: the first SIGINT (or SIGTERM, or Slurm's SIGUSR1 before
/// a time limit) asks the runner to stop at
/// the next batch boundary, mark the run interrupted and exit; a second one
/// exits at once (the registry is consistent at every commit, so nothing
/// stored is lost).
public enum Interrupt {
    nonisolated(unsafe) private static var flag = false
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []
    private static let lock = NSLock()

    public static var requested: Bool { lock.lock(); defer { lock.unlock() }; return flag }

    public static func install() {
        for sig in [SIGINT, SIGTERM, SIGUSR1] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler {
                lock.lock(); let again = flag; flag = true; lock.unlock()
                if again { exit(130) }
                FileHandle.standardError.write(Data("\nstopping after this batch (Ctrl-C again to quit at once)\n".utf8))
            }
            s.resume()
            sources.append(s)
        }
    }

    /// Tests simulate a Ctrl-C.
    public static func request() { lock.lock(); flag = true; lock.unlock() }
    public static func reset() { lock.lock(); flag = false; lock.unlock() }
}

public struct Interrupted: Error, CustomStringConvertible {
    public let runID: String
    public var description: String { "run \(runID) interrupted; continue it with: lab resume \(runID)" }
}
