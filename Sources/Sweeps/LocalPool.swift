import Analysis
import ChildProcess
import Failures
import Foundation
import Registry
import Synchronization
import Training

/// Runs a sweep's tasks here, `jobs` at a time, each as a child `lab sweep
/// task` process writing the one registry (WAL: concurrent writers are safe).
/// A child's output goes to sweeps/<id>/logs/task-<i>.log; the display gets
/// one line per running task and the sweep's total with an ETA.
public struct LocalPool {
    public let plan: SweepPlan
    public let store: SweepStore
    public let db: String
    public let jobs: Int
    public let threads: Int

    public init(plan: SweepPlan, store: SweepStore, db: String, jobs: Int, threads: Int) {
        self.plan = plan; self.store = store; self.db = db; self.jobs = jobs; self.threads = threads
    }

    /// Where the pool's news goes: `log` a line to keep, `block` the running
    /// tasks' lines, replacing the block shown before (empty: remove it),
    /// at most every `interval` seconds.
    public struct Display {
        public var log: (String) -> Void
        public var block: ([String]) -> Void
        public var interval: TimeInterval
        public init(log: @escaping (String) -> Void, block: @escaping ([String]) -> Void, interval: TimeInterval) {
            self.log = log; self.block = block; self.interval = interval
        }
    }

    /// How the pool ended when it did not throw.
    public enum Outcome: Sendable { case completed, interrupted }

    struct Child { var task: SweepTask; var started: Date }

    /// The children's ends as their tasks report them, and whether they were told to stop.
    final class Ends: Sendable {
        private let state = Mutex((ended: [Int: Result<Int32, any Error>](), stopping: false))
        func end(_ index: Int, _ result: Result<Int32, any Error>) { state.withLock { $0.ended[index] = result } }
        func take() -> [Int: Result<Int32, any Error>] { state.withLock { s in defer { s.ended = [:] }; return s.ended } }
        func stop() { state.withLock { $0.stopping = true } }
        var stopping: Bool { state.withLock { $0.stopping } }
    }

    /// Runs `todo` to the end. A Ctrl-C is passed on once to every child
    /// (each saves its run as interrupted), no new task starts, and the pool
    /// returns `.interrupted` when the running ones have ended.
    public func run(_ todo: [SweepTask], _ reg: Registry, display: Display) throws -> Outcome {
        Interrupt.install()
        let ends = Ends()
        var queue = todo[...], running = [Int: Child](), failed = [SweepTask]()
        var lastPrint = Date.distantPast, done = 0, launchError: (any Error)?
        display.log("running \(todo.count) task\(todo.count == 1 ? "" : "s"), \(jobs) at a time, \(threads) "
            + "thread\(threads == 1 ? "" : "s") each; "
                    + "logs in \(store.logs(plan.id).path)")
        // After a Ctrl-C the queue stays as it is: the loop ends when the running tasks have.
        while (!queue.isEmpty && !Interrupt.requested && launchError == nil) || !running.isEmpty {
            while running.count < jobs, !Interrupt.requested, launchError == nil, let t = queue.popFirst() {
                running[t.index] = Child(task: t, started: Date())
                launch(t, ends)
            }
            Thread.sleep(forTimeInterval: 0.5)
            for (index, result) in ends.take().sorted(by: { $0.key < $1.key }) {
                guard let c = running.removeValue(forKey: index) else { continue }
                let status: Int32
                switch result {
                case .success(let s): status = s
                case .failure(let e):
                    // Tasks already started save their runs and end before the error is told.
                    launchError = launchError ?? e
                    ends.stop()
                    continue
                }
                display.block([])   // the block goes; the line stays
                if status != 0 { failed.append(c.task) } else { done += 1 }
                let outcome = status == 0 ? "completed" : "stopped with exit \(status), see \(logPath(c.task))"
                display.log("task \(c.task.index) (\(c.task.label)) \(outcome) after "
                    + "\(Format.duration(Date().timeIntervalSince(c.started)))")
            }
            if Date().timeIntervalSince(lastPrint) >= display.interval, !running.isEmpty {
                display.block(progress(running.values.sorted { $0.task.index < $1.task.index }, reg, todo: Set(todo.map(\.index)),
                                       done: done))
                lastPrint = Date()
            }
        }
        if let launchError { throw launchError }
        return try finish(todo: todo, failed: failed, interrupted: Interrupt.requested, display: display)
    }

    func logPath(_ t: SweepTask) -> String { store.logs(plan.id).appendingPathComponent("task-\(t.index).log").path }

    /// Starts `lab sweep task` for `t`; its end (or why it could not start) goes to `ends`.
    /// The log is appended to: a resumed task's log keeps the attempt before it.
    func launch(_ t: SweepTask, _ ends: Ends) {
        let arguments = ["sweep", "task", store.planURL(plan.id).path, String(t.index), "--db", db, "--threads", String(threads)]
        let log = logPath(t)
        Task {
            do {
                let status = try await ChildProcess.runLogged(LabExecutable.path, arguments,
                                                              log: log) { Interrupt.requested || ends.stopping }
                ends.end(t.index, .success(status))
            } catch {
                ends.end(t.index, .failure(error))
            }
        }
    }

    /// One line per running task (epochs from the registry) and the total;
    /// the ETA takes each experiment's mean epoch time so far.
    func progress(_ running: [Child], _ reg: Registry, todo: Set<Int>, done: Int) -> [String] {
        let states = (try? plan.status([reg])) ?? []
        func epochs(_ t: SweepTask) -> Int { states.first { $0.task.index == t.index }?.run?.epochsRun ?? 0 }
        let lines = running.map { c in
            "  task \(c.task.index) \(c.task.label): epoch \(epochs(c.task))/\(c.task.maxEpochs), "
                + Format.duration(Date().timeIntervalSince(c.started))
        }
        var seconds: Double? = 0
        for s in states where todo.contains(s.task.index) && s.state != .completed {
            let mean = (try? reg.epochSeconds(experiment: s.task.experimentID))??.wall
            seconds = mean.flatMap { m in seconds.map { $0 + m * Double(max(0, s.task.maxEpochs - epochs(s.task))) } }
        }
        let eta = seconds.map { Format.duration($0 / Double(jobs)) } ?? "?"
        return ["sweep \(plan.id): \(done)/\(todo.count) done, \(running.count) running, ETA \(eta) (at most: early stopping may end "
            + "sooner)"]
            + lines
    }

    func finish(todo: [SweepTask], failed: [SweepTask], interrupted: Bool, display: Display) throws -> Outcome {
        if interrupted {
            display.log("sweep \(plan.id) stopped; running tasks saved their checkpoints. Continue with: \(plan.resubmitCommand)")
            return .interrupted
        }
        if !failed.isEmpty {
            throw Failure(.sweep,
                          "\(failed.count) of \(todo.count) tasks did not complete (tasks "
                              + "\(failed.map { String($0.index) }.joined(separator: ", ")); "
                          + "logs in \(store.logs(plan.id).path)); rerun: \(plan.resubmitCommand)")
        }
        display.log("sweep \(plan.id): all \(todo.count) task\(todo.count == 1 ? "" : "s") completed")
        return .completed
    }
}
