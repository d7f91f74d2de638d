import Faces
import Foundation
import Synchronization
import XCTest
@testable import Analysis
@testable import Sweeps
@testable import Training
@testable import Registry
@testable import Serve

final class ServeTests: XCTestCase {
    /// Training the two tiny runs takes seconds: every test shares them.
    nonisolated(unsafe) static var shared: Fixture?   // safe: XCTest runs one test of this class at a time
    var fx: Fixture!
    var server: LiveServer!
    var scratch: URL!

    override func setUp() async throws {
        if Self.shared == nil { Self.shared = try Fixture() }
        fx = Self.shared!
        try fx.writer.heartbeat(fx.running)   // run_summary calls a run silent for 2 minutes dead
        server = try await LiveServer(Site(registry: try Registry(readOnly: fx.db)))
        scratch = fx.dir.appendingPathComponent("scratch-\(name.filter(\.isLetter).suffix(24))")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDown() async throws { server?.stop() }

    override class func tearDown() { shared?.remove(); shared = nil }

    func get(_ path: String, method: String = "GET") throws -> HTTPReply { try rawRequest(port: server.port, path, method: method) }

    /// Records one more epoch the first time a request's path ends with `suffix`, before it is answered.
    func addEpochOnFirstRequest(endingWith suffix: String) {
        final class Once: @unchecked Sendable { let lock = NSLock(); var done = false }   // safe: `done` only under `lock`
        let once = Once(), fx = fx!
        server.site.onRequest = { path in
            guard path.hasSuffix(suffix) else { return }
            once.lock.lock(); defer { once.lock.unlock() }
            if once.done { return }
            once.done = true
            try? fx.addEpoch()
        }
    }

    // MARK: plain HTTP

    /// Grad-CAM pictures take seconds on real faces. Several first requests
    /// for one run's pictures compute them once, off the cooperative pool:
    /// meanwhile every other page answers at once.
    func testConcurrentFirstGradCAMRequestsComputeOnceAndBlockNoOtherPage() throws {
        final class Calls: Sendable { let count = Mutex(0) }
        let calls = Calls()
        let site = Site(registry: try Registry(readOnly: fx.db)) { registry, run, images in
            calls.count.withLock { $0 += 1 }
            Thread.sleep(forTimeInterval: 1.5)   // as slow as a real model on real faces
            return GradCAMPictures.pairs(registry, run: run, images: images)
        }
        let slow = try awaitServer(site)
        defer { slow.stop() }
        let preds = try fx.writer.predictions(run: fx.base, split: .val)
        let wrong = try XCTUnwrap(RunPage.errorIndices(preds).first)
        let port = slow.port, path = "/runs/\(fx.base)/gradcam/\(wrong)"
        // More first requests than the cooperative pool has threads: blocking handlers would take them all.
        // Clients are plain threads, so that only the server's own work is on the pool.
        let requests = max(2, ProcessInfo.processInfo.activeProcessorCount + 1)
        final class Replies: Sendable { let statuses = Mutex([Int]()) }
        let replies = Replies(), group = DispatchGroup()
        for _ in 0..<requests {
            group.enter()
            Thread {
                let status = (try? rawRequest(port: port, path))?.status ?? 0
                replies.statuses.withLock { $0.append(status) }
                group.leave()
            }.start()
        }
        Thread.sleep(forTimeInterval: 0.3)
        let t0 = Date()
        let runs = try rawRequest(port: port, "/api/runs")
        let waited = Date().timeIntervalSince(t0)
        XCTAssertEqual(runs.status, 200)
        XCTAssertLessThan(waited, 0.75, "the runs page waited for Grad-CAM work")
        XCTAssertEqual(group.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(replies.statuses.withLock { $0 }, [Int](repeating: 200, count: requests))
        XCTAssertEqual(calls.count.withLock { $0 }, 1, "the pictures were computed once")
        XCTAssertEqual(try rawRequest(port: port, path).status, 200)
        XCTAssertEqual(calls.count.withLock { $0 }, 1, "a completed run's pictures are kept")
    }

    func testTraversalUnknownRunsAndUnknownImagesAre404() throws {
        let probes = ["/runs/../../etc/passwd", "/static/..%2f..%2fetc/passwd", "/static/..%2f..%2fetc%2fpasswd", "/static/%2e%2e/%2e%2e/etc/passwd",
                      "/runs/\(fx.base)/images/../../../../etc/passwd", "/runs/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                      "/runs/ZZZZZZZZZZ", "/runs/ZZZZZZZZZZ/loss.svg", "/api/runs/ZZZZ/epochs",
                      "/runs/\(fx.base)/images/val/999999", "/runs/\(fx.base)/images/val/-1", "/runs/\(fx.base)/images/val/x",
                      "/runs/\(fx.base)/images/train/0", "/runs/\(fx.running)/checkpoint/best.safetensors",
                      "/runs/\(fx.base)/checkpoint/last.safetensors", "/compare?e=no_such_experiment", "/etc/passwd", "/static/"]
        for p in probes {
            let r = try get(p)
            XCTAssertEqual(r.status, 404, p)
            XCTAssertFalse(r.text.contains("root:"), p)
            XCTAssertTrue(r.text.contains("<h1>404 Not Found</h1>"), "\(p): \(r.text.prefix(200))")
        }
        XCTAssertTrue(try get("/compare?e=no_such_experiment").text.contains("no completed runs of experiment no_such_experiment"))
        let post = try get("/", method: "POST")
        XCTAssertEqual(post.status, 405)
        XCTAssertEqual(post.headers["allow"], "GET, HEAD")
    }

    func testFacesCheckpointAndAssetsAreServedFromWhatTheRegistryNames() throws {
        let preds = try fx.writer.predictions(run: fx.base, split: .val)
        XCTAssertFalse(preds.isEmpty)
        let face = try get("/runs/\(fx.base)/images/val/\(preds.count - 1)")
        XCTAssertEqual(face.status, 200)
        XCTAssertEqual(face.headers["content-type"], "image/jpeg")
        XCTAssertEqual(Array(face.body.prefix(2)), [0xFF, 0xD8], "a JPEG")
        let ckpt = try get("/runs/\(String(fx.base.prefix(12)))/checkpoint/best.safetensors")
        XCTAssertEqual(ckpt.status, 200)
        XCTAssertEqual(ckpt.body, try fx.writer.checkpointData(run: fx.base, kind: .best))
        XCTAssertTrue(ckpt.headers["content-disposition"]?.contains("\(fx.base)-best.safetensors") ?? false)
        let js = try get("/static/lab.js")
        XCTAssertEqual(js.status, 200)
        XCTAssertTrue(js.headers["content-type"]?.hasPrefix("text/javascript") ?? false)
        XCTAssertEqual(try get("/").headers["content-security-policy"]?.contains("default-src 'self'"), true, "nothing from the internet")
    }

    func testAPIRunsCarriesTheTableCellsAndEpochsTheCurves() throws {
        let api = try JSONSerialization.jsonObject(with: try get("/api/runs").body) as! [String: Any]
        let runs = api["runs"] as! [[String: Any]]
        XCTAssertEqual(Set(runs.map { $0["id"] as! String }), [fx.base, fx.abl, fx.running])
        let running = runs.first { $0["id"] as! String == fx.running }!
        XCTAssertEqual(running["status"] as? String, "running")
        let cells = (running["cells"] as! [[String: Any]]).map { $0["text"] as! String }
        XCTAssertEqual(cells[1], "wide")
        XCTAssertTrue(cells[4].hasSuffix(" of 5"), cells[4])
        XCTAssertTrue(cells[5].hasSuffix(" ago"), "heartbeat age: \(cells[5])")
        let epochs = try JSONSerialization.jsonObject(with: try get("/api/runs/\(fx.running)/epochs").body) as! [String: Any]
        XCTAssertEqual((epochs["epochs"] as! [Any]).count, try fx.writer.epochs(run: fx.running).count)
    }

    // MARK: in a browser

    func testRunsPageListsEveryRunAndUpdatesTheRunningOneWithoutReload() async throws {
        _ = try Browser.path()
        let before = try fx.writer.epochs(run: fx.running).count
        let served = try get("/").text
        XCTAssertTrue(served.contains(">\(before) of 5 <progress"), "the server-rendered row")
        addEpochOnFirstRequest(endingWith: "/api/runs")
        let dom = try await Browser.dom(server.url("/"), scratch: scratch)
        let rows = DOM.section(dom, from: "<tbody", to: "</tbody>") ?? ""
        XCTAssertEqual(DOM.count("<tr ", in: rows), 3, rows)
        for name in [">base<", ">abl<", ">wide<", ">completed<", ">running<", ">gpu-box-7<"] { XCTAssertTrue(rows.contains(name), name) }
        XCTAssertTrue(rows.contains(">\(before + 1) of 5 <progress"), "the poll brought the new epoch in: \(rows)")
        XCTAssertTrue(dom.contains("3 runs, 1 running."))
        try await Browser.screenshot(server.url("/"), name: "runs.png", height: 500, scratch: scratch)
    }

    func testRunCurveGainsAPointWhenAnEpochEnds() async throws {
        _ = try Browser.path()
        let before = try fx.writer.epochs(run: fx.running).count
        let accuracy = { (html: String) in DOM.polylinePoints(DOM.section(html, from: "id=\"accuracy\"", to: "</figure>") ?? "") }
        XCTAssertEqual(accuracy(try get("/runs/\(fx.running)").text), [before, before], "train and val, as served")
        addEpochOnFirstRequest(endingWith: "/api/runs/\(fx.running)/epochs")
        let dom = try await Browser.dom(server.url("/runs/\(fx.running)"), scratch: scratch)
        XCTAssertEqual(accuracy(dom), [before + 1, before + 1], "the page redrew from /accuracy.svg after the poll")
        XCTAssertEqual(DOM.polylinePoints(DOM.section(dom, from: "id=\"loss\"", to: "</figure>") ?? ""), [before + 1, before + 1])
        XCTAssertTrue(dom.contains("<span id=\"epochs\">\(before + 1)</span>"))
        try await Browser.screenshot(server.url("/runs/\(fx.running)"), name: "run-running.png", scratch: scratch)
    }

    func testCompletedRunShowsConfusionErrorsWithFacesSpecAndProvenance() async throws {
        _ = try Browser.path()
        let dom = try await Browser.dom(server.url("/runs/\(fx.base)"), budgetMs: 1000, scratch: scratch)
        for text in ["Confusion (validation, best epoch)", "Confusion (test)", "base: validation, best epoch (row %)", "Per class (validation",
                     "Most confident errors", "Provenance", "git commit", "BLAS", "Resolved spec", "\"max_epochs\" : 2", "best.safetensors"] {
            XCTAssertTrue(dom.contains(text), text)
        }
        let errors = DOM.section(dom, from: "id=\"errors\"", to: "</table>") ?? ""
        let src = try XCTUnwrap(errors.range(of: #"/runs/[0-9A-Z]+/images/val/[0-9]+"#, options: .regularExpression).map { String(errors[$0]) })
        XCTAssertEqual(try get(src).headers["content-type"], "image/jpeg", "the error table's faces load")
        XCTAssertEqual(DOM.count("<svg", in: dom), 6, "loss, accuracy, and counts + row % for validation and test")
        try await Browser.screenshot(server.url("/runs/\(fx.base)"), name: "run-completed.png", height: 2200, scratch: scratch)
    }

    func testCompareTableAndOverlaidCurves() async throws {
        _ = try Browser.path()
        let dom = try await Browser.dom(server.url("/compare?e=base&e=abl"), budgetMs: 1000, scratch: scratch)
        let table = try XCTUnwrap(DOM.section(dom, from: "id=\"compare\"", to: "</table>"))
        let rows = table.components(separatedBy: "<tr>").dropFirst(2)   // the header row, then one per experiment
        XCTAssertEqual(rows.count, 2)
        XCTAssertTrue(rows.first!.hasPrefix("<td>base</td><td>-</td>"), String(rows.first!))
        XCTAssertTrue(rows.last!.hasPrefix("<td>abl</td><td>base</td>"), String(rows.last!))
        XCTAssertTrue(rows.last!.contains("model.skip"), "changed keys: \(rows.last!)")
        let expected = try Compare.rows(try Compare.load(fx.writer, split: .val), only: ["base", "abl"])
        // One run a side: no seed-aware test, the model-level McNemar in the note, as lab compare prints it.
        XCTAssertNil(expected[1].pValue)
        XCTAssertTrue(rows.last!.contains("McNemar p = \(Compare.pString(expected[1].mcnemarP)) compares two trained models"), String(rows.last!))
        XCTAssertEqual(DOM.polylinePoints(DOM.section(dom, from: "Validation accuracy", to: "</svg>") ?? ""), [2, 2], "one line per run")
        try await Browser.screenshot(server.url("/compare?e=base&e=abl"), name: "compare.png", height: 700, scratch: scratch)
    }
}

extension ServeTests {
    func testFilterWorksWithoutScriptAndSurvivesTheLiveUpdate() async throws {
        let served = try get("/?q=completed+ABL").text
        let rows = DOM.section(served, from: "<tbody", to: "</tbody>") ?? ""
        XCTAssertEqual(DOM.count("<tr ", in: rows), 1, "filtered on the server: \(rows)")
        XCTAssertTrue(rows.contains("data-run=\"\(fx.abl)\""))
        XCTAssertTrue(served.contains("name=\"q\" type=\"search\" value=\"completed ABL\""))
        _ = try Browser.path()
        let dom = try await Browser.dom(server.url("/?q=completed+ABL"), scratch: scratch)
        let live = DOM.section(dom, from: "<tbody", to: "</tbody>") ?? ""
        XCTAssertEqual(DOM.count("<tr ", in: live), 3, "the poll brought every run back")
        XCTAssertEqual(DOM.count("<tr class=\"status-completed\" data-run=\"\(fx.abl)\">", in: live), 1, "abl shown: \(live)")
        XCTAssertEqual(DOM.count(" hidden=\"\"", in: live), 2, "the others hidden by the script's filter")
    }

    /// The JSON carries raw text, which lab.js only ever sets as textContent.
    func testEveryRegistryValueIsEscaped() async throws {
        let dir = fx.dir.appendingPathComponent("xss-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let writer = try Registry(path: dir.appendingPathComponent("runs.db").path)
        let exp = try writer.experiment(name: "<script>alert(1)</script>", parent: "\"><b>x", specJSON: #"{"train": {"max_epochs": 3}, "note": "</pre><script>alert(3)</script>"}"#, description: nil)
        var run = Run(experimentId: exp, seed: 1)
        run.host = "<img src=x onerror=alert(2)>"; run.error = "</p><i>"
        let id = try writer.startRun(run)
        let evil = try await LiveServer(Site(registry: try Registry(readOnly: writer.path)))
        defer { evil.stop() }
        for page in ["/", "/runs/\(id)", "/compare"] {
            let text = try rawRequest(port: evil.port, page).text
            for raw in ["<script>alert", "<img src=x", "<b>x", "</p><i>"] { XCTAssertFalse(text.contains(raw), "\(page): \(raw)") }
        }
        XCTAssertTrue(try rawRequest(port: evil.port, "/").text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        XCTAssertTrue(try rawRequest(port: evil.port, "/runs/\(id)").text.contains("&gt;&lt;script&gt;alert(3)"))
    }
}

extension ServeTests {
    /// Sorting is the script's: a link's "#runs=N" (or "-N", descending) sorts as a click on heading N does.
    func testRunsSortByAColumnInTheBrowser() async throws {
        _ = try Browser.path()
        func order(_ hash: String) async throws -> [String] {
            let dom = try await Browser.dom(server.url("/\(hash)"), budgetMs: 500, scratch: scratch)
            let rows = DOM.section(dom, from: "<tbody", to: "</tbody>") ?? ""
            let re = try NSRegularExpression(pattern: "data-run=\"([0-9A-Z]+)\"")
            return re.matches(in: rows, range: NSRange(rows.startIndex..., in: rows)).map { String(rows[Range($0.range(at: 1), in: rows)!]) }
        }
        let served = try await order(""), byName = try await order("#runs=1"), byNameDown = try await order("#runs=-1"), byTest = try await order("#runs=8")
        XCTAssertEqual(served, [fx.running, fx.abl, fx.base], "newest first as served")
        XCTAssertEqual(byName, [fx.abl, fx.base, fx.running], "by experiment name")
        XCTAssertEqual(byNameDown, [fx.running, fx.base, fx.abl])
        XCTAssertEqual(byTest.last, fx.running, "a run without a test accuracy sorts last")
    }
}

extension ServeTests {
    /// One drawing path: a one-run experiment's curves are byte for byte `lab report`'s figures.
    func testRunCurvesAreTheReportsFigures() throws {
        let out = scratch.appendingPathComponent("report/report.md")
        _ = try Report.markdown(fx.writer, to: out, pictures: GradCAMPictures.pairs)
        for kind in ["loss", "accuracy"] {
            let report = try Data(contentsOf: out.deletingLastPathComponent().appendingPathComponent("figures/base_\(kind).svg"))
            let served = try get("/runs/\(fx.base)/\(kind).svg")
            XCTAssertEqual(served.headers["content-type"], "image/svg+xml")
            XCTAssertEqual(served.body, report, kind)
        }
    }
}

extension ServeTests {
    /// /sweeps: each task's state from the registry and the sweep's shards.
    func testSweepsPageShowsEveryTaskStateFromRegistryAndShards() throws {
        let tasks = try SweepPlanner.tasks(specs: [fx.dir.appendingPathComponent("base.json").path, fx.dir.appendingPathComponent("abl.json").path],
                                           seeds: [1, 2], overrides: [], grid: [])
        let store = SweepStore(fx.dir.appendingPathComponent("sweeps-\(UUID().uuidString.prefix(6))").path)
        let plan = SweepPlan(tasks: tasks, command: ["lab", "sweep", "base.json", "abl.json", "--seeds", "1,2"])
        try store.save(plan)
        // Task 1 (base, seed 2) is training in its own shard, as a Slurm array task would.
        let shard = try Registry(path: store.shards(plan.id).appendingPathComponent("task-1.db").path)
        let exp = try shard.experiment(name: "base", parent: nil, specJSON: tasks[1].specJSON, description: nil)
        var run = Run(experimentId: exp, seed: 2)
        run.host = "node-17"
        let inShard = try shard.startRun(run)
        server.stop()
        server = try awaitServer(Site(registry: try Registry(readOnly: fx.db), sweeps: store))
        let page = try get("/sweeps")
        XCTAssertEqual(page.status, 200)
        let table = try XCTUnwrap(DOM.section(page.text, from: "id=\"tasks-\(plan.id)\"", to: "</table>"))
        let rows = table.components(separatedBy: "<tr>").dropFirst(2)   // the header row, then tasks
        XCTAssertEqual(rows.count, 4)
        func state(_ i: Int) -> String? { rows[rows.startIndex + i].components(separatedBy: "class=\"state-").dropFirst().first?.components(separatedBy: "\"").first }
        XCTAssertEqual((0..<4).map(state), ["completed", "running", "completed", "pending"])
        XCTAssertTrue(rows[rows.startIndex + 1].contains("/runs/\(inShard)"))
        XCTAssertTrue(page.text.contains("4 tasks: 2 completed, 1 running, 1 pending"), page.text)
        // No sweeps folder: a sentence, not an error.
        server.stop()
        server = try awaitServer(Site(registry: try Registry(readOnly: fx.db), sweeps: SweepStore(fx.dir.appendingPathComponent("none").path)))
        XCTAssertTrue(try get("/sweeps").text.contains("No sweeps in"))
    }

    func awaitServer(_ site: Site) throws -> LiveServer {
        final class Box: @unchecked Sendable { var server: LiveServer?; var error: Error? }   // safe: set before done.signal()
        let box = Box(), done = DispatchSemaphore(value: 0)
        Task { do { box.server = try await LiveServer(site) } catch { box.error = error }; done.signal() }
        done.wait()
        if let e = box.error { throw e }
        return box.server!
    }
}

extension ServeTests {
    /// A run page's confident errors carry their Grad-CAM pictures: the same
    /// pixels `lab report` draws, computed from the best checkpoint.
    func testConfidentErrorsCarryTheReportsGradCAMPictures() throws {
        let preds = try fx.writer.predictions(run: fx.base, split: .val)
        let wrong = try XCTUnwrap(preds.indices.filter { preds[$0].trueClass != preds[$0].predictedClass }
            .max { (preds[$0].confidence, -$0) < (preds[$1].confidence, -$1) }, "the tiny model makes errors")
        let page = try get("/runs/\(fx.base)").text
        XCTAssertTrue(page.contains("/runs/\(fx.base)/gradcam/\(wrong)"), "the most confident error links its Grad-CAM")
        let cam = try get("/runs/\(fx.base)/gradcam/\(wrong)")
        XCTAssertEqual(cam.status, 200)
        XCTAssertEqual(cam.headers["content-type"], "image/jpeg")
        let served = try JPEG.decode(Array(cam.body))
        let drawn = try XCTUnwrap(GradCAMPictures.pairs(try Registry(readOnly: fx.db), run: fx.base, images: [preds[wrong].image])[preds[wrong].image])
        XCTAssertEqual(served.width, drawn.width); XCTAssertEqual(served.height, drawn.height)
        XCTAssertGreaterThan(served.width, served.height, "the face and its map side by side")
        XCTAssertEqual(Array(cam.body), JPEG.encode(drawn, quality: 90), "the very picture lab report draws, as JPEG")
        // A correct prediction, an index past the end and a non-number are no errors to draw.
        let right = try XCTUnwrap(preds.indices.first { preds[$0].trueClass == preds[$0].predictedClass })
        for p in ["/runs/\(fx.base)/gradcam/\(right)", "/runs/\(fx.base)/gradcam/\(preds.count)", "/runs/\(fx.base)/gradcam/x"] {
            XCTAssertEqual(try get(p).status, 404, p)
        }
    }
}
