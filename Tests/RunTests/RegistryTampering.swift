import GRDB
@testable import Registry

extension Registry {
    /// Sets columns of a run and its heartbeat directly, as another process
    /// (or another host's lab) would have left them; lab itself changes a
    /// run only through Registry's typed writes.
    func updateRun(_ id: String, _ fields: [String: DatabaseValueConvertible?]) throws {
        try write { db in
            let assignments = fields.map { Column($0.key).set(to: $0.value) } + [Column("heartbeat_at").set(to: Registry.timestamp())]
            _ = try Run.filter(key: id).updateAll(db, assignments)
        }
    }
}
