import Analysis
import Failures
import Foundation
import Registry
import Training

/// Where sweeps live: <root>/<id>/plan.json, logs/, shards/.
public struct SweepStore: Sendable {
    public let root: URL
    public init(_ root: String) { self.root = URL(fileURLWithPath: root) }

    public func folder(_ id: String) -> URL { root.appendingPathComponent(id) }
    public func planURL(_ id: String) -> URL { folder(id).appendingPathComponent("plan.json") }
    public func shards(_ id: String) -> URL { folder(id).appendingPathComponent("shards") }
    public func logs(_ id: String) -> URL { folder(id).appendingPathComponent("logs") }

    /// Writes the plan (replacing an earlier copy of the same sweep, which has the same tasks).
    public func save(_ plan: SweepPlan) throws {
        for dir in [folder(plan.id), shards(plan.id), logs(plan.id)] {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let tmp = folder(plan.id).appendingPathComponent(".plan.json.tmp")
        try enc.encode(plan).write(to: tmp)
        // rename(2) replaces atomically: a running task never reads half a plan.
        guard rename(tmp.path, planURL(plan.id).path) == 0 else {
            throw Failure(.sweep, "\(planURL(plan.id).path): cannot write the sweep plan (\(String(cString: strerror(errno))))")
        }
    }

    public func load(path: String) throws -> SweepPlan {
        guard let data = FileManager.default.contents(atPath: path) else { throw Failure(.sweep, "\(path): no such sweep plan") }
        do { return try JSONDecoder().decode(SweepPlan.self, from: data) } catch {
            throw Failure(.sweep, "\(path): not a sweep plan (\(error.localizedDescription))")
        }
    }

    /// Every stored plan, newest first.
    public func all() throws -> [SweepPlan] {
        try ids().map { try load(path: planURL($0).path) }.sorted { $0.createdAt > $1.createdAt }
    }

    func ids() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? [])
            .filter { FileManager.default.fileExists(atPath: planURL($0).path) }
    }

    /// The sweep's shard registries (Slurm tasks write one each).
    /// Read-only: compute nodes may be writing these over a network file
    /// system, where a read-write opener's WAL checkpoint on close could lose
    /// their commits. A shard not readable yet (just created) is left out.
    public func shardRegistries(_ id: String) -> [Registry] {
        shardFiles(id).compactMap { try? Registry(readOnly: $0) }
    }

    /// The sweep's task registries, in task order.
    public func shardFiles(_ id: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: shards(id).path)) ?? [])
            .filter { $0.hasSuffix(".db") }.sorted().map { shards(id).appendingPathComponent($0).path }
    }

    /// The sweep whose id starts with `prefix`, or the newest one.
    public func find(_ prefix: String?) throws -> SweepPlan {
        let ids = ids()
        let plans = try ids.map { try load(path: planURL($0).path) }
        guard let prefix else {
            guard let newest = plans.max(by: { $0.createdAt < $1.createdAt }) else {
                throw Failure(.sweep, "no sweeps in \(root.path) yet; plan one with: lab sweep SPEC... --dry-run")
            }
            return newest
        }
        let hits = plans.filter { $0.id.hasPrefix(prefix.lowercased()) }
        if hits.count == 1 { return hits[0] }
        if hits.isEmpty { throw Failure(.sweep, "no sweep \(prefix) in \(root.path) (sweeps: \(ids.sorted().joined(separator: ", ")))") }
        throw Failure(.sweep, "sweep id \(prefix) is ambiguous: \(hits.map(\.id).joined(separator: ", "))")
    }
}

public enum TaskState: String, Sendable, Comparable, CaseIterable {
    case pending, failed, interrupted, running, completed

    /// Of several copies of a task's run (registry and shards), the furthest along wins.
    var rank: Int { [.pending, .failed, .interrupted, .running, .completed].firstIndex(of: self)! }
    public static func < (a: TaskState, b: TaskState) -> Bool { a.rank < b.rank }
}

public struct TaskStatus: Sendable {
    public var task: SweepTask
    public var state: TaskState
    public var run: RunRow?
}

extension SweepPlan {
    /// Each task's state over the given registries (a run counts for a task
    /// when its experiment and seed match).
    public func status(_ registries: [Registry]) throws -> [TaskStatus] {
        let rows = try registries.flatMap { try RunRow.all($0) }
        return tasks.map { t in
            let mine = rows.filter { $0.experimentID == t.experimentID && $0.seed == t.seed }
            func rank(_ r: RunRow) -> (TaskState, String) { (TaskState(rawValue: r.status.rawValue) ?? .failed, r.id) }
            let best = mine.max { rank($0) < rank($1) }
            return TaskStatus(task: t, state: best.flatMap { TaskState(rawValue: $0.status.rawValue) } ?? .pending, run: best)
        }
    }
}

public enum SweepTaskRunner {
    /// Brings one task to completion in `registry`: nothing when its run is
    /// completed, a resume from the checkpoint when interrupted or failed,
    /// else a new run. A live run of it elsewhere is an error, not a second
    /// copy, unless the registry is the task's own shard (`ownShard`): Slurm
    /// runs one instance of an array task at a time, so a run still marked
    /// running there is an earlier attempt that died without saving (a node
    /// failure, a kill after the grace period).
    @discardableResult
    public static func run(_ task: SweepTask, registry: Registry, runner: Runner, threads: Int, ownShard: Bool = false) throws -> String {
        let mine = try RunRow.all(registry).filter { $0.experimentID == task.experimentID && $0.seed == task.seed }
        if let done = mine.first(where: { $0.status == .completed }) {
            runner.reporter.log("task \(task.index) (\(task.label)): run \(done.id) already completed")
            return done.id
        }
        if let live = mine.first(where: { $0.status == .running }) {
            guard ownShard else {
                throw Failure(.registry,
                              "task \(task.index) (\(task.label)): run \(live.id) is running (pid \(live.pid.map(String.init) ?? "?") "
                                  + "on \(live.host ?? "?"))")
            }
            try registry.endRun(live.id, .interrupted, error: "an earlier attempt of its Slurm task ended without saving")
        }
        if let earlier = mine.last {
            return try runner.resume(earlier.id, options: RunOptions(threads: threads))
        }
        return try runner.run(task.spec(), seed: task.seed, options: RunOptions(threads: threads))
    }
}

/// An exclusive lock on sweeps/<id>/.lock while a sweep runs here: a second
/// `lab sweep` of the same plan on this machine would otherwise see the same
/// pending tasks and start each twice.
public struct SweepLock {
    let fd: Int32

    /// The lock, or one line saying who holds it.
    public static func acquire(_ store: SweepStore, _ id: String) throws -> SweepLock {
        try FileManager.default.createDirectory(at: store.folder(id), withIntermediateDirectories: true)
        let path = store.folder(id).appendingPathComponent(".lock").path
        let fd = open(path, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw Failure(.sweep, "\(path): cannot open the sweep's lock file (\(String(cString: strerror(errno))))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw Failure(.sweep, "sweep \(id) is already running on this machine (another lab sweep holds \(path)); "
                          + "watch it with: lab sweep status \(id)")
        }
        return SweepLock(fd: fd)
    }

    public func release() { close(fd) }
}

/// The plan as a table: state, run, and the CPU time still to spend, from
/// past epochs of the same experiment (`lab sweep` and `lab sweep status`).
public enum SweepTable {
    public static func render(_ plan: SweepPlan, _ states: [TaskStatus], _ reg: Registry, shards: Int? = nil) throws -> String {
        var cpu = 0.0, unknown = 0
        let rows = try states.map { s -> [String] in
            var est = "-"
            if s.state != .completed {
                if let e = try reg.epochSeconds(experiment: s.task.experimentID) {
                    let left = Double(max(0, s.task.maxEpochs - (s.run?.epochsRun ?? 0))) * e.cpu
                    cpu += left; est = Format.duration(left)
                } else { unknown += 1 }
            }
            return [String(s.task.index), s.task.name, String(s.task.seed), s.state.rawValue, s.run.map { String($0.id.prefix(10)) } ?? "-",
                    "\(s.run?.epochsRun ?? 0)/\(s.task.maxEpochs)", est]
        }
        let counts = TaskState.allCases.compactMap { st -> String? in
            let n = states.filter { $0.state == st }.count
            return n == 0 ? nil : "\(n) \(st.rawValue)"
        }
        var head = "sweep \(plan.id): \(plan.tasks.count) task\(plan.tasks.count == 1 ? "" : "s"): \(counts.joined(separator: ", "))"
        if let shards { head += " (from \(reg.path) and \(shards) shard\(shards == 1 ? "" : "s"))" }
        if states.contains(where: { $0.state != .completed }) {
            head += "\nCPU time left: "
                + (cpu > 0 ? "up to \(Format.duration(cpu)) (from past epochs; early stopping may end sooner)" : "unknown")
                + (unknown > 0 ? "; \(unknown) task\(unknown == 1 ? " has" : "s have") no past epochs to go by" : "")
        }
        let header = ["task", "experiment", "seed", "state", "run", "epochs", "CPU est."]
        return head + "\n" + TextTable.render(header, rows, rightAligned: [2, 5, 6])
    }
}
