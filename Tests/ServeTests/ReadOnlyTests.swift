import Foundation
import GRDB
import XCTest
@testable import Registry
@testable import Serve

/// The read-only opener and `lab serve`'s one-line refusals.
final class ReadOnlyTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("lab-serve-ro-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func message(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch { return "\(error)" }
    }

    func testMissingNewerAndOlderRegistriesAreRefusedWithoutCreatingOrChangingFiles() throws {
        let db = dir.appendingPathComponent("runs.db").path
        XCTAssertEqual(message { _ = try Registry(readOnly: db) }, "\(db) does not exist (`lab run` creates it; pass another --db)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: db), "reading never creates a registry")
        _ = try Registry(path: db)
        let q = try DatabaseQueue(path: db)
        try q.write { try $0.execute(sql: "PRAGMA user_version = 99") }
        XCTAssertTrue(message { _ = try Registry(readOnly: db) }.contains("written by a newer lab (registry schema v99"))
        try q.write { try $0.execute(sql: "PRAGMA user_version = 2") }
        XCTAssertEqual(message { _ = try Registry(readOnly: db) },
                       "\(db) has registry schema v2, older than this lab's v\(Schema.version); run `lab runs --db \(db)` once to upgrade it")
        XCTAssertEqual(try q.read { try Int.fetchOne($0, sql: "PRAGMA user_version") }, 2, "no migration when reading")
    }

    func testReadOnlyRegistryCannotWriteAndSeesANewCommitWhileAWriterIsOpen() throws {
        let db = dir.appendingPathComponent("runs.db").path
        let writer = try Registry(path: db)
        let reader = try Registry(readOnly: db)
        XCTAssertThrowsError(try reader.experiment(name: "x", parent: nil, specJSON: "{}", description: nil))
        let exp = try writer.experiment(name: "x", parent: nil, specJSON: "{}", description: nil)
        let id = try writer.startRun(Run(experimentId: exp, seed: 1))
        XCTAssertEqual(try reader.run(id)?.status, .running)
    }

    // MARK: the command

    static let lab: URL = {
        var url = Bundle(for: ReadOnlyTests.self).bundleURL
        while url.pathExtension == "xctest" || url.lastPathComponent == "Contents" { url.deleteLastPathComponent() }
        return url.appendingPathComponent("lab")
    }()

    func testLabServeOnAMissingRegistryIsOneLineAndExitCode1() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.lab.path) else { throw XCTSkip("lab not built at \(Self.lab.path)") }
        let p = Process()
        p.executableURL = Self.lab
        p.arguments = ["serve", "--db", dir.appendingPathComponent("nope.db").path, "--port", "1"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 1)
        XCTAssertEqual(text, "Error: \(dir.appendingPathComponent("nope.db").path) does not exist (`lab run` creates it; pass another --db)\n")
    }

    func testLabServeWarnsWhenBoundBeyondThisMachine() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.lab.path) else { throw XCTSkip("lab not built at \(Self.lab.path)") }
        let db = dir.appendingPathComponent("runs.db").path
        _ = try Registry(path: db)
        let port = try LiveServer.freePort()
        let p = Process()
        p.executableURL = Self.lab
        p.arguments = ["serve", "--db", db, "--host", "0.0.0.0", "--port", "\(port)"]
        let err = Pipe()
        p.standardError = err
        try p.run()
        defer { if p.isRunning { p.terminate() }; p.waitUntilExit() }
        var text = ""
        let deadline = Date().addingTimeInterval(30)
        while !text.contains("lab serve: http://"), Date() < deadline {
            let chunk = err.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        XCTAssertTrue(text.hasPrefix("warning: bound to 0.0.0.0, not 127.0.0.1: anyone who can reach this machine can read"), text)
        XCTAssertTrue(text.contains("lab serve: http://0.0.0.0:\(port)/"), text)
        XCTAssertEqual(try rawRequest(port: port, "/").status, 200)
    }
}
