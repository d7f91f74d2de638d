import Foundation
import Registry

/// `lab sweep`: show the plan's state, store the plan, and run what is not
/// completed yet, here (`--jobs`) or on Slurm (`--slurm`).
public enum SweepLaunch {
    public enum Mode: Sendable {
        /// Print and store the plan; run nothing.
        case dryRun
        /// Submit the unfinished tasks as a job array plus a merge job, and return.
        case slurm(SlurmSettings)
        /// Run the unfinished tasks here, `jobs` child processes at a time.
        case local(jobs: Int, threads: Int)
    }

    /// `print` gets the lines for standard output; a local pool reports to `display`.
    public static func run(_ plan: SweepPlan, registry reg: Registry, store: SweepStore, mode: Mode,
                           print: (String) -> Void, display: LocalPool.Display) throws -> LocalPool.Outcome {
        var plan = plan
        // Held until the sweep ends here (SweepLock says why).
        var lock: SweepLock?
        if case .local = mode { lock = try SweepLock.acquire(store, plan.id) }
        defer { lock?.release() }
        let states = try plan.status([reg] + store.shardRegistries(plan.id))
        print(try SweepTable.render(plan, states, reg))
        if let earlier = try? store.load(path: store.planURL(plan.id).path) { plan.slurm = earlier.slurm }
        try store.save(plan)
        print("plan: \(store.planURL(plan.id).path)")
        let todo = states.filter { $0.state != .completed && $0.state != .running }.map(\.task)
        switch mode {
        case .dryRun:
            return .completed
        case _ where todo.isEmpty:
            print("nothing to run: every task is completed or running")
            return .completed
        case .slurm(let settings):
            try SlurmSubmission.refuseWhileQueued(plan)
            for line in try SlurmSubmission.submit(plan, todo: todo, settings: settings, store: store, registry: reg.path) { print(line) }
            return .completed
        case .local(let jobs, let threads):
            return try LocalPool(plan: plan, store: store, db: reg.path, jobs: jobs, threads: threads).run(todo, reg, display: display)
        }
    }
}
