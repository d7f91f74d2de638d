import Failures
import Foundation
import GRDB

/// runs.db: every experiment, run, epoch, evaluation and checkpoint.
/// WAL mode, foreign keys on, a busy timeout, and short write transactions,
/// so several `lab run` processes can share one file.
public final class Registry: Sendable {
    public let path: String
    /// A DatabaseQueue for writers; a read-only DatabasePool for `lab serve`.
    let database: any DatabaseWriter

    /// Seconds a writer waits for another process's lock before giving up.
    public static let busySeconds: TimeInterval = 60

    public init(path: String) throws {
        self.path = path
        try Registry.checkIsSQLite(path)
        var config = Configuration()
        config.busyMode = .timeout(Registry.busySeconds)
        config.foreignKeysEnabled = true
        config.journalMode = .wal
        config.label = "lab.registry"
        do {
            database = try DatabaseQueue(path: path, configuration: config)
        } catch {
            throw Registry.describe(error, path: path)
        }
        try migrate()
    }

    init(path: String, database: any DatabaseWriter) {
        self.path = path
        self.database = database
    }

    /// A clear line for an SQLite failure instead of GRDB's full dump.
    static func describe(_ error: Error, path: String) -> Failure {
        if let e = error as? Failure, e.kind == .registry { return e }
        if let e = error as? UnknownValue ?? UnknownValue(decodingError: error) {
            return Failure(.registry,
                           "\(path) holds a \(e.what) '\(e.value)' that this lab does not know (it knows "
                               + "\(e.known.joined(separator: ", "))); written by a newer lab?")
        }
        if let e = error as? DatabaseError {
            switch e.resultCode {
            case .SQLITE_BUSY, .SQLITE_LOCKED:
                return Failure(.registry, "\(path) is locked by another process (waited \(Int(busySeconds)) s)")
            case .SQLITE_NOTADB:
                return Failure(.registry, "\(path) is not a SQLite database")
            case .SQLITE_CANTOPEN:
                return Failure(.registry, "\(path) cannot be opened (check the folder exists and is writable)")
            case .SQLITE_READONLY:
                return Failure(.registry, "\(path) is read-only")
            default:
                return Failure(.registry, "\(path): \(e.message ?? "\(e.resultCode)")")
            }
        }
        return Failure(.registry, "\(path): \(error)")
    }

    static func checkIsSQLite(_ path: String) throws {
        guard let h = FileHandle(forReadingAtPath: path) else { return }   // new file
        defer { try? h.close() }
        let head = (try? h.read(upToCount: 16)) ?? Data()
        if head.isEmpty { return }
        if head != Data("SQLite format 3\0".utf8) {
            throw Failure(.registry,
                          "\(path) is not a SQLite database (lab's registry is a SQLite file such as runs.db); pass another --db")
        }
    }

    /// Forward-only migrations under PRAGMA user_version, inside one
    /// IMMEDIATE transaction, so processes opening a new file at once
    /// serialize instead of racing to create tables.
    func migrate() throws {
        try write { db in
            let v = try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0
            if v > Schema.version {
                throw Failure(.registry,
                              "\(self.path) was written by a newer lab (registry schema v\(v); this lab knows up to "
                                  + "v\(Schema.version)); update lab to use it")
            }
            for i in v..<Schema.version {
                try db.execute(sql: Schema.migrations[i])
                try db.execute(sql: "PRAGMA user_version = \(i + 1)")
            }
        }
    }

    /// An IMMEDIATE write transaction; SQLite failures become one line.
    func write<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            var result: T?
            try database.writeWithoutTransaction { db in
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
            }
            return result!
        } catch {
            throw Registry.describe(error, path: path)
        }
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        do { return try database.read(body) } catch { throw Registry.describe(error, path: path) }
    }

    public var schemaVersion: Int { (try? read { try Int.fetchOne($0, sql: "PRAGMA user_version") ?? 0 }) ?? 0 }

    // MARK: ids and time

    /// "2026-11-24T22:30:19.123Z", the format SQLite's strftime('%Y-%m-%dT%H:%M:%fZ') writes.
    public static func timestamp(_ date: Date = Date()) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: date)
    }

    /// A ULID: 48-bit millisecond time then 80 random bits, Crockford base32.
    /// Time-sortable, and unique across machines without coordination.
    public static func newRunID(date: Date = Date()) -> String {
        let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
        let ms = UInt64(date.timeIntervalSince1970 * 1000)
        var chars = [Character]()
        for i in stride(from: 9, through: 0, by: -1) { chars.append(alphabet[Int((ms >> (UInt64(i) * 5)) & 31)]) }
        var g = SystemRandomNumberGenerator()
        for _ in 0..<16 { chars.append(alphabet[Int(g.next() & 31)]) }
        return String(chars)
    }

    /// The run whose id starts with `prefix` (case-insensitive), as git does with commits.
    public func resolveRun(_ prefix: String) throws -> String {
        let p = prefix.uppercased()
        guard !p.isEmpty, p.allSatisfy({ $0.isLetter || $0.isNumber }) else {
            throw Failure(.registry, "'\(prefix)' is not a run id")
        }
        let ids = try read {
            try String.fetchAll($0, Run.select(Run.Columns.id).filter(Run.Columns.id.like(p + "%")).order(Run.Columns.id).limit(6))
        }
        if ids.count == 1 { return ids[0] }
        if ids.isEmpty { throw Failure(.registry, "no run \(prefix) in \(path) (`lab runs` lists them)") }
        throw Failure(.registry,
                      "run id \(prefix) is ambiguous in \(path): \(ids.prefix(5).joined(separator: ", "))\(ids.count > 5 ? ", ..." : "")")
    }
}
