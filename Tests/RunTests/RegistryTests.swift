import Foundation
import GRDB
import XCTest
@testable import Registry

final class RegistryTests: XCTestCase {
    func error(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch { return "\(error)" }
    }

    func testSchemaIsCreatedWithWALAndForeignKeys() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let reg = try ws.registry()
        XCTAssertEqual(reg.schemaVersion, Schema.version)
        let mode = try reg.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") }
        XCTAssertEqual(mode, "wal")
        let fk = try reg.read { try Int.fetchOne($0, sql: "PRAGMA foreign_keys") }
        XCTAssertEqual(fk, 1)
        let names = try reg.read { try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name") }
        for t in ["experiments", "runs", "epochs", "confusion", "predictions", "test_evaluations", "checkpoints", "class_metrics", "run_summary", "leaderboard"] {
            XCTAssertTrue(names.contains(t), t)
        }
        // Reopening an up-to-date registry changes nothing.
        XCTAssertEqual(try Registry(path: ws.db).schemaVersion, Schema.version)
    }

    func testNewerSchemaAndNonSQLiteFilesAreRefusedUnharmed() throws {
        let ws = try Workspace(); defer { ws.remove() }
        _ = try ws.registry()
        let q = try DatabaseQueue(path: ws.db)
        try q.write { try $0.execute(sql: "PRAGMA user_version = 99") }
        let before = try Data(contentsOf: URL(fileURLWithPath: ws.db))
        XCTAssertEqual(error { _ = try Registry(path: ws.db) },
                       "\(ws.db) was written by a newer lab (registry schema v99; this lab knows up to v\(Schema.version)); update lab to use it")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: ws.db)), before)

        let text = ws.dir.appendingPathComponent("notes.txt").path
        _ = FileManager.default.createFile(atPath: text, contents: Data("hello, not a database\n".utf8))
        XCTAssertEqual(error { _ = try Registry(path: text) },
                       "\(text) is not a SQLite database (lab's registry is a SQLite file such as runs.db); pass another --db")
        XCTAssertEqual(try String(contentsOfFile: text, encoding: .utf8), "hello, not a database\n")
    }

    func testRunIDsAreTimeSortableAndPrefixesResolve() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let reg = try ws.registry()
        let a = Registry.newRunID(date: Date(timeIntervalSince1970: 1_700_000_000))
        let b = Registry.newRunID(date: Date(timeIntervalSince1970: 1_700_000_001))
        XCTAssertEqual(a.count, 26); XCTAssertLessThan(a, b)
        let exp = try reg.experiment(name: "e", parent: nil, specJSON: "{}", description: nil)
        let r1 = try reg.startRun(Run(experimentId: exp, seed: 1))
        let r2 = try reg.startRun(Run(experimentId: exp, seed: 2))
        XCTAssertEqual(try reg.resolveRun(r1), r1)
        XCTAssertEqual(try reg.resolveRun(r2.lowercased()), r2)
        XCTAssertEqual(error { _ = try reg.resolveRun("ZZZZ") }, "no run ZZZZ in \(ws.db) (`lab runs` lists them)")
        let common = String(zip(r1, r2).prefix { $0 == $1 }.map(\.0))
        XCTAssertTrue(error { _ = try reg.resolveRun(String(common.prefix(4))) }.hasPrefix("run id \(common.prefix(4)) is ambiguous"))
        XCTAssertEqual(error { _ = try reg.resolveRun("x'; drop") }, "'x'; drop' is not a run id")
    }

    func testOfTwoClaimsOnTheSameHeartbeatOnlyOneWins() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let reg = try ws.registry()
        let exp = try reg.experiment(name: "e", parent: nil, specJSON: "{}", description: nil)
        var started = Run(experimentId: exp, seed: 1)
        started.host = "a"; started.pid = 1
        let run = try reg.startRun(started)
        try reg.endRun(run, .interrupted)
        let seen = try reg.read { try String.fetchOne($0, sql: "SELECT heartbeat_at FROM runs WHERE id = ?", arguments: [run])! }
        Thread.sleep(forTimeInterval: 0.002)   // timestamps are milliseconds
        XCTAssertTrue(try reg.claimRun(run, seenHeartbeat: seen, pid: 42, host: "b"))
        XCTAssertFalse(try reg.claimRun(run, seenHeartbeat: seen, pid: 43, host: "c"), "the first claim moved the heartbeat")
        let row = try reg.read { try Row.fetchOne($0, sql: "SELECT status, pid, host FROM runs WHERE id = ?", arguments: [run])! }
        XCTAssertEqual(row["status"] as String, "running"); XCTAssertEqual(row["pid"] as Int, 42); XCTAssertEqual(row["host"] as String, "b")
    }
}
