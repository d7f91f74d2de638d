import Foundation

/// What `--slurm` asks of the scheduler.
public struct SlurmSettings: Sendable {
    public var partition: String?
    public var time: String?
    public var cpusPerTask: Int
    public var maxParallel: Int?
    public var extra: [String]
    public init(partition: String?, time: String?, cpusPerTask: Int, maxParallel: Int?, extra: [String]) {
        self.partition = partition; self.time = time; self.cpusPerTask = cpusPerTask; self.maxParallel = maxParallel; self.extra = extra
    }
}

/// The sbatch array script of a sweep: one array task per plan task, each
/// training into its own shard (SQLite's WAL is not safe across hosts on a
/// network file system, so no two nodes write one file).
public enum SlurmScript {
    /// "0-3%2" for every task, "1,3%2" for a resubmission of some.
    public static func array(_ indices: [Int], total: Int, maxParallel: Int?) -> String {
        let list = indices == Array(0..<total) ? "0-\(total - 1)" : indices.map(String.init).joined(separator: ",")
        return list + (maxParallel.map { "%\($0)" } ?? "")
    }

    public static func render(plan: SweepPlan, indices: [Int], settings s: SlurmSettings, lab: String, workdir: String,
                              store: SweepStore) -> String {
        var head = ["--job-name=lab-sweep-\(plan.id)", "--array=\(array(indices, total: plan.tasks.count, maxParallel: s.maxParallel))",
                    "--requeue", "--signal=B:USR1@120", "--output=\(store.logs(plan.id).path)/%A_%a.out", "--open-mode=append",
                    "--cpus-per-task=\(s.cpusPerTask)"]
        if let p = s.partition { head.append("--partition=\(p)") }
        if let t = s.time { head.append("--time=\(t)") }
        head += s.extra
        return """
        #!/bin/bash
        \(head.map { "#SBATCH \($0)" }.joined(separator: "\n"))
        # One task of lab sweep \(plan.id), written by lab; rerun the lab sweep command rather than editing it.
        # USR1 comes 120 s before the time limit, to this shell only (B:): it is passed on to lab,
        # which saves at the next batch and marks its run interrupted (exit 130); the task then
        # requeues itself and, started again, resumes the run from its checkpoint in the shard.
        # scancel and the time limit send TERM to every process of the job, lab included: the
        # shell only waits for lab to save (passing TERM on would be a second signal: quit unsaved).
        set -u
        cd \(quoted(workdir))
        on_usr1() {
            kill -USR1 "$pid" 2>/dev/null
            wait "$pid"; rc=$?
            if [ "$rc" -eq 130 ] && scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"; then exit 0; fi
            exit "$rc"
        }
        on_term() { wait "$pid"; exit $?; }
        trap on_usr1 USR1
        trap on_term TERM
        \(quoted(lab)) sweep task \(quoted(store.planURL(plan.id).path)) "$SLURM_ARRAY_TASK_ID" \\
            --db \(quoted(store.shards(plan.id).path))/task-"$SLURM_ARRAY_TASK_ID".db --threads "${SLURM_CPUS_PER_TASK:-1}" --own-shard &
        pid=$!
        wait "$pid"

        """
    }

    /// The merge job's command: every shard into the registry, once the array is over.
    public static func mergeCommand(plan: SweepPlan, lab: String, workdir: String, store: SweepStore, registry: String) -> String {
        "cd \(quoted(workdir)) && exec \(quoted(lab)) merge \(quoted(store.shards(plan.id).path))/*.db --into \(quoted(registry))"
    }

    public static func quoted(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: #"'\''"#) + "'" }
}
