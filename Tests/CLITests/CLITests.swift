import Foundation
import XCTest

/// The `lab` executable as a user runs it: exit codes, one-line errors,
/// concurrent writers, Ctrl-C and kill -9.
final class CLITests: XCTestCase {
    var dir: URL!
    var db: String { dir.appendingPathComponent("runs.db").path }

    /// .build/<config>/lab, next to this test bundle.
    static let lab: URL = {
        var url = Bundle(for: CLITests.self).bundleURL
        while url.pathExtension == "xctest" || url.lastPathComponent == "Contents" { url.deleteLastPathComponent() }
        return url.appendingPathComponent("lab")
    }()

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("lab-cli-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: Self.lab.path), "lab not built at \(Self.lab.path)")
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    struct Result { var status: Int32; var out: String; var err: String }

    func start(_ args: [String]) throws -> (Process, Pipe, Pipe) {
        let p = Process()
        p.executableURL = Self.lab
        p.arguments = args
        p.currentDirectoryURL = dir
        var env = ProcessInfo.processInfo.environment
        env["LAB_CACHE"] = dir.appendingPathComponent("cache").path
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        return (p, out, err)
    }

    @discardableResult
    func lab(_ args: String...) throws -> Result { try lab(args) }

    func lab(_ args: [String]) throws -> Result {
        let (p, out, err) = try start(args)
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, out: String(decoding: o, as: UTF8.self), err: String(decoding: e, as: UTF8.self))
    }

    /// A tiny model, or (`slow`) the baseline model at 32x32, slow enough to be stopped mid-run.
    func spec(_ name: String, epochs: Int = 3, slow: Bool = false) -> String {
        let path = dir.appendingPathComponent("\(name).json").path
        let model = slow ? "{}" : #"{"widths": [4, 8], "convs_per_block": [1, 2], "hidden": 8}"#
        _ = FileManager.default.createFile(atPath: path, contents: Data("""
            {"name": "\(name)",
             "dataset": {"source": "synthetic", "image_size": \(slow ? 32 : 16), "synthetic": {"train": 120, "test": 36, "seed": 3}},
             "model": \(model),
             "train": {"batch_size": 8, "max_epochs": \(epochs), "early_stopping": {"patience": 50}}}
            """.utf8))
        return path
    }

    func sql(_ query: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["sqlite3", db, query]
        let out = Pipe(); p.standardOutput = out
        try p.run()
        let d = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testHelpListsTheCommands() throws {
        let r = try lab("--help")
        XCTAssertEqual(r.status, 0)
        for c in ["run", "resume", "test", "runs", "show", "dataset", "bench"] { XCTAssertTrue(r.out.contains("\n  \(c) "), c) }
        let resume = try lab("resume", "--help")
        XCTAssertEqual(resume.out, """
            OVERVIEW: Continue an interrupted or failed run from its last checkpoint.

            USAGE: lab resume <run> [--data <data>] [--db <db>] [--threads <threads>]

            ARGUMENTS:
              <run>                   Run id (any unique prefix).

            OPTIONS:
              --data <data>           RAF-DB folder, if it moved since the run started.
              --db <db>               The run registry (SQLite). (default: runs.db)
              --threads <threads>     BLAS and worker threads (default: all cores).
              -h, --help              Show help information.


            """)
    }

    func testUserErrorsAreOneLineAndNonZero() throws {
        let missing = try lab("run", "nope.json", "--db", db)
        XCTAssertEqual(missing.status, 1)
        XCTAssertEqual(missing.err, "Error: \(dir.appendingPathComponent("nope.json").path): no such spec file\n")

        let bad = dir.appendingPathComponent("bad.json").path
        _ = FileManager.default.createFile(atPath: bad, contents: Data(#"{"train": {"lr": "fast"}}"#.utf8))
        let typed = try lab("run", bad, "--db", db)
        XCTAssertEqual(typed.status, 1)
        XCTAssertEqual(typed.err, "Error: \(bad): train.lr: expected a number in 1e-07...1.0, got \"fast\"\n")

        let unknown = try lab("show", "01ABC", "--db", db)
        XCTAssertEqual(unknown.status, 1)
        XCTAssertEqual(unknown.err, "Error: no run 01ABC in \(db) (`lab runs` lists them)\n")

        let notDB = dir.appendingPathComponent("notes.txt").path
        _ = FileManager.default.createFile(atPath: notDB, contents: Data("my notes\n".utf8))
        let r = try lab("runs", "--db", notDB)
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.err, "Error: \(notDB) is not a SQLite database (lab's registry is a SQLite file such as runs.db); pass another --db\n")
        XCTAssertEqual(try String(contentsOfFile: notDB, encoding: .utf8), "my notes\n")

        let cls = try lab("explain", "01ABC", "--class", "happy", "--db", db)
        XCTAssertEqual(cls.status, 64)
        XCTAssertTrue(cls.err.hasPrefix("Error: --class must be predicted, true or one of happiness, surprise, sadness, anger, disgust, fear\n"), cls.err)

        let threads = try lab("bench", "--threads", "0")
        XCTAssertEqual(threads.status, 64)
        XCTAssertTrue(threads.err.hasPrefix("Error: --threads must be at least 1\n"))

        let badSpec = dir.appendingPathComponent("bad_model.json").path
        _ = FileManager.default.createFile(atPath: badSpec, contents: Data(#"{"model": {"attention": "eca"}}"#.utf8))
        let spec = try lab("bench", "--spec", badSpec)
        XCTAssertEqual(spec.status, 1)
        XCTAssertEqual(spec.err, "Error: \(badSpec): model.attention: expected one of none, se, cbam, got \"eca\"\n")
    }

    /// `lab bench --spec` times the spec's model at its image size, and says which.
    func testBenchTimesASpecsModel() throws {
        let path = dir.appendingPathComponent("tiny_cbam.json").path
        _ = FileManager.default.createFile(atPath: path, contents: Data("""
            {"name": "tiny_cbam", "dataset": {"image_size": 16},
             "model": {"widths": [8, 16], "convs_per_block": [1, 2], "hidden": 0, "attention": "cbam", "conv": "separable", "shortcut": "projection"}}
            """.utf8))
        let r = try lab("bench", "--spec", path, "--batch", "4", "--steps", "1", "--threads", "1")
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.hasPrefix("lab bench — tiny_cbam model ("), r.out)
        XCTAssertTrue(r.out.contains("GFLOP forward per 16x16 image)"), r.out)
        XCTAssertTrue(r.out.contains("Grad-CAM and Grad-CAM++ at block2, batch 4"), r.out)
        for layer in ["block1.cbam", "block2.shortcut", "block2.conv2"] { XCTAssertTrue(r.out.contains("\n  \(layer) "), layer) }
    }

    /// Choices are enums: the help lists their cases and a wrong value is refused with them.
    func testChoiceOptionsListTheirValues() throws {
        let help = try lab("explain", "--help").out.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        XCTAssertTrue(help.contains("--method <method> Which class activation maps. (values: gradcam, gradcam++, both; default: both)"), help)
        XCTAssertTrue(help.contains("--split <split> The split whose images are explained. (values: val, test; default: val)"), help)
        let method = try lab("explain", "01ABC", "--method", "cam")
        XCTAssertEqual(method.status, 64)
        XCTAssertTrue(method.err.hasPrefix("Error: The value 'cam' is invalid for '--method <method>'. Please provide one of 'gradcam', 'gradcam++' or 'both'.\n"), method.err)
        let split = try lab("compare", "--split", "train")
        XCTAssertTrue(split.err.hasPrefix("Error: The value 'train' is invalid for '--split <split>'. Please provide one of 'val' and 'test'.\n"), split.err)
        let source = try lab("run", "x.json", "--dataset", "imagenet")
        XCTAssertEqual(source.status, 64)
        XCTAssertTrue(source.err.hasPrefix("Error: The value 'imagenet' is invalid for '--dataset <dataset>'. Please provide one of 'rafdb' and 'synthetic'.\n"), source.err)
        let seeds = try lab("sweep", "x.json", "--seeds", "1,-2")
        XCTAssertEqual(seeds.status, 64)
        XCTAssertTrue(seeds.err.hasPrefix("Error: The value '1,-2' is invalid for '--seeds <seeds>': --seeds must be comma-separated non-negative integers, e.g. 1,2,3\n"), seeds.err)
    }

    func testSetOverridesASpecKeyAndNamesItselfInErrors() throws {
        let s = spec("tiny", epochs: 3)
        let malformed = try lab("run", s, "--set", "foo", "--db", db)
        XCTAssertEqual(malformed.status, 64)
        XCTAssertTrue(malformed.err.hasPrefix("Error: --set takes KEY=VALUE with a dotted spec key, e.g. --set train.max_epochs=5, not 'foo'\n"), malformed.err)
        let typo = try lab("run", s, "--set", "model.skp=false", "--db", db)
        XCTAssertEqual(typo.status, 1)
        XCTAssertEqual(typo.err, "Error: --set model.skp: unknown key (did you mean model.skip?); valid here: activation, attention, attention_reduction, batch_norm, conv, convs_per_block, dropout, hidden, kernel, pool, shortcut, skip, widths\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: db), "nothing starts before every spec checks out")

        let r = try lab("run", s, "--set", "train.max_epochs=1", "--set", "model.skip=false", "--db", db, "--threads", "1")
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(try sql("SELECT COUNT(*) FROM epochs"), "1")
        XCTAssertEqual(try sql("SELECT json_extract(spec_json, '$.train.max_epochs') || ' ' || json_extract(spec_json, '$.model.skip') FROM experiments"), "1 0")
    }

    func testFourConcurrentRunsAllLand() throws {
        // Generate the data once so the four processes race on the registry, not the cache.
        XCTAssertEqual(try lab("run", spec("warm", epochs: 1), "--db", db, "--threads", "1").status, 0)
        let procs = try (0..<4).map { i in try start(["run", spec("c\(i)"), "--db", db, "--threads", "1", "--seeds", "\(i + 1)"]) }
        for (p, out, err) in procs {
            _ = out.fileHandleForReading.readDataToEndOfFile()
            let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, e)
            XCTAssertFalse(e.lowercased().contains("locked"), e)
        }
        XCTAssertEqual(try sql("SELECT COUNT(*) FROM runs WHERE status = 'completed'"), "5")
        XCTAssertEqual(try sql("SELECT COUNT(*) FROM epochs"), "13")
        XCTAssertEqual(try sql("SELECT COUNT(DISTINCT run_id) FROM checkpoints WHERE kind = 'best'"), "5")
    }

    /// Waits until the run has recorded `epochs` epochs; returns its id.
    func waitForEpochs(_ epochs: Int, timeout: TimeInterval = 120) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if FileManager.default.fileExists(atPath: db),
               let id = try? sql("SELECT run_id FROM epochs GROUP BY run_id HAVING COUNT(*) >= \(epochs) LIMIT 1"), !id.isEmpty {
                return id
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw NSError(domain: "timeout", code: 1)
    }

    func testSIGINTMarksInterruptedAndKill9Resumes() throws {
        let s = spec("long", epochs: 6, slow: true)
        XCTAssertEqual(try lab("run", s, "--db", db, "--threads", "1", "--seeds", "9").status, 0)
        let reference = try sql("SELECT group_concat(printf('%.6f %.6f', train_loss, val_loss), ';') FROM (SELECT * FROM epochs ORDER BY epoch)")
        try FileManager.default.removeItem(atPath: db)

        // Ctrl-C.
        var (p, _, err) = try start(["run", s, "--db", db, "--threads", "1", "--seeds", "9"])
        var id = try waitForEpochs(1)
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 130)
        let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(e.contains("interrupted; continue it with: lab resume \(id)"), e)
        XCTAssertEqual(try sql("SELECT status FROM runs WHERE id = '\(id)'"), "interrupted")
        XCTAssertEqual(try sql("SELECT COUNT(*) FROM checkpoints WHERE run_id = '\(id)' AND kind = 'last'"), "1")
        XCTAssertEqual(try lab("resume", String(id.prefix(12)), "--db", db, "--threads", "1").status, 0)
        XCTAssertEqual(try sql("SELECT group_concat(printf('%.6f %.6f', train_loss, val_loss), ';') FROM (SELECT * FROM epochs WHERE run_id = '\(id)' ORDER BY epoch)"), reference)

        // kill -9 mid-epoch: the row stays 'running' and run_summary (SQL sees no processes) waits for a stale
        // heartbeat, but on this host the pid is gone, so `lab runs` says interrupted and `lab resume` goes at once.
        try FileManager.default.removeItem(atPath: db)
        (p, _, err) = try start(["run", s, "--db", db, "--threads", "1", "--seeds", "9"])
        id = try waitForEpochs(2)
        Thread.sleep(forTimeInterval: 0.3)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertEqual(try sql("SELECT status FROM runs WHERE id = '\(id)'"), "running")
        XCTAssertEqual(try sql("SELECT status FROM run_summary WHERE run_id = '\(id)'"), "running")
        XCTAssertTrue(try lab("runs", "--db", db).out.contains("interrupted"))
        let resumed = try lab("resume", id, "--db", db, "--threads", "1")
        XCTAssertEqual(resumed.status, 0, resumed.err)
        XCTAssertEqual(try sql("SELECT status FROM runs WHERE id = '\(id)'"), "completed")
        XCTAssertEqual(try sql("SELECT group_concat(printf('%.6f %.6f', train_loss, val_loss), ';') FROM (SELECT * FROM epochs WHERE run_id = '\(id)' ORDER BY epoch)"), reference)
    }
}

extension CLITests {
    /// The quickstart's shape on a tiny spec: train, explain, write the report,
    /// and end by pointing at each thing it made.
    func testARunEndsWithWhereToLookAndWhatItWrote() throws {
        let path = dir.appendingPathComponent("demo.json").path
        _ = FileManager.default.createFile(atPath: path, contents: Data("""
            {"name": "demo",
             "dataset": {"source": "synthetic", "image_size": 16, "synthetic": {"train": 120, "test": 36, "seed": 3}},
             "model": {"widths": [4, 8], "convs_per_block": [1, 2], "hidden": 8},
             "train": {"batch_size": 8, "max_epochs": 2, "schedule": "cosine", "warmup_epochs": 1},
             "explain": {"enabled": true, "images": 4}, "report": {"markdown": true}}
            """.utf8))
        let r = try lab("run", path, "--db", db, "--threads", "1")
        XCTAssertEqual(r.status, 0, r.err)
        let tail = r.out.components(separatedBy: "where to look:").last ?? ""
        let report = dir.appendingPathComponent("reports/report.md").path
        XCTAssertTrue(tail.contains("report        \(report)"), tail)
        XCTAssertTrue(FileManager.default.fileExists(atPath: report))
        let sheet = try XCTUnwrap(tail.split(separator: "\n").first { $0.contains("contact_sheet.jpg") })
        let sheetPath = try XCTUnwrap(sheet.split(separator: " ").first { $0.hasSuffix("contact_sheet.jpg") })
        XCTAssertTrue(FileManager.default.fileExists(atPath: String(sheetPath)), String(sheetPath))
        let query = try XCTUnwrap(tail.split(separator: "\n").first { $0.contains("sqlite3") })
        XCTAssertTrue(query.contains("from run_summary"))
        // The registry line works as printed: one completed run.
        XCTAssertEqual(try sql("select status from run_summary"), "completed")
        // The schedule is recorded: the last epoch's rate is the cosine's end, zero.
        XCTAssertEqual(try sql("select lr from epochs order by epoch desc limit 1"), "0.0")
    }
}
