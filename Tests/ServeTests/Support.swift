import Foundation
import XCTest
@testable import Specs
@testable import Training
@testable import Registry
@testable import Serve
#if canImport(Glibc)
import Glibc
#endif

/// A registry with two completed tiny runs (base, and abl extending it)
/// and one run still training, written the way `lab run` writes them.
final class Fixture: @unchecked Sendable {   // safe: the ids are set in init, before any server thread sees it
    let dir: URL
    var db: String { dir.appendingPathComponent("runs.db").path }
    let writer: Registry
    var base = "", abl = "", running = ""

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("lab-serve-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        setenv("LAB_CACHE", dir.appendingPathComponent("cache").path, 1)
        writer = try Registry(path: dir.appendingPathComponent("runs.db").path)
        let runner = Runner(registry: writer, reporter: .silent)
        base = try runner.run(try SpecLoader.load(spec("base", test: true)), seed: 1, options: RunOptions(threads: 1))
        let abl = dir.appendingPathComponent("abl.json").path
        _ = FileManager.default.createFile(atPath: abl, contents: Data(#"{"name": "abl", "extends": "base.json", "model": {"skip": false}}"#.utf8))
        self.abl = try runner.run(try SpecLoader.load(abl), seed: 1, options: RunOptions(threads: 1))
        running = try startRunning()
    }

    func spec(_ name: String, epochs: Int = 2, test: Bool = false) -> String {
        let path = dir.appendingPathComponent("\(name).json").path
        _ = FileManager.default.createFile(atPath: path, contents: Data("""
            {"name": "\(name)",
             "dataset": {"source": "synthetic", "image_size": 16, "synthetic": {"train": 120, "test": 36, "seed": 3}},
             "model": {"widths": [4, 8], "convs_per_block": [1, 2], "hidden": 8},
             "train": {"batch_size": 16, "max_epochs": \(epochs), "early_stopping": {"patience": 5}},
             "evaluate": {"test": \(test)}}
            """.utf8))
        return path
    }

    /// A run of 5 epochs that has finished 2, on another host (so no pid check calls it dead).
    func startRunning() throws -> String {
        let spec = try SpecLoader.load(spec("wide", epochs: 5))
        let exp = try writer.experiment(name: "wide", parent: nil, specJSON: spec.resolvedJSON, description: nil)
        var run = Run(experimentId: exp, seed: 3)
        run.host = "gpu-box-7"; run.datasetSource = "synthetic"
        let id = try writer.startRun(run)
        for _ in 0..<2 { try addEpoch(id) }
        return id
    }

    /// Records the next epoch of a running run, as the runner does when an epoch ends.
    func addEpoch(_ id: String? = nil) throws {
        let id = id ?? running
        let n = try writer.epochs(run: id).count + 1
        let acc = 0.3 + 0.05 * Double(n)
        try writer.recordEpoch(Epoch(runId: id, epoch: n, trainLoss: 1.8 - 0.1 * Double(n), trainAccuracy: acc + 0.02, valLoss: 1.9 - 0.1 * Double(n),
                                              valAccuracy: acc, valMacroF1: acc / 2, lr: 0.001, seconds: 3, imagesPerSecond: 40),
                               progress: EpochProgress(epochsRun: n, trainSeconds: 3 * Double(n),
                                                       best: .init(epoch: n, valLoss: 1.9 - 0.1 * Double(n), valAccuracy: acc, valMacroF1: acc / 2)),
                               last: Checkpoint(runId: id, kind: .last, epoch: n, isBest: true, data: [1, 2, 3]), best: nil)
    }

    func remove() { try? FileManager.default.removeItem(at: dir) }
}

/// `lab serve`'s application, in this process, on a free port.
final class LiveServer: @unchecked Sendable {   // safe: `task` is set in init and only cancelled after
    let site: Site
    let port: Int
    private var task: Task<Void, Error>?

    init(_ site: Site) async throws {
        self.site = site
        port = try Self.freePort()
        let (ready, go) = AsyncStream<Void>.makeStream()
        let app = Serve.application(site, host: "127.0.0.1", port: port, onRunning: { go.yield(); go.finish() })
        task = Task { try await app.runService() }
        for await _ in ready { break }
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    func stop() { task?.cancel() }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw XCTSkip("no free port") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

struct HTTPReply {
    var status: Int
    var headers: [String: String]
    var body: Data
    var text: String { String(decoding: body, as: UTF8.self) }
}

/// A GET over a raw socket, sending the path byte for byte: URL libraries
/// would normalize the "../" a traversal test must send.
func rawRequest(port: Int, _ path: String, method: String = "GET") throws -> HTTPReply {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = UInt16(port).bigEndian
    let connected = withUnsafePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
    guard connected else { throw XCTSkip("cannot connect to 127.0.0.1:\(port)") }
    let request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    _ = request.withCString { send(fd, $0, strlen($0), 0) }
    var data = Data(), buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = recv(fd, &buf, buf.count, 0)
        if n <= 0 { break }
        data.append(contentsOf: buf[0..<n])
    }
    guard let split = data.range(of: Data("\r\n\r\n".utf8)) else { throw NSError(domain: "http", code: 0) }
    let head = String(decoding: data[..<split.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
    let status = Int(head[0].split(separator: " ")[1]) ?? 0
    var headers = [String: String]()
    for line in head.dropFirst() {
        if let c = line.firstIndex(of: ":") { headers[line[..<c].lowercased()] = line[line.index(after: c)...].trimmingCharacters(in: .whitespaces) }
    }
    return HTTPReply(status: status, headers: headers, body: Data(data[split.upperBound...]))
}
