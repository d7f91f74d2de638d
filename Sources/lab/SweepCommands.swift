import ArgumentParser
import Failures
import Foundation
import Registry
import Specs
import Sweeps
import Training

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
            if let bad = overrides.first(where: { SpecOverride($0) == nil }) { throw ValidationError("\(SpecOverride.usage), not "
                + "'\(bad)'") }
            if let bad = grid.first(where: { GridAxis($0) == nil }) { throw ValidationError("\(GridAxis.usage); not '\(bad)'") }
            if jobs < 1 { throw ValidationError("--jobs must be at least 1") }
            if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        }

        var threadsPerTask: Int { threads ?? max(1, ProcessInfo.processInfo.activeProcessorCount / jobs) }

        func run() throws {
            let tasks = try SweepPlanner.tasks(specs: specs, seeds: seeds,
                                               overrides: overrides.compactMap(SpecOverride.init), grid: grid.compactMap(GridAxis.init))
            let plan = SweepPlan(tasks: tasks, command: ["lab"] + CommandLine.arguments.dropFirst().filter { $0 != "--dry-run" })
            let mode: SweepLaunch.Mode = dryRun ? .dryRun
                : slurm.enabled ? .slurm(slurm.settings) : .local(jobs: jobs, threads: threadsPerTask)
            let outcome = try SweepLaunch.run(plan, registry: registry.open(), store: folder.store, mode: mode,
                                              print: { print($0) }, display: Progress.poolDisplay())
            if outcome == .interrupted { throw ExitCode(130) }
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
            let shards = folder.store.shardRegistries(plan.id)
            let states = try plan.status([reg] + shards)
            print(try SweepTable.render(plan, states, reg, shards: shards.count))
            if let jobs = plan.slurm {
                print("slurm: array job \(jobs.arrayJob), merge job \(jobs.mergeJob) into \(jobs.registry) "
                      + "(squeue -j \(jobs.arrayJob),\(jobs.mergeJob))")
            }
            let left = states.filter { $0.state != .completed }
            if left.isEmpty { return }
            print("resubmit what did not complete: \(plan.resubmitCommand)")
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

struct SlurmOptions: ParsableArguments {
    @Flag(name: .customLong("slurm"), help: "Submit the sweep as a Slurm job array plus a merge job, and return at once.")
    var enabled = false

    @Option(help: "Slurm partition.") var partition: String?
    @Option(help: ArgumentHelp("Time limit per task.", valueName: "HH:MM:SS")) var time: String?
    @Option(help: "CPUs per task (lab uses them all as threads).") var cpusPerTask = 2
    @Option(help: "Array tasks running at once (%K).") var maxParallel: Int?
    @Option(name: .customLong("sbatch-arg"), parsing: .unconditionalSingleValue,
            help: ArgumentHelp("Extra sbatch option, e.g. --sbatch-arg=--mem=4G (repeatable).", valueName: "arg"))
    var extraOptions: [String] = []

    func validate() throws {
        let used = partition != nil || time != nil || maxParallel != nil || !extraOptions.isEmpty
        if used && !enabled { throw ValidationError("--partition, --time, --max-parallel and --sbatch-arg need --slurm") }
        if cpusPerTask < 1 { throw ValidationError("--cpus-per-task must be at least 1") }
        if let maxParallel, maxParallel < 1 { throw ValidationError("--max-parallel must be at least 1") }
        if let time, time.isEmpty || !time.allSatisfy({ $0.isNumber || $0 == ":" || $0 == "-" }) {
            throw ValidationError("--time takes Slurm's format, e.g. 02:00:00 or 1-12:00:00, not '\(time)'")
        }
    }

    var settings: SlurmSettings {
        SlurmSettings(partition: partition, time: time, cpusPerTask: cpusPerTask, maxParallel: maxParallel, extra: extraOptions)
    }
}
