import ArgumentParser
import Failures
import Foundation
import LabKit

struct SlurmOptions: ParsableArguments {
    @Flag(name: .customLong("slurm"), help: "Submit the sweep as a Slurm job array plus a merge job, and return at once.")
    var enabled = false

    @Option(help: "Slurm partition.") var partition: String?
    @Option(help: ArgumentHelp("Time limit per task.", valueName: "HH:MM:SS")) var time: String?
    @Option(help: "CPUs per task (lab uses them all as threads).") var cpusPerTask = 2
    @Option(help: "Array tasks running at once (%K).") var maxParallel: Int?
    @Option(name: .customLong("sbatch-arg"), parsing: .unconditionalSingleValue, help: ArgumentHelp("Extra sbatch option, e.g. --sbatch-arg=--mem=4G (repeatable).", valueName: "arg"))
    var sbatchArgs: [String] = []

    func validate() throws {
        let used = partition != nil || time != nil || maxParallel != nil || !sbatchArgs.isEmpty
        if used && !enabled { throw ValidationError("--partition, --time, --max-parallel and --sbatch-arg need --slurm") }
        if cpusPerTask < 1 { throw ValidationError("--cpus-per-task must be at least 1") }
        if let maxParallel, maxParallel < 1 { throw ValidationError("--max-parallel must be at least 1") }
        if let time, time.isEmpty || !time.allSatisfy({ $0.isNumber || $0 == ":" || $0 == "-" }) {
            throw ValidationError("--time takes Slurm's format, e.g. 02:00:00 or 1-12:00:00, not '\(time)'")
        }
    }

    var settings: SlurmSettings {
        SlurmSettings(partition: partition, time: time, cpusPerTask: cpusPerTask, maxParallel: maxParallel, extra: sbatchArgs)
    }
}

enum SlurmCommand {
    /// This executable's real path: children and array tasks run the same build.
    static let labExecutable: String = {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }()

    static func submit(_ plan: SweepPlan, todo: [SweepTask], options: SlurmOptions, store: SweepStore, registry: String) throws {
        let workdir = FileManager.default.currentDirectoryPath
        let abs = SweepStore(URL(fileURLWithPath: store.root.path).standardized.path)
        let script = abs.folder(plan.id).appendingPathComponent("sweep.sbatch")
        let text = SlurmScript.render(plan: plan, indices: todo.map(\.index), settings: options.settings, lab: labExecutable,
                                      workdir: workdir, store: abs)
        try text.write(to: script, atomically: true, encoding: .utf8)
        let array = try sbatch(["--parsable", script.path])
        var merge = ["--parsable", "--dependency=afterany:\(array)", "--job-name=lab-merge-\(plan.id)",
                     "--output=\(abs.logs(plan.id).path)/merge-%j.out"]
        if let p = options.partition { merge.append("--partition=\(p)") }
        let db = URL(fileURLWithPath: registry).standardized.path
        merge += ["--wrap", SlurmScript.mergeCommand(plan: plan, lab: labExecutable, workdir: workdir, store: abs, registry: db)]
        let mergeJob = try sbatch(merge)
        var stored = plan
        stored.slurm = SlurmJobs(arrayJob: array, mergeJob: mergeJob, registry: db)
        try store.save(stored)
        print("submitted array job \(array) (\(todo.count) task\(todo.count == 1 ? "" : "s")) and merge job \(mergeJob) into \(db)")
        print("watch: squeue -j \(array),\(mergeJob)   or   lab sweep status \(plan.id)")
    }

    /// A second submission while the first array is queued would start the
    /// tasks that have no shard yet twice.
    static func refuseWhileQueued(_ plan: SweepPlan) throws {
        guard let jobs = plan.slurm else { return }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["squeue", "-h", "-o", "%i", "-j", jobs.arrayJob]
        let out = Pipe(); p.standardOutput = out; p.standardError = Pipe()
        guard (try? p.run()) != nil else { return }
        let queued = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        if p.terminationStatus == 0 && !queued.isEmpty {
            throw Failure(.sweep, "sweep \(plan.id) is still queued or running as array job \(jobs.arrayJob) (squeue -j \(jobs.arrayJob)); wait for it, or scancel \(jobs.arrayJob), before submitting it again")
        }
    }

    /// Runs sbatch and returns the job id (`--parsable` prints "id" or "id;cluster").
    static func sbatch(_ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["sbatch"] + args
        p.environment = BLASKernels.environmentForOtherMachines()
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        do { try p.run() } catch { throw Failure(.sweep, "cannot run sbatch: \(error.localizedDescription)") }
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let id = String(decoding: o, as: UTF8.self).split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        guard p.terminationStatus == 0, !id.isEmpty, id.allSatisfy(\.isNumber) else {
            let msg = String(decoding: e, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw Failure(.sweep, p.terminationStatus == 127 ? "sbatch not found: --slurm needs Slurm's client commands on PATH"
                                                      : "sbatch failed: \(msg.isEmpty ? "exit \(p.terminationStatus)" : msg)")
        }
        return id
    }
}
