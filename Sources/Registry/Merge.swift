import Failures
import Foundation
import GRDB

/// What merging one source registry did.
public struct MergeSummary: Sendable, Equatable {
    public var source: String
    public var added = 0            // runs new to the target
    public var replaced = 0         // runs the target had unfinished and the source completed
    public var unchanged = 0        // runs already there, identical
    public var rows = 0             // rows inserted over all tables (runs included)
    public var conflicts: [String] = []

    public var line: String {
        var parts = ["\(added) run\(added == 1 ? "" : "s") added"]
        if replaced > 0 { parts.append("\(replaced) completed over an unfinished copy") }
        parts.append("\(unchanged) already there")
        if !conflicts.isEmpty { parts.append("\(conflicts.count) conflict\(conflicts.count == 1 ? "" : "s") kept as in the target") }
        return "\(source): " + parts.joined(separator: ", ") + " (\(rows) rows)"
    }
}

extension Registry {
    /// Tables holding a run's rows, keyed by (run_id, ...) primary keys, so
    /// INSERT OR IGNORE makes a second merge a no-op. test_evaluations has a
    /// local integer id and is handled apart.
    static let runTables = ["epochs", "confusion", "class_metrics", "predictions", "checkpoints",
                            "explanations", "explanation_summaries", "randomization_checks"]

    /// Folds the registry at `source` into this one, in one transaction:
    /// experiments by id (spec hash), runs by ULID, with all their rows.
    /// A run the target already holds with other content is a conflict,
    /// reported and left as the target has it, except that a source copy
    /// that completed replaces a target copy that did not (the same run,
    /// later: a shard finished what an earlier merge saw half-done).
    /// The source file is never written: it is read from a snapshot that
    /// the ordinary opener migrates.
    public func merge(from source: String) throws -> MergeSummary {
        let snapshot = try Registry.snapshot(source)
        defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: snapshot + s) } }
        _ = try Registry(path: snapshot)       // older schemas: migrated on the copy
        var summary = MergeSummary(source: source)
        do {
            try database.writeWithoutTransaction { db in
                try db.execute(sql: "ATTACH DATABASE ? AS src", arguments: [snapshot])
                defer { try? db.execute(sql: "DETACH DATABASE src") }
                try db.inTransaction(.immediate) {
                    try mergeAttached(db, into: &summary)
                    return .commit
                }
            }
        } catch {
            throw Registry.describe(error, path: path)
        }
        return summary
    }

    /// A consistent copy of `source` (its WAL included) in a temp file;
    /// a newer schema is refused before anything is copied.
    static func snapshot(_ source: String) throws -> String {
        guard FileManager.default.fileExists(atPath: source) else { throw Failure(.registry, "\(source): no such registry") }
        try checkIsSQLite(source)
        var config = Configuration()
        config.readonly = true
        config.busyMode = .timeout(busySeconds)
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("lab-merge-\(UUID().uuidString).db").path
        do {
            let q = try DatabaseQueue(path: source, configuration: config)
            let v = try q.read { try Int.fetchOne($0, sql: "PRAGMA user_version") ?? 0 }
            if v > Schema.version {
                throw Failure(.registry,
                              "\(source) was written by a newer lab (registry schema v\(v); this lab knows up to v\(Schema.version)); "
                                  + "not merged")
            }
            try q.inDatabase { try $0.execute(sql: "VACUUM INTO ?", arguments: [tmp]) }
            try q.close()
        } catch {
            throw describe(error, path: source)
        }
        return tmp
    }

    private func mergeAttached(_ db: Database, into s: inout MergeSummary) throws {
        try db.execute(sql: "INSERT OR IGNORE INTO main.experiments \(try copied(db, "experiments"))")
        s.rows += db.changesCount
        try db.execute(sql: "DROP TABLE IF EXISTS temp.merging; CREATE TEMP TABLE merging (id TEXT PRIMARY KEY)")
        for id in try String.fetchAll(db, sql: "SELECT id FROM src.runs ORDER BY id") {
            let theirs = try Row.fetchOne(db, sql: "SELECT * FROM src.runs WHERE id = ?", arguments: [id])!
            if let ours = try Row.fetchOne(db, sql: "SELECT * FROM main.runs WHERE id = ?", arguments: [id]) {
                if ours != theirs {
                    let completed = Run.Status.completed.rawValue
                    guard ours["status"] as String != completed && theirs["status"] as String == completed else {
                        s.conflicts.append(Registry.conflict(id, ours: ours, theirs: theirs))
                        continue
                    }
                    try db.execute(sql: "DELETE FROM main.runs WHERE id = ?", arguments: [id])   // cascades to its rows
                    try insertRun(db, id)
                    s.replaced += 1
                } else {
                    // The same run row, but is every row both files hold of it the same?
                    let differing = try Registry.runTables.compactMap { try differingRows(db, table: $0, run: id) }
                    guard differing.isEmpty else {
                        s.conflicts.append("conflict: run \(id) differs in \(differing.joined(separator: "; ")); kept the target's")
                        continue
                    }
                    s.unchanged += 1
                }
            } else {
                try insertRun(db, id)
                s.added += 1
            }
            try db.execute(sql: "INSERT INTO temp.merging VALUES (?)", arguments: [id])
        }
        s.rows += s.added + s.replaced
        s.rows += try copyRunRows(db)
        try db.execute(sql: "DROP TABLE temp.merging")
    }

    private func insertRun(_ db: Database, _ id: String) throws {
        try db.execute(sql: "INSERT INTO main.runs \(try copied(db, "runs")) WHERE id = ?", arguments: [id])
    }

    /// "(columns) SELECT columns FROM src.table": a copy by column name, so
    /// that a column added by ALTER TABLE in one file and by CREATE TABLE in
    /// the other lands in the same place.
    private func copied(_ db: Database, _ table: String) throws -> String {
        let names = try db.columns(in: table, in: "main").map(\.name).joined(separator: ", ")
        return "(\(names)) SELECT \(names) FROM src.\(table)"
    }

    /// Rows of the merged runs the target lacks (both files are at the same
    /// schema version, so they have the same columns).
    private func copyRunRows(_ db: Database) throws -> Int {
        var n = 0
        for t in Registry.runTables {
            try db.execute(sql: "INSERT OR IGNORE INTO main.\(t) \(try copied(db, t)) WHERE run_id IN (SELECT id FROM temp.merging)")
            n += db.changesCount
        }
        // A look at the test split is the same look when run, time, checkpoint and trigger agree.
        try db.execute(sql: """
            INSERT INTO main.test_evaluations (run_id, evaluated_at, accuracy, macro_f1, nll, ece, checkpoint_sha256, trigger)
            SELECT run_id, evaluated_at, accuracy, macro_f1, nll, ece, checkpoint_sha256, trigger FROM src.test_evaluations s
            WHERE s.run_id IN (SELECT id FROM temp.merging) AND NOT EXISTS (
                SELECT 1 FROM main.test_evaluations m WHERE m.run_id = s.run_id AND m.evaluated_at = s.evaluated_at
                AND m.checkpoint_sha256 = s.checkpoint_sha256 AND m.trigger = s.trigger)
            ORDER BY s.id
            """)
        return n + db.changesCount
    }

    /// Rows of `run` in `table` that both files hold (the same primary key)
    /// with different content, as "epochs (1 row; epoch 2: val_accuracy 0.8
    /// here, 0.85 there)"; nil when there are none. Rows only one file holds
    /// are no conflict: a merge adds the source's to the target.
    private func differingRows(_ db: Database, table: String, run: String) throws -> String? {
        let columns = try db.columns(in: table, in: "main").map(\.name)
        let key = try db.primaryKey(table, in: "main").columns
        let joined = key.map { "s.\($0) = m.\($0)" }.joined(separator: " AND ")
        let same = columns.map { "s.\($0) IS m.\($0)" }.joined(separator: " AND ")
        let keys = try Row.fetchAll(db, sql: """
            SELECT \(key.map { "s.\($0)" }.joined(separator: ", ")) FROM src.\(table) s JOIN main.\(table) m ON \(joined)
            WHERE s.run_id = ? AND NOT (\(same)) ORDER BY \(key.map { "s.\($0)" }.joined(separator: ", "))
            """, arguments: [run])
        guard let first = keys.first else { return nil }
        let match = key.map { "\($0) = ?" }.joined(separator: " AND ")
        let args = StatementArguments(key.map { first[$0] as DatabaseValue })
        let ours = try Row.fetchOne(db, sql: "SELECT * FROM main.\(table) WHERE \(match)", arguments: args)!
        let theirs = try Row.fetchOne(db, sql: "SELECT * FROM src.\(table) WHERE \(match)", arguments: args)!
        let shownKey = key.filter { $0 != "run_id" }.map { "\($0) \((first[$0] as DatabaseValue).description)" }.joined(separator: ", ")
        return "\(table) (\(keys.count) row\(keys.count == 1 ? "" : "s"); "
            + "\(shownKey.isEmpty ? "" : shownKey + ": ")\(Registry.differences(ours, theirs)))"
    }

    /// The first columns that differ between two rows of one table.
    static func differences(_ ours: Row, _ theirs: Row) -> String {
        let differing = ours.columnNames.filter { c in ours[c] as DatabaseValue != theirs[c] as DatabaseValue }
        let shown = differing.prefix(3).map { c in
            "\(c) \((ours[c] as DatabaseValue).description) here, \((theirs[c] as DatabaseValue).description) there"
        }
        return shown.joined(separator: "; ") + (differing.count > 3 ? "; ..." : "")
    }

    /// One line naming the run and the first columns that differ.
    static func conflict(_ id: String, ours: Row, theirs: Row) -> String {
        "conflict: run \(id) differs (\(differences(ours, theirs))); kept the target's"
    }
}
