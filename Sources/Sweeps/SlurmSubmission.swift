import ChildProcess
import Failures
import Foundation
import Training

/// This executable's real path: children and array tasks run the same build.
public enum LabExecutable {
    public static let path: String = {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }()
}

/// `lab sweep --slurm`: the array script written beside the plan, the array
/// and its merge job submitted with sbatch; and the check that the array is
/// not still queued before a resubmission.
public enum SlurmSubmission {
    /// Writes sweeps/<id>/sweep.sbatch, submits it and the merge job into
    /// `registry`, stores their ids with the plan, and returns the lines to print.
    public static func submit(_ plan: SweepPlan, todo: [SweepTask], settings: SlurmSettings, store: SweepStore,
                              registry: String) throws -> [String] {
        let workdir = FileManager.default.currentDirectoryPath
        let abs = SweepStore(URL(fileURLWithPath: store.root.path).standardized.path)
        let script = abs.folder(plan.id).appendingPathComponent("sweep.sbatch")
        let text = SlurmScript.render(plan: plan, indices: todo.map(\.index), settings: settings, lab: LabExecutable.path,
                                      workdir: workdir, store: abs)
        try text.write(to: script, atomically: true, encoding: .utf8)
        let array = try sbatch(["--parsable", script.path])
        var merge = ["--parsable", "--dependency=afterany:\(array)", "--job-name=lab-merge-\(plan.id)",
                     "--output=\(abs.logs(plan.id).path)/merge-%j.out"]
        if let p = settings.partition { merge.append("--partition=\(p)") }
        let db = URL(fileURLWithPath: registry).standardized.path
        merge += ["--wrap", SlurmScript.mergeCommand(plan: plan, lab: LabExecutable.path, workdir: workdir, store: abs, registry: db)]
        let mergeJob = try sbatch(merge)
        var stored = plan
        stored.slurm = SlurmJobs(arrayJob: array, mergeJob: mergeJob, registry: db)
        try store.save(stored)
        return ["submitted array job \(array) (\(todo.count) task\(todo.count == 1 ? "" : "s")) and merge job \(mergeJob) into \(db)",
                "watch: squeue -j \(array),\(mergeJob)   or   lab sweep status \(plan.id)"]
    }

    /// A second submission while the first array is queued would start the
    /// tasks that have no shard yet twice.
    public static func refuseWhileQueued(_ plan: SweepPlan) throws {
        guard let jobs = plan.slurm, let r = try? ChildProcess.run("squeue", ["-h", "-o", "%i", "-j", jobs.arrayJob]) else { return }
        if r.succeeded && !r.output.isEmpty {
            throw Failure(.sweep, "sweep \(plan.id) is still queued or running as array job \(jobs.arrayJob) (squeue -j \(jobs.arrayJob)); "
                          + "wait for it, or scancel \(jobs.arrayJob), before submitting it again")
        }
    }

    /// Runs sbatch and returns the job id (`--parsable` prints "id" or "id;cluster").
    static func sbatch(_ args: [String]) throws -> String {
        let r: ChildProcess.Finished
        do { r = try ChildProcess.run("sbatch", args, environment: BLASKernels.environmentForOtherMachines()) } catch {
            throw Failure(.sweep, "cannot run sbatch: \(error.localizedDescription)")
        }
        let id = r.output.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        guard r.succeeded, !id.isEmpty, id.allSatisfy(\.isNumber) else {
            let msg = r.errors.trimmingCharacters(in: .whitespacesAndNewlines)
            throw Failure(.sweep, r.status == 127 ? "sbatch not found: --slurm needs Slurm's client commands on PATH"
                                                  : "sbatch failed: \(msg.isEmpty ? "exit \(r.status)" : msg)")
        }
        return id
    }
}
