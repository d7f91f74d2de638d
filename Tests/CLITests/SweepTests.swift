import Foundation
import XCTest

/// `lab sweep` and `lab merge` as a user runs them: here with --jobs, and
/// on a real Slurm cluster when one answers (.ci/slurm-up starts one).
extension CLITests {
    func testSweepRunsTwoTasksAtOnceAndAgainRunsNothing() throws {
        let s = spec("slow", epochs: 2, slow: true)   // a few seconds per run, so overlap is visible
        let r = try lab("sweep", s, "--seeds", "1,2", "--jobs", "2", "--threads", "1", "--db", db)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("2 tasks: 2 pending"), r.out)
        XCTAssertEqual(try sql("SELECT COUNT(*) FROM runs WHERE status = 'completed'"), "2")
        XCTAssertEqual(try sql("SELECT MAX(started_at) < MIN(finished_at) FROM runs"), "1", "the two tasks ran at the same time")
        XCTAssertTrue(r.err.contains("all 2 tasks completed"), r.err)

        let again = try lab("sweep", s, "--seeds", "1,2", "--jobs", "2", "--db", db)
        XCTAssertEqual(again.status, 0, again.err)
        XCTAssertTrue(again.out.contains("2 tasks: 2 completed"), again.out)
        XCTAssertTrue(again.out.contains("nothing to run"), again.out)
        XCTAssertEqual(try sql("SELECT COUNT(*) FROM runs"), "2")

        let status = try lab("sweep", "status", "--db", db)
        XCTAssertEqual(status.status, 0, status.err)
        XCTAssertTrue(status.out.contains("2 tasks: 2 completed"), status.out)
        XCTAssertFalse(status.out.contains("resubmit"), status.out)

        // A third seed is a new sweep; its time is estimated from the two runs' epochs.
        let more = try lab("sweep", s, "--seeds", "1,2,3", "--dry-run", "--db", db)
        XCTAssertTrue(more.out.contains("3 tasks: 1 pending, 2 completed\nCPU time left: up to "), more.out)
        XCTAssertEqual(try sql("SELECT COUNT(*) FROM runs"), "2")
    }

    func testSweepCtrlCStopsEveryTaskAndTheSameCommandResumesThem() throws {
        // Three tasks, two at a time: the third is still queued when Ctrl-C comes.
        let args = ["sweep", spec("slow", epochs: 6, slow: true), "--seeds", "1,2,3", "--jobs", "2", "--threads", "1", "--db", db]
        let (p, _, err) = try start(args)
        try waitUntil("both tasks' first epochs", timeout: 120) {
            FileManager.default.fileExists(atPath: db) && (try? sql("SELECT COUNT(DISTINCT run_id) FROM epochs")) == "2"
        }
        kill(p.processIdentifier, SIGINT)
        // A sweep that waits on its queue after the running tasks stopped would hang here.
        try waitUntil("the sweep to exit once its running tasks stopped", timeout: 60) { !p.isRunning }
        let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(p.terminationStatus, 130, e)
        XCTAssertEqual(try sql("SELECT group_concat(status) FROM runs"), "interrupted,interrupted", "the queued third task never started")
        XCTAssertTrue(e.contains("stopped; running tasks saved their checkpoints. Continue with: lab sweep "), e)
        let again = try lab(args)
        XCTAssertEqual(again.status, 0, again.err)
        XCTAssertEqual(try sql("SELECT COUNT(*) || ' ' || SUM(status = 'completed') FROM runs"), "3 3")
        XCTAssertEqual(try sql("SELECT COUNT(*) FROM epochs"), "18", "resumed: every epoch once")
        let logs = dir.appendingPathComponent("sweeps").path
        let id = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: logs).first)
        let log = try String(contentsOfFile: "\(logs)/\(id)/logs/task-0.log", encoding: .utf8)
        XCTAssertTrue(log.contains(" interrupted; ") && log.contains("resuming run"), "both attempts in the task's log: \(log)")
    }

    func testSweepGridPlansOneExperimentPerValueAndRerunsOnlyWhatFailed() throws {
        let s = spec("tiny", epochs: 1)
        let plan = try lab("sweep", s, "--seeds", "1", "--grid", "model.hidden=8,16", "--dry-run", "--db", db)
        XCTAssertEqual(plan.status, 0, plan.err)
        XCTAssertTrue(plan.out.contains("tiny[model.hidden=8]"), plan.out)
        XCTAssertTrue(plan.out.contains("tiny[model.hidden=16]"), plan.out)
        XCTAssertEqual(try sql("SELECT COUNT(*) FROM runs"), "0", "a dry run runs nothing")
        let id = try XCTUnwrap(plan.out.split(separator: "\n").first?.split(separator: " ")[1].dropLast()).description

        // One task runs and then fails after the fact; the sweep again runs that one only.
        XCTAssertEqual(try lab("sweep", s, "--seeds", "1", "--grid", "model.hidden=8,16", "--threads", "1", "--db", db).status, 0)
        XCTAssertEqual(try sql("SELECT group_concat(e.name || ' ' || e.parent, ';') FROM (SELECT * FROM experiments ORDER BY name) e"),
                       "tiny[model.hidden=16] tiny;tiny[model.hidden=8] tiny")
        _ = try sql("UPDATE runs SET status = 'failed' WHERE id = (SELECT MIN(id) FROM runs)")
        let status = try lab("sweep", "status", String(id.prefix(6)), "--db", db)
        XCTAssertTrue(status.out.contains("1 failed, 1 completed"), status.out)
        XCTAssertTrue(status.out.contains("resubmit what did not complete: lab sweep"), status.out)
        let rerun = try lab("sweep", s, "--seeds", "1", "--grid", "model.hidden=8,16", "--threads", "1", "--db", db)
        XCTAssertEqual(rerun.status, 0, rerun.err)
        XCTAssertTrue(rerun.err.contains("running 1 task,"), rerun.err)
        XCTAssertEqual(try sql("SELECT COUNT(*) || ' ' || SUM(status = 'completed') FROM runs"), "2 2", "the failed run resumed, not a third run")
    }

    func testTaskInItsOwnShardTakesOverARunLeftRunning() throws {
        let s = spec("tiny", epochs: 2)
        let plan = try lab("sweep", s, "--seeds", "1", "--dry-run", "--db", db)
        let path = try XCTUnwrap(plan.out.split(separator: "\n").first { $0.hasPrefix("plan: ") }).dropFirst("plan: ".count)
        let shard = dir.appendingPathComponent("shard.db").path
        XCTAssertEqual(try lab("sweep", "task", String(path), "0", "--db", shard, "--threads", "1").status, 0)
        // As a node failure leaves it: running, fresh heartbeat, another host.
        _ = try command(["sqlite3", shard, "UPDATE runs SET status = 'running', host = 'node7', heartbeat_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"])
        let shared = try lab("sweep", "task", String(path), "0", "--db", shard, "--threads", "1")
        XCTAssertEqual(shared.status, 1)
        XCTAssertTrue(shared.err.contains("is running (pid "), shared.err)
        let own = try lab("sweep", "task", String(path), "0", "--db", shard, "--threads", "1", "--own-shard")
        XCTAssertEqual(own.status, 0, own.err)
        XCTAssertEqual(try command(["sqlite3", shard, "SELECT COUNT(*) || ' ' || status FROM runs"]), "1 completed")
        let bad = try lab("sweep", "task", String(path), "5", "--db", shard)
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.err.hasSuffix("has tasks 0-0, not 5\n"), bad.err)
    }

    func testSweepAndMergeErrorsAreOneLine() throws {
        let s = spec("tiny", epochs: 1)
        let grid = try lab("sweep", s, "--grid", "train.lr", "--db", db)
        XCTAssertEqual(grid.status, 64)
        XCTAssertTrue(grid.err.hasPrefix("Error: --grid takes KEY=V1,V2,... with a dotted spec key, e.g. --grid train.lr=0.001,0.0003; not 'train.lr'\n"), grid.err)
        let key = try lab("sweep", s, "--grid", "train.lrr=1,2", "--db", db)
        XCTAssertEqual(key.status, 1)
        XCTAssertTrue(key.err.hasPrefix("Error: --grid train.lrr: unknown key (did you mean train.lr?)"), key.err)
        let unknown = try lab("sweep", "status", "nope", "--db", db)
        XCTAssertEqual(unknown.status, 1)
        XCTAssertTrue(unknown.err.hasPrefix("Error: no sweep nope in "), unknown.err)
        let slurmOnly = try lab("sweep", s, "--max-parallel", "2", "--db", db)
        XCTAssertEqual(slurmOnly.status, 64)
        let missing = try lab("merge", "sweeps/x/shards/task-0.db", "--into", db)
        XCTAssertEqual(missing.status, 1)
        XCTAssertEqual(missing.err, "Error: sweeps/x/shards/task-0.db: no such registry\n")
    }

    /// `lab merge` of a copy of a run whose content differs: reported by run
    /// and table, the target unchanged, a non-zero exit.
    func testMergeOfAConflictingRunExitsNonZeroAndKeepsTheTarget() throws {
        let shard = dir.appendingPathComponent("shard.db").path
        XCTAssertEqual(try lab("run", spec("tiny", epochs: 2), "--db", shard, "--threads", "1").status, 0)
        XCTAssertEqual(try lab("merge", shard, "--into", db).status, 0)
        let run = try sql("SELECT id FROM runs")
        let kept = try sql("SELECT val_accuracy FROM epochs WHERE epoch = 1")
        let changed = dir.appendingPathComponent("changed.db").path
        try FileManager.default.copyItem(atPath: shard, toPath: changed)
        let edit = Process()
        edit.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        edit.arguments = ["sqlite3", changed, "UPDATE epochs SET val_accuracy = 0.5 WHERE epoch = 1"]
        try edit.run(); edit.waitUntilExit()
        let r = try lab("merge", changed, "--into", db)
        XCTAssertEqual(r.status, 1, r.err)
        XCTAssertEqual(r.out, "\(changed): 0 runs added, 0 already there, 1 conflict kept as in the target (0 rows)\n")
        XCTAssertTrue(r.err.hasPrefix("conflict: run \(run) differs in epochs (1 row; epoch 1: val_accuracy "), r.err)
        XCTAssertTrue(r.err.contains(" here, 0.5 there); kept the target's"), r.err)
        XCTAssertEqual(try sql("SELECT val_accuracy FROM epochs WHERE epoch = 1"), kept)
        XCTAssertEqual(try lab("merge", shard, "--into", db).status, 0, "an identical copy merges as before")
    }

    /// Why Slurm tests cannot run here, or nil when a cluster answers.
    func slurmMissing() -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["sinfo", "-h", "-o", "%t"]
        p.standardOutput = Pipe(); p.standardError = Pipe()
        guard (try? p.run()) != nil else { return "sbatch not found" }
        p.waitUntilExit()
        if p.terminationStatus == 127 { return "sbatch not found" }
        return p.terminationStatus == 0 ? nil : "sinfo does not answer"
    }

    func command(_ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        let out = Pipe(); p.standardOutput = out; p.standardError = Pipe()
        try p.run()
        let d = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Polls squeue until none of the jobs is queued or running.
    func waitForJobs(_ ids: [String], timeout: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try command(["squeue", "-h", "-j", ids.joined(separator: ",")]).isEmpty { return }
            Thread.sleep(forTimeInterval: 1)
        }
        XCTFail("jobs \(ids) still queued after \(Int(timeout)) s: \(try command(["squeue"]))")
    }

    func testSlurmSweepRunsTheArrayAndMergesTheShards() throws {
        if let why = slurmMissing() {
            throw XCTSkip("\(why): Slurm tests need a running cluster; .ci/slurm-up starts one")
        }
        let specs = [spec("a", epochs: 2), spec("b", epochs: 2)]
        let r = try lab(["sweep"] + specs + ["--seeds", "1,2", "--slurm", "--cpus-per-task", "1", "--max-parallel", "2", "--db", db])
        XCTAssertEqual(r.status, 0, r.err)
        let words = r.out.split(whereSeparator: { $0 == " " || $0 == "\n" })
        let array = try XCTUnwrap(words.firstIndex(of: "array").map { String(words[$0 + 2]) }, r.out)
        let merge = try XCTUnwrap(words.firstIndex(of: "merge").map { String(words[$0 + 2]) }, r.out)
        XCTAssertTrue(r.out.contains("squeue -j \(array),\(merge)"), r.out)
        try waitForJobs([array, merge], timeout: 600)
        XCTAssertEqual(try sql("SELECT COUNT(*) FROM runs WHERE status = 'completed'"), "4")
        XCTAssertEqual(try sql("SELECT COUNT(*) FROM epochs"), "8")
        let status = try lab("sweep", "status", "--db", db)
        XCTAssertTrue(status.out.contains("4 tasks: 4 completed (from \(db) and 4 shards)"), status.out)
        let again = try lab(["sweep"] + specs + ["--seeds", "1,2", "--slurm", "--db", db])
        XCTAssertTrue(again.out.contains("nothing to run"), again.out)
    }

    /// Polls `check` every 0.2 s until it holds; fails after `timeout`.
    func waitUntil(_ what: String, timeout: TimeInterval, _ check: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try check() { return }
            Thread.sleep(forTimeInterval: 0.2)
        }
        XCTFail("timed out after \(Int(timeout)) s waiting for \(what)")
        throw XCTSkip("cannot continue")
    }

    func testSlurmTaskToldToStopRequeuesAndResumesWithoutGapOrDuplicate() throws {
        if let why = slurmMissing() {
            throw XCTSkip("\(why): Slurm tests need a running cluster; .ci/slurm-up starts one")
        }
        let r = try lab("sweep", spec("long", epochs: 8, slow: true), "--seeds", "1", "--slurm", "--cpus-per-task", "1", "--db", db)
        XCTAssertEqual(r.status, 0, r.err)
        let words = r.out.split(whereSeparator: { $0 == " " || $0 == "\n" })
        let id = String(words[1].dropLast())
        let array = try XCTUnwrap(words.firstIndex(of: "array").map { String(words[$0 + 2]) }, r.out)
        let merge = try XCTUnwrap(words.firstIndex(of: "merge").map { String(words[$0 + 2]) }, r.out)
        let shard = dir.appendingPathComponent("sweeps/\(id)/shards/task-0.db").path
        try waitUntil("the first epoch in the shard", timeout: 120) {
            (Int(try command(["sqlite3", shard, "SELECT COUNT(*) FROM epochs"])) ?? 0) >= 1
        }
        // What Slurm does 120 s before the time limit (--signal=B:USR1@120), now.
        _ = try command(["scancel", "--signal=USR1", "--batch", "\(array)_0"])
        try waitUntil("the requeued task", timeout: 60) { try command(["scontrol", "show", "job", "\(array)_0"]).contains("Restarts=1") }
        XCTAssertTrue(try command(["sqlite3", shard, "SELECT status || ': ' || error FROM runs"])
            .hasPrefix("interrupted: interrupted by SIGUSR1 (Slurm: time limit near) after epoch "))
        let twice = try lab("sweep", spec("long", epochs: 8, slow: true), "--seeds", "1", "--slurm", "--db", db)
        XCTAssertEqual(twice.status, 1)
        XCTAssertTrue(twice.err.contains("Error: sweep \(id) is still queued or running as array job \(array)"), twice.err)
        // Slurm holds a requeued job back for a while; let it start now, but not within the second of the
        // kill: slurmd refuses a credential made in the same second as the revocation ("Job credential
        // revoked") and the task would end there, unresumed (seen once in CI).
        Thread.sleep(forTimeInterval: 2)
        _ = try command(["scontrol", "update", "jobid=\(array)_0", "StartTime=now"])
        try waitForJobs([array, merge], timeout: 300)
        XCTAssertEqual(try sql("SELECT COUNT(*) || ' ' || status FROM runs"), "1 completed")
        XCTAssertEqual(try sql("SELECT group_concat(epoch) FROM (SELECT epoch FROM epochs ORDER BY epoch)"), "1,2,3,4,5,6,7,8", "no gap, no duplicate")
        let log = try String(contentsOfFile: dir.appendingPathComponent("sweeps/\(id)/logs/\(array)_0.out").path, encoding: .utf8)
        XCTAssertTrue(log.contains("interrupted") && log.contains("resuming run"), log)
    }
}

extension CLITests {
    /// Two `lab sweep` commands of one plan on one machine: the second is
    /// refused while the first holds the sweep's lock, so no task starts twice.
    func testASecondSweepOfTheSamePlanIsRefusedWhileTheFirstRuns() throws {
        let s = spec("locked", epochs: 1)
        let dry = try lab("sweep", s, "--seeds", "1", "--dry-run", "--db", db)
        let planLine = try XCTUnwrap(dry.out.split(separator: "\n").first { $0.hasPrefix("plan: ") })
        let folder = URL(fileURLWithPath: String(planLine.dropFirst(6))).deletingLastPathComponent()
        let fd = open(folder.appendingPathComponent(".lock").path, O_RDWR | O_CREAT, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        XCTAssertEqual(flock(fd, LOCK_EX | LOCK_NB), 0, "the test holds the lock as a running sweep would")
        let refused = try lab("sweep", s, "--seeds", "1", "--jobs", "1", "--db", db)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.err.hasPrefix("Error: sweep \(folder.lastPathComponent) is already running on this machine"), refused.err)
        XCTAssertEqual(try sql("SELECT COUNT(*) FROM runs"), "0")
        close(fd)
        let ran = try lab("sweep", s, "--seeds", "1", "--jobs", "1", "--db", db)
        XCTAssertEqual(ran.status, 0, ran.err)
        XCTAssertEqual(try sql("SELECT COUNT(*) FROM runs WHERE status = 'completed'"), "1")
    }
}
