import Failures
import Foundation
import GRDB

extension Registry {
    /// Opens an existing registry for reading only (`lab serve`): a
    /// DatabasePool, whose WAL readers never block a `lab run` writing the
    /// same file, with no migration and no write ever attempted.
    public convenience init(readOnly path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw Failure(.registry, "\(path) does not exist (`lab run` creates it; pass another --db)")
        }
        try Registry.checkIsSQLite(path)
        var config = Configuration()
        config.readonly = true
        config.label = "lab.registry.readonly"
        let pool: DatabasePool
        do { pool = try DatabasePool(path: path, configuration: config) } catch { throw Registry.describe(error, path: path) }
        self.init(path: path, database: pool)
        try checkReadableVersion()
    }

    /// Read-only means no migration: an older file is upgraded by any
    /// writing command, a newer one needs a newer lab.
    func checkReadableVersion() throws {
        let v = try read { try Int.fetchOne($0, sql: "PRAGMA user_version") ?? 0 }
        if v > Schema.version {
            throw Failure(.registry,
                          "\(path) was written by a newer lab (registry schema v\(v); this lab knows up to v\(Schema.version)); update "
                              + "lab to use it")
        }
        if v == 0 { throw Failure(.registry, "\(path) is a SQLite file but not a lab registry (no schema version)") }
        if v < Schema.version {
            throw Failure(.registry,
                          "\(path) has registry schema v\(v), older than this lab's v\(Schema.version); run `lab runs --db \(path)` "
                              + "once to upgrade it")
        }
    }
}
