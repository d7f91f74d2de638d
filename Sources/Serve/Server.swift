import Faces
import Foundation
import Hummingbird
import Analysis
import Training
import Sweeps
import Logging
import Registry
import Synchronization

/// What one `lab serve` shares between requests: the registry, opened
/// read-only, and the dataset indexes images are found through.
public final class Site: Sendable {
    public let registry: Registry
    /// The sweeps folder `lab sweep` writes (plans and shards), for /sweeps.
    public let sweeps: SweepStore
    let images = ImageFinder()
    private let observer = Mutex<(@Sendable (String) -> Void)?>(nil)
    /// Called with each request's path before it is answered (tests use it
    /// to change the registry between a page load and its next poll).
    public var onRequest: (@Sendable (String) -> Void)? {
        get { observer.withLock { $0 } }
        set { observer.withLock { $0 = newValue } }
    }

    /// Draws a run's Grad-CAM pictures (GradCAMPictures.pairs; tests count and slow it).
    let drawGradCAMs: @Sendable (Registry, String, [String]) -> [String: RGBImage]
    /// Each run's Grad-CAM pictures as JPEG, computed or being computed: the
    /// first request starts the work, later ones wait for the same task.
    private let gradCAMs = Mutex([String: Task<[String: Data], Never>]())
    /// Where Grad-CAM work runs: off Swift's cooperative pool, whose few
    /// threads every other page needs; one run's pictures at a time.
    private let gradCAMQueue = DispatchQueue(label: "lab.serve.gradcam", qos: .utility)

    /// The Grad-CAM pictures of a run's listed errors, computed together on
    /// the first request (one model load and one batch) and kept: a run's
    /// best checkpoint never changes once the run has completed. Requests
    /// that arrive while they are computed wait for that computation.
    func gradCAM(run: String, image: String, errors: [String], completed: Bool) async -> Data? {
        let task = gradCAMs.withLock { tasks in
            if let known = tasks[run] { return known }
            let started = Task { await self.computeGradCAMs(run: run, errors: errors) }
            tasks[run] = started
            return started
        }
        let pictures = await task.value
        // An unfinished run's best checkpoint may still change: its pictures are not kept.
        if !completed { gradCAMs.withLock { tasks in if tasks[run] == task { tasks[run] = nil } } }
        return pictures[image]
    }

    private func computeGradCAMs(run: String, errors: [String]) async -> [String: Data] {
        await withCheckedContinuation { done in
            gradCAMQueue.async {
                let pictures = self.drawGradCAMs(self.registry, run, errors).compactMapValues { Data(JPEG.encode($0, quality: 90)) }
                done.resume(returning: pictures)
            }
        }
    }

    public init(registry: Registry, sweeps: SweepStore = SweepStore("sweeps"),
                drawGradCAMs: @escaping @Sendable (Registry, String, [String]) -> [String: RGBImage] = GradCAMPictures.pairs) {
        self.registry = registry; self.sweeps = sweeps; self.drawGradCAMs = drawGradCAMs
    }

    /// The run a URL names (any unique id prefix), or a 404.
    func run(_ id: String?) throws -> RunRow {
        try RunRow.one(registry, try resolve(id))
    }

    /// Everything about the run a URL names, or a 404.
    func view(_ id: String?) throws -> RunView {
        try RunView.load(registry, try resolve(id))
    }

    func resolve(_ id: String?) throws -> String {
        guard let id, let full = try? registry.resolveRun(id) else { throw NotFound("no run \(id ?? "") in this registry") }
        return full
    }
}

/// A 404 with one line saying what was not found.
struct NotFound: Error {
    var message = "nothing here"
    init(_ message: String = "nothing here") { self.message = message }
}

public enum Serve {
    public typealias AppRouter = Router<BasicRequestContext>

    /// Every route is a GET over what the registry names.
    public static func router(_ site: Site) -> AppRouter {
        let router = AppRouter(options: .autoGenerateHeadEndpoints)
        router.add(middleware: Guard(site: site))
        router.get("/") { req, _ in
            Reply.html(RunsPage.render(try RunRow.all(site.registry), now: Date(), query: formValues(req, "q").first ?? ""))
        }
        router.get("/api/runs") { _, _ in
            let runs = try RunRow.all(site.registry)
            return try Reply.json(RunsJSON(summary: RunsPage.summary(runs), runs: RunsPage.rows(runs, now: Date())))
        }
        router.get("/runs/:id") { _, c in Reply.html(try RunPage.render(site, try site.view(c.parameters.get("id")))) }
        router.get("/runs/:id/loss.svg") { _, c in try figure(site, c, .loss) }
        router.get("/runs/:id/accuracy.svg") { _, c in try figure(site, c, .accuracy) }
        router.get("/api/runs/:id/epochs") { _, c in
            let row = try site.run(c.parameters.get("id"))
            return try Reply.json(EpochsJSON(status: row.status.rawValue, epochs: try site.registry.epochs(run: row.id)))
        }
        router.get("/runs/:id/images/:split/:index") { _, c in try image(site, c) }
        router.get("/runs/:id/gradcam/:index") { _, c in
            let row = try site.run(c.parameters.get("id"))
            let errors = try RunPage.errorIndices(site, row.id)
            guard let index = c.parameters.get("index").flatMap({ Int($0) }), errors.contains(index),
                  let p = try site.registry.prediction(run: row.id, split: .val, index: index) else { throw NotFound("no such error") }
            let names = try errors.compactMap { try site.registry.prediction(run: row.id, split: .val, index: $0)?.image }
            guard let jpeg = await site.gradCAM(run: row.id, image: p.image, errors: names, completed: row.status == .completed) else {
                throw NotFound("\(p.image): the run's faces or checkpoint are not at hand")
            }
            return Reply.bytes(jpeg, type: "image/jpeg")
        }
        router.get("/runs/:id/checkpoint/best.safetensors") { _, c in
            let row = try site.run(c.parameters.get("id"))
            guard let data = try site.registry.checkpointData(run: row.id, kind: .best) else {
                throw NotFound("run \(row.id) has no best checkpoint")
            }
            return Reply.bytes(data, type: "application/octet-stream",
                               extra: [.contentDisposition: "attachment; filename=\"\(row.id)-best.safetensors\""])
        }
        router.get("/sweeps") { _, _ in Reply.html(try SweepsPage.render(site)) }
        router.get("/compare") { req, _ in
            Reply.html(try ComparePage.render(site, chosen: formValues(req, "e")))
        }
        router.get("/static/:name") { _, c in
            // A lookup in a fixed table: no name can reach the file system.
            guard let name = c.parameters.get("name"), let f = Assets.files[name] else { throw NotFound("no such file") }
            return Reply.bytes(Data(f.body.utf8), type: f.type)
        }
        return router
    }

    /// Every value of `key` in the query, decoded as an HTML form encodes
    /// it ("+" is a space, "%2B" a plus).
    static func formValues(_ req: Request, _ key: String) -> [String] {
        (req.uri.query ?? "").split(separator: "&").compactMap { pair in
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String? { s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding }
            guard decode(kv[0]) == key else { return nil }
            return kv.count > 1 ? decode(kv[1]) : ""
        }
    }

    static func figure(_ site: Site, _ c: BasicRequestContext, _ kind: RunPage.Curve) throws -> Response {
        let row = try site.run(c.parameters.get("id"))
        let svg = RunPage.curve(kind, row, try site.registry.epochs(run: row.id))
        return Reply.bytes(Data(svg.utf8), type: "image/svg+xml")
    }

    /// A face addressed by (run, split, index in that split's predictions).
    static func image(_ site: Site, _ c: BasicRequestContext) throws -> Response {
        let row = try site.run(c.parameters.get("id"))
        guard let split = c.parameters.get("split").flatMap(EvalSplit.init(rawValue:)),
              let index = c.parameters.get("index").flatMap({ Int($0) }),
              let p = try site.registry.prediction(run: row.id, split: split, index: index) else { throw NotFound("no such prediction") }
        guard let url = site.images.file(root: row.datasetRoot, image: p.image),
              let data = FileManager.default.contents(atPath: url.path) else {
            throw NotFound("\(p.image) is not under \(row.datasetRoot ?? "the run's dataset folder") any more")
        }
        return Reply.bytes(data, type: ImageFinder.contentType(url))
    }

    /// The HTTP application on `host:port`; `onRunning` is called once it accepts connections.
    public static func application(_ site: Site, host: String, port: Int,
                                   onRunning: @escaping @Sendable () async -> Void = {}) -> some ApplicationProtocol {
        var logger = Logger(label: "lab.serve")
        logger.logLevel = .critical   // a failure to start is thrown, and told as one line
        return Application(router: router(site), configuration: .init(address: .hostname(host, port: port), serverName: nil),
                           onServerRunning: { _ in await onRunning() }, logger: logger)
    }

    /// Runs the application until Ctrl-C ends it. `lab`'s entry point is
    /// synchronous (it may re-exec itself first); the server runs on Swift
    /// concurrency, and this thread waits for it.
    public static func runUntilStopped(_ app: some ApplicationProtocol & Sendable) throws {
        try block { try await app.runService() }
    }

    static func block(_ body: @escaping @Sendable () async throws -> Void) throws {
        final class Outcome: Sendable { let error = Mutex<(any Error)?>(nil) }
        let outcome = Outcome(), done = DispatchSemaphore(value: 0)
        Task {
            do { try await body() } catch { outcome.error.withLock { $0 = error } }
            done.signal()
        }
        done.wait()
        if let e = outcome.error.withLock({ $0 }) { throw e }
    }

    /// One line for a server that could not start (NIO's errors name syscalls).
    public static func describe(_ error: Error, host: String, port: Int) -> String {
        let text = "\(error)"
        if text.contains("Address already in use") { return "\(host):\(port) is already in use; pick another --port" }
        if text.contains("Cannot assign requested address") || text.contains("not available") {
            return "cannot listen on \(host): not an address of this machine"
        }
        if text.contains("Permission denied") { return "no permission to listen on port \(port) (ports below 1024 need root)" }
        return "cannot serve on \(host):\(port): \(text)"
    }

    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

struct RunsJSON: Encodable { var summary: String; var runs: [RunsRow] }
struct EpochsJSON: Encodable { var status: String; var epochs: [Epoch] }
