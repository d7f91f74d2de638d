import Foundation
import XCTest

/// Debian's chromium, headless: what a person would see.
enum Browser {
    static func path() throws -> String {
        for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"] where FileManager.default.isExecutableFile(atPath: p) {
            return p
        }
        throw XCTSkip("chromium not found: browser tests need Debian's chromium")
    }

    /// The DOM after the page's scripts had `budgetMs` of (virtual) time to run.
    static func dom(_ url: String, budgetMs: Int = 5000, scratch: URL) async throws -> String {
        let out = scratch.appendingPathComponent("dom-\(UUID().uuidString.prefix(6)).html")
        try await run(["--dump-dom", "--virtual-time-budget=\(budgetMs)", url], stdout: out, scratch: scratch)
        return try String(contentsOf: out, encoding: .utf8)
    }

    /// A 1280x900 PNG of the page, also copied to /tmp/serve-shots for people to look at.
    @discardableResult
    static func screenshot(_ url: String, name: String, height: Int = 900, scratch: URL) async throws -> URL {
        let file = scratch.appendingPathComponent(name)
        try await run(["--screenshot=\(file.path)", "--window-size=1280,\(height)", "--hide-scrollbars", "--virtual-time-budget=3000", url],
                      stdout: scratch.appendingPathComponent("shot.log"), scratch: scratch)
        let shots = URL(fileURLWithPath: "/tmp/serve-shots")
        try? FileManager.default.createDirectory(at: shots, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(at: shots.appendingPathComponent(name))
        try? FileManager.default.copyItem(at: file, to: shots.appendingPathComponent(name))
        return file
    }

    /// Runs chromium without blocking a Swift concurrency thread: the server
    /// under test answers on those threads.
    static func run(_ args: [String], stdout: URL, scratch: URL) async throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try path())
        // Its own profile: other chromiums on this machine hold the default one.
        let profile = scratch.appendingPathComponent("chromium-profile")
        p.arguments = ["--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--user-data-dir=\(profile.path)"] + args
        _ = FileManager.default.createFile(atPath: stdout.path, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: stdout)
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        let status: Int32 = try await withCheckedThrowingContinuation { c in
            p.terminationHandler = { c.resume(returning: $0.terminationStatus) }
            do { try p.run() } catch { p.terminationHandler = nil; c.resume(throwing: error); return }
            DispatchQueue.global().asyncAfter(deadline: .now() + 90) { if p.isRunning { p.terminate() } }
        }
        XCTAssertEqual(status, 0, "chromium \(args.joined(separator: " "))")
    }
}

/// Small readers of the dumped DOM.
enum DOM {
    /// The text between the first `start` and the next `end` after it.
    static func section(_ html: String, from start: String, to end: String) -> String? {
        guard let a = html.range(of: start), let b = html.range(of: end, range: a.upperBound..<html.endIndex) else { return nil }
        return String(html[a.lowerBound..<b.upperBound])
    }

    /// Every `points="..."` list in `svg`, as point counts.
    static func polylinePoints(_ svg: String) -> [Int] {
        let re = try! NSRegularExpression(pattern: "<polyline[^>]* points=\"([^\"]*)\"")
        return re.matches(in: svg, range: NSRange(svg.startIndex..., in: svg)).map { m in
            String(svg[Range(m.range(at: 1), in: svg)!]).split(separator: " ").count
        }
    }

    static func count(_ needle: String, in s: String) -> Int { s.components(separatedBy: needle).count - 1 }
}
