import ArgumentParser
import Failures
import Foundation
import LabKit
import Registry

/// `--sweeps`: the folder holding sweeps/<id>/ (plan, logs, shards).
struct SweepFolderOption: ParsableArguments {
    @Option(name: .customLong("sweeps"), help: "Folder of sweep plans, logs and shards.", completion: .directory)
    var path = "sweeps"

    var store: SweepStore { SweepStore(path) }
}

extension Lab {
    struct Sweep: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run many specs x seeds: here with --jobs, or as a Slurm job array with --slurm.",
            subcommands: [Plan.self, Status.self, Task.self],
            defaultSubcommand: Plan.self)
    }
}

extension Lab.Sweep {
    struct Plan: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Plan one task per (resolved spec, seed) and run what is not completed yet.",
            discussion: """
                The plan is stored as sweeps/<id>/plan.json, its id a hash of the tasks: the same command \
                again finds the same sweep and runs only what is missing, failed or interrupted (resuming \
                from checkpoints). `lab sweep SPEC...` is short for `lab sweep run SPEC...`.
                """)

        @Argument(help: "Experiment spec files (JSON).", completion: .file(extensions: ["json"]))
        var specs: [String]

        @Option(help: "Comma-separated seeds, overriding train.seeds (e.g. 1,2,3).", transform: SeedList.parse)
        var seeds: [Int]?

        @Option(name: .customLong("set"), help: ArgumentHelp("Override a spec key in every task (repeatable).", valueName: "key=value"))
        var overrides: [String] = []

        @Option(help: ArgumentHelp("One experiment per value, crossed with other --grid keys, e.g. train.lr=0.001,0.0003 (repeatable).",
                                   valueName: "key=v1,v2"))
        var grid: [String] = []

        @Flag(help: "Print and store the plan; run nothing.")
        var dryRun = false

        @Option(help: "Tasks run at once on this machine.")
        var jobs = 1

        @Option(help: "Threads per task (default: all cores / --jobs).")
        var threads: Int?

        @OptionGroup var slurm: SlurmOptions
        @OptionGroup var folder: SweepFolderOption
        @OptionGroup var registry: RegistryOptions

        func validate() throws {
            if let bad = overrides.first(where: { SpecOverride($0) == nil }) { throw ValidationError("\(SpecOverride.usage), not '\(bad)'") }
            if let bad = grid.first(where: { GridAxis($0) == nil }) { throw ValidationError("\(GridAxis.usage); not '\(bad)'") }
            if jobs < 1 { throw ValidationError("--jobs must be at least 1") }
            if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        }

        var threadsPerTask: Int { threads ?? max(1, ProcessInfo.processInfo.activeProcessorCount / jobs) }

        func run() throws {
            let tasks = try SweepPlanner.tasks(specs: specs, seeds: seeds,
                                               overrides: overrides.compactMap(SpecOverride.init), grid: grid.compactMap(GridAxis.init))
            var plan = SweepPlan(tasks: tasks, command: ["lab"] + CommandLine.arguments.dropFirst().filter { $0 != "--dry-run" })
            let reg = try registry.open()
            // Held until this command ends: a second `lab sweep` of the same plan here
            // would otherwise see the same pending tasks and start each twice.
            let lock = dryRun || slurm.enabled ? nil : try SweepCommand.lock(folder.store, plan.id)
            defer { if let lock { close(lock) } }
            let states = try plan.status([reg] + SweepCommand.shards(folder.store, plan.id))
            print(try SweepCommand.describe(plan, states, reg))
            if let earlier = try? folder.store.load(path: folder.store.planURL(plan.id).path) { plan.slurm = earlier.slurm }
            try folder.store.save(plan)
            print("plan: \(folder.store.planURL(plan.id).path)")
            let todo = states.filter { $0.state != .completed && $0.state != .running }.map(\.task)
            if dryRun { return }
            if todo.isEmpty { print("nothing to run: every task is completed or running"); return }
            if slurm.enabled {
                try SlurmCommand.refuseWhileQueued(plan)
                try SlurmCommand.submit(plan, todo: todo, options: slurm, store: folder.store, registry: reg.path)
                return
            }
            try LocalSweep(plan: plan, store: folder.store, db: reg.path, jobs: jobs, threads: threadsPerTask).run(todo, reg)
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Task states of a sweep, from the registry and the sweep's shards (not from the scheduler).")

        @Argument(help: "Sweep id (any unique prefix; default: the newest sweep).")
        var sweep: String?

        @OptionGroup var folder: SweepFolderOption
        @OptionGroup var registry: RegistryOptions

        func run() throws {
            let plan = try folder.store.find(sweep)
            let reg = try registry.open()
            let shards = try SweepCommand.shards(folder.store, plan.id)
            let states = try plan.status([reg] + shards)
            print(try SweepCommand.describe(plan, states, reg, shards: shards.count))
            if let jobs = plan.slurm {
                print("slurm: array job \(jobs.arrayJob), merge job \(jobs.mergeJob) into \(jobs.registry) (squeue -j \(jobs.arrayJob),\(jobs.mergeJob))")
            }
            let left = states.filter { $0.state != .completed }
            if left.isEmpty { return }
            print("resubmit what did not complete: \(plan.command.map(SweepCommand.shellQuoted).joined(separator: " "))")
        }
    }

    /// One task of a stored plan, as a child of `lab sweep --jobs` or a Slurm array task.
    struct Task: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run one task of a stored sweep plan (what --jobs and Slurm array tasks call).",
            shouldDisplay: false)

        @Argument(help: "The sweep's plan.json.") var plan: String
        @Argument(help: "Task index in the plan.") var index: Int
        @Flag(help: "The registry is this task's own shard (Slurm array tasks).") var ownShard = false
        @OptionGroup var registry: RegistryOptions
        @OptionGroup var compute: ComputeOptions

        func run() throws {
            let p = try SweepStore(".").load(path: plan)
            guard p.tasks.indices.contains(index) else {
                throw Failure(.sweep, "\(plan): sweep \(p.id) has tasks 0-\(p.tasks.count - 1), not \(index)")
            }
            let reg = try registry.open()
            Interrupt.install()
            do {
                try SweepTaskRunner.run(p.tasks[index], registry: reg, runner: Runner(registry: reg, reporter: reporter),
                                        threads: compute.threads, ownShard: ownShard)
                Progress.done()
            } catch let e as Interrupted {
                Progress.log("\(e)")
                throw ExitCode(130)
            }
        }
    }
}

enum SweepCommand {
    /// The sweep's shard registries (Slurm tasks write one each).
    /// Read-only: compute nodes may be writing these over a network file
    /// system, where a read-write opener's WAL checkpoint on close could lose
    /// their commits. A shard not readable yet (just created) is left out.
    /// An exclusive lock on sweeps/<id>/.lock, or one line saying who holds it.
    static func lock(_ store: SweepStore, _ id: String) throws -> Int32 {
        try FileManager.default.createDirectory(at: store.folder(id), withIntermediateDirectories: true)
        let path = store.folder(id).appendingPathComponent(".lock").path
        let fd = open(path, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw Failure(.sweep, "\(path): cannot open the sweep's lock file (\(String(cString: strerror(errno))))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw Failure(.sweep, "sweep \(id) is already running on this machine (another lab sweep holds \(path)); watch it with: lab sweep status \(id)")
        }
        return fd
    }

    static func shards(_ store: SweepStore, _ id: String) throws -> [Registry] {
        store.shardFiles(id).compactMap { try? Registry(readOnly: $0) }
    }

    /// The plan as a table: state, run, and the CPU time still to spend,
    /// from past epochs of the same experiment.
    static func describe(_ plan: SweepPlan, _ states: [TaskStatus], _ reg: Registry, shards: Int? = nil) throws -> String {
        var cpu = 0.0, unknown = 0
        let rows = try states.map { s -> [String] in
            var est = "-"
            if s.state != .completed {
                if let e = try reg.epochSeconds(experiment: s.task.experimentID) {
                    let left = Double(max(0, s.task.maxEpochs - (s.run?.epochsRun ?? 0))) * e.cpu
                    cpu += left; est = Runner.duration(left)
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
            head += "\nCPU time left: " + (cpu > 0 ? "up to \(Runner.duration(cpu)) (from past epochs; early stopping may end sooner)" : "unknown")
                + (unknown > 0 ? "; \(unknown) task\(unknown == 1 ? " has" : "s have") no past epochs to go by" : "")
        }
        return head + "\n" + TextTable.render(["task", "experiment", "seed", "state", "run", "epochs", "CPU est."], rows, rightAligned: [2, 5, 6])
    }

    static func shellQuoted(_ s: String) -> String {
        s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=,:@%+".contains($0) }) ? s : "'" + s.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
    }
}
