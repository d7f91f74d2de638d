import Foundation
import GRDB
import XCTest
@testable import Specs
@testable import Training
@testable import Registry

/// `lab merge` on real registries holding real tiny runs.
final class MergeTests: XCTestCase {
    override func setUp() { Interrupt.reset() }

    func path(_ ws: Workspace, _ name: String) -> String { ws.dir.appendingPathComponent(name).path }

    /// Rows per table, every table of the schema.
    func counts(_ reg: Registry) throws -> [String: Int] {
        try reg.read { db in
            let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
            return try Dictionary(uniqueKeysWithValues: tables.map { ($0, try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \($0)")!) })
        }
    }

    /// A registry with one completed tiny run (test split evaluated) per seed.
    func registry(_ ws: Workspace, _ name: String, seeds: [Int]) throws -> (String, [String]) {
        let reg = try Registry(path: path(ws, name))
        let spec = try SpecLoader.load(ws.spec(epochs: 2, test: true))
        let ids = try seeds.map { try Runner(registry: reg, reporter: .silent).run(spec, seed: $0, options: RunOptions(threads: 1)) }
        return (reg.path, ids)
    }

    func copy(_ from: String, _ to: String, _ edit: String? = nil) throws -> String {
        try FileManager.default.copyItem(atPath: from, toPath: to)
        if let edit { try DatabaseQueue(path: to).write { try $0.execute(sql: edit) } }
        return to
    }

    func testMergeAddsEveryRowOnceAndSecondMergeChangesNothing() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let (a, runsA) = try registry(ws, "a.db", seeds: [1])
        let (b, _) = try registry(ws, "b.db", seeds: [2, 3])
        let target = try Registry(path: path(ws, "runs.db"))
        let first = try target.merge(from: a)
        XCTAssertEqual(first.added, 1)
        _ = try target.merge(from: b)
        let ca = try counts(Registry(path: a)), cb = try counts(Registry(path: b)), merged = try counts(target)
        for (table, n) in merged where table != "experiments" {
            XCTAssertEqual(n, ca[table]! + cb[table]!, table)
        }
        XCTAssertEqual(merged["experiments"], 1, "one spec: one experiment")
        XCTAssertEqual(merged["runs"], 3)
        XCTAssertGreaterThan(merged["predictions"]!, 0); XCTAssertEqual(merged["test_evaluations"], 3)
        let again = try target.merge(from: a)
        XCTAssertEqual(again, MergeSummary(source: a, added: 0, replaced: 0, unchanged: 1, rows: 0, conflicts: []))
        _ = try target.merge(from: b)
        XCTAssertEqual(try counts(target), merged, "merging the same sources twice changes nothing")
        XCTAssertEqual(try target.read { try Row.fetchOne($0, sql: "SELECT * FROM runs WHERE id = ?", arguments: [runsA[0]]) },
                       try Registry(path: a).read { try Row.fetchOne($0, sql: "SELECT * FROM runs WHERE id = ?", arguments: [runsA[0]]) })
    }

    func testConflictingRunIsReportedAndNotApplied() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let (a, runs) = try registry(ws, "a.db", seeds: [1])
        let shard = try copy(a, path(ws, "shard.db"), "UPDATE runs SET status = 'failed', epochs_run = 1, error = 'boom'; DELETE FROM epochs WHERE epoch = 2")
        let target = try Registry(path: path(ws, "runs.db"))
        _ = try target.merge(from: a)
        let before = try counts(target)
        let s = try target.merge(from: shard)
        XCTAssertEqual(s.conflicts.count, 1)
        XCTAssertTrue(s.conflicts[0].hasPrefix("conflict: run \(runs[0]) differs (status \"completed\" here, \"failed\" there"), s.conflicts[0])
        XCTAssertEqual(try counts(target), before)
        XCTAssertEqual(try target.read { try String.fetchOne($0, sql: "SELECT status FROM runs") }, "completed")
    }

    /// The same run with one epoch's val_accuracy changed: the run rows agree,
    /// the epochs do not. Reported by run and table, the target keeps its rows.
    func testARunWhoseRowsDifferIsAConflictByRunAndTable() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let (a, runs) = try registry(ws, "a.db", seeds: [1])
        let shard = try copy(a, path(ws, "shard.db"), "UPDATE epochs SET val_accuracy = 0.125 WHERE epoch = 2")
        let target = try Registry(path: path(ws, "runs.db"))
        _ = try target.merge(from: a)
        func epochs() throws -> [Row] { try target.read { try Row.fetchAll($0, sql: "SELECT * FROM epochs ORDER BY run_id, epoch") } }
        let (before, rows) = (try counts(target), try epochs())
        let kept = try XCTUnwrap(rows.last?["val_accuracy"] as Double?)
        let s = try target.merge(from: shard)
        XCTAssertEqual(s.conflicts, ["conflict: run \(runs[0]) differs in epochs (1 row; epoch 2: val_accuracy \(kept) here, 0.125 there); "
                                     + "kept the target's"])
        XCTAssertEqual(s.unchanged, 0)
        XCTAssertEqual(s.line, "\(shard): 0 runs added, 0 already there, 1 conflict kept as in the target (0 rows)")
        XCTAssertEqual(try counts(target), before)
        XCTAssertEqual(try epochs(), rows, "the target's rows stay as they were")
        XCTAssertEqual(try target.merge(from: a).unchanged, 1, "the unchanged copy still merges as before")
    }

    func testCompletedCopyReplacesAnUnfinishedOne() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let (a, _) = try registry(ws, "a.db", seeds: [1])
        let half = try copy(a, path(ws, "half.db"), """
            UPDATE runs SET status = 'interrupted', epochs_run = 1, finished_at = NULL; DELETE FROM epochs WHERE epoch = 2;
            DELETE FROM predictions; DELETE FROM test_evaluations
            """)
        let target = try Registry(path: path(ws, "runs.db"))
        _ = try target.merge(from: half)
        let s = try target.merge(from: a)
        XCTAssertEqual(s.replaced, 1); XCTAssertEqual(s.conflicts, [])
        XCTAssertEqual(try counts(target), try counts(Registry(path: a)))
        // The other way round the completed copy stays.
        XCTAssertEqual(try target.merge(from: half).conflicts.count, 1)
        XCTAssertEqual(try target.read { try String.fetchOne($0, sql: "SELECT status FROM runs") }, "completed")
    }

    func testNewerSchemaIsRefusedUntouchedAndOlderIsReadThroughMigrations() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let newer = path(ws, "newer.db")
        try DatabaseQueue(path: newer).write { try $0.execute(sql: "CREATE TABLE t (x); PRAGMA user_version = 99") }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: newer))
        let target = try Registry(path: path(ws, "runs.db"))
        XCTAssertThrowsError(try target.merge(from: newer)) {
            XCTAssertEqual("\($0)", "\(newer) was written by a newer lab (registry schema v99; this lab knows up to v\(Schema.version)); not merged")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: newer)), bytes)
        XCTAssertThrowsError(try target.merge(from: path(ws, "missing.db"))) { XCTAssertTrue("\($0)".hasSuffix("missing.db: no such registry")) }

        // A v1 registry (before class_counts) with one run.
        let old = path(ws, "old.db")
        try DatabaseQueue(path: old).write { db in
            try db.execute(sql: Schema.migrations[0] + "; PRAGMA user_version = 1")
            try db.execute(sql: """
                INSERT INTO experiments VALUES ('e1', 'old', NULL, '{}', 'e1ff', NULL, '2025-01-01T00:00:00.000Z');
                INSERT INTO runs (id, experiment_id, status, seed, started_at, heartbeat_at, epochs_run)
                VALUES ('01OLD', 'e1', 'completed', 1, '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z', 0)
                """)
        }
        let s = try target.merge(from: old)
        XCTAssertEqual(s.added, 1)
        XCTAssertEqual(try DatabaseQueue(path: old).read { try Int.fetchOne($0, sql: "PRAGMA user_version") }, 1, "the source stays as it was")
        let row = try XCTUnwrap(try target.read { try Row.fetchOne($0, sql: "SELECT class_counts FROM runs WHERE id = '01OLD'") })
        XCTAssertNil(row["class_counts"] as String?)
    }
}
