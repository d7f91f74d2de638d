import ArgumentParser
import Failures
import Foundation
import LabKit
import Registry

/// Runs a sweep's tasks here, `jobs` at a time, each as a child `lab sweep
/// task` process writing the one registry (WAL: concurrent writers are safe).
/// A child's output goes to sweeps/<id>/logs/task-<i>.log; stderr gets
/// one line per running task and the sweep's total with an ETA.
struct LocalSweep {
    let plan: SweepPlan
    let store: SweepStore
    let db: String
    let jobs: Int
    let threads: Int

    struct Child { var task: SweepTask; var process: Process; var started: Date }

    func run(_ todo: [SweepTask], _ reg: Registry) throws {
        Interrupt.install()
        var queue = todo[...], running = [Child](), failed = [SweepTask]()
        var lastPrint = Date.distantPast, shownLines = 0, done = 0, forwarded = false
        Progress.log("running \(todo.count) task\(todo.count == 1 ? "" : "s"), \(jobs) at a time, \(threads) thread\(threads == 1 ? "" : "s") each; logs in \(store.logs(plan.id).path)")
        // After a Ctrl-C the queue stays as it is: the loop ends when the running tasks have.
        while (!queue.isEmpty && !Interrupt.requested) || !running.isEmpty {
            while running.count < jobs, !Interrupt.requested, let t = queue.popFirst() {
                do { running.append(Child(task: t, process: try launch(t), started: Date())) } catch {
                    // Tasks already started save their runs and end before the error is told.
                    for c in running { c.process.interrupt() }
                    for c in running { c.process.waitUntilExit() }
                    throw error
                }
            }
            // Foundation starts each child in its own process group, so a Ctrl-C
            // reaches only us: pass it on once (a second would make them quit unsaved).
            if Interrupt.requested && !forwarded {
                for c in running { c.process.interrupt() }
                forwarded = true
            }
            Thread.sleep(forTimeInterval: 0.5)
            // One look at isRunning: a child ending between two looks would be dropped uncounted.
            let finished = running.filter { !$0.process.isRunning }
            running.removeAll { c in finished.contains { $0.process === c.process } }
            for c in finished {
                shownLines = show([], replacing: shownLines)   // the block goes; the line stays
                let ok = c.process.terminationStatus == 0
                if !ok { failed.append(c.task) } else { done += 1 }
                Progress.log("task \(c.task.index) (\(c.task.label)) \(ok ? "completed" : "stopped with exit \(c.process.terminationStatus), see \(logPath(c.task))") after \(Runner.duration(Date().timeIntervalSince(c.started)))")
            }
            if Date().timeIntervalSince(lastPrint) >= (Progress.isTerminal ? 1 : 15), !running.isEmpty {
                shownLines = show(progress(running, reg, todo: Set(todo.map(\.index)), done: done), replacing: shownLines)
                lastPrint = Date()
            }
        }
        try finish(todo: todo, failed: failed, interrupted: Interrupt.requested)
    }

    func logPath(_ t: SweepTask) -> String { store.logs(plan.id).appendingPathComponent("task-\(t.index).log").path }

    func launch(_ t: SweepTask) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: SlurmCommand.labExecutable)
        p.arguments = ["sweep", "task", store.planURL(plan.id).path, String(t.index), "--db", db, "--threads", String(threads)]
        // Appended to: a resumed task's log keeps the attempt before it.
        if !FileManager.default.fileExists(atPath: logPath(t)) { FileManager.default.createFile(atPath: logPath(t), contents: nil) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath(t)))
        defer { try? log.close() }   // the child holds its own copy
        log.seekToEndOfFile()
        p.standardOutput = log; p.standardError = log
        try p.run()
        return p
    }

    /// One line per running task (epochs from the registry) and the total;
    /// the ETA takes each experiment's mean epoch time so far.
    func progress(_ running: [Child], _ reg: Registry, todo: Set<Int>, done: Int) -> [String] {
        let states = (try? plan.status([reg])) ?? []
        func epochs(_ t: SweepTask) -> Int { states.first { $0.task.index == t.index }?.run?.epochsRun ?? 0 }
        let lines = running.map { c in
            "  task \(c.task.index) \(c.task.label): epoch \(epochs(c.task))/\(c.task.maxEpochs), \(Runner.duration(Date().timeIntervalSince(c.started)))"
        }
        var seconds: Double? = 0
        for s in states where todo.contains(s.task.index) && s.state != .completed {
            let mean = (try? reg.epochSeconds(experiment: s.task.experimentID))??.wall
            seconds = mean.flatMap { m in seconds.map { $0 + m * Double(max(0, s.task.maxEpochs - epochs(s.task))) } }
        }
        let eta = seconds.map { Runner.duration($0 / Double(jobs)) } ?? "?"
        return ["sweep \(plan.id): \(done)/\(todo.count) done, \(running.count) running, ETA \(eta) (at most: early stopping may end sooner)"] + lines
    }

    /// Plain lines on a pipe; on a terminal the previous block is rewritten.
    func show(_ lines: [String], replacing previous: Int) -> Int {
        let clear = Progress.isTerminal && previous > 0 ? "\u{1B}[\(previous)F\u{1B}[J" : ""
        FileHandle.standardError.write(Data((clear + lines.map { $0 + "\n" }.joined()).utf8))
        return Progress.isTerminal ? lines.count : 0
    }

    func finish(todo: [SweepTask], failed: [SweepTask], interrupted: Bool) throws {
        let again = plan.command.map(SweepCommand.shellQuoted).joined(separator: " ")
        if interrupted {
            Progress.log("sweep \(plan.id) stopped; running tasks saved their checkpoints. Continue with: \(again)")
            throw ExitCode(130)
        }
        if !failed.isEmpty {
            throw Failure(.sweep, "\(failed.count) of \(todo.count) tasks did not complete (tasks \(failed.map { String($0.index) }.joined(separator: ", ")); logs in \(store.logs(plan.id).path)); rerun: \(again)")
        }
        Progress.log("sweep \(plan.id): all \(todo.count) task\(todo.count == 1 ? "" : "s") completed")
    }
}
