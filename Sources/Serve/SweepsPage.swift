import Foundation
import Analysis
import Sweeps
import Registry

/// Every sweep's tasks at a glance, from the registry and each sweep's
/// shards, as `lab sweep status` reads them (not from the scheduler).
enum SweepsPage {
    static func render(_ site: Site) throws -> String {
        let plans = try site.sweeps.all()
        guard !plans.isEmpty else {
            return HTML.page(title: "sweeps", body: "<h1>Sweeps</h1><p>No sweeps in <code>\(HTML.esc(site.sweeps.root.path))</code>. "
                             + "Plan one with <code>lab sweep SPEC... --dry-run</code>.</p>")
        }
        var body = "<h1>Sweeps</h1>"
        for plan in plans { body += try section(site, plan) }
        return HTML.page(title: "sweeps", body: body)
    }

    static func section(_ site: Site, _ plan: SweepPlan) throws -> String {
        // A shard that cannot be opened read-only (being created, or from an older lab) is named, not fatal.
        var shards = [Registry](), unreadable = [String]()
        for file in site.sweeps.shardFiles(plan.id) {
            if let r = try? Registry(readOnly: file) { shards.append(r) } else { unreadable.append((file as NSString).lastPathComponent) }
        }
        let states = try plan.status([site.registry] + shards)
        let counts = TaskState.allCases.reversed().compactMap { s -> String? in
            let n = states.filter { $0.state == s }.count
            return n > 0 ? "\(n) \(s.rawValue)" : nil
        }
        let rows = states.enumerated().map { i, s -> [String] in
            ["\(s.task.index)", HTML.esc(s.task.name), "\(s.task.seed)",
             "<span class=\"state-\(s.state.rawValue)\">\(s.state.rawValue)</span>",
             s.run.map { "<a href=\"/runs/\(HTML.url($0.id))\">\(HTML.esc(String($0.id.prefix(10))))</a>" } ?? "-",
             s.run.map { "\($0.epochsRun)" } ?? "0", HTML.pct(s.run?.bestValAccuracy)]
        }
        var html = "<h2 id=\"sweep-\(HTML.esc(plan.id))\">\(HTML.esc(plan.id))</h2>"
        html += "<p>\(states.count) tasks: \(HTML.esc(counts.joined(separator: ", ")))"
        if let jobs = plan.slurm { html += "; Slurm array job \(HTML.esc(jobs.arrayJob)), merge job \(HTML.esc(jobs.mergeJob))" }
        if !unreadable.isEmpty { html += "; shards not readable yet: \(HTML.esc(unreadable.joined(separator: ", ")))" }
        html += "</p>"
        html += HTML.table(["task", "experiment", "seed", "state", "run", "epochs", "best val acc"], rows,
                           id: "tasks-\(plan.id)", numeric: [0, 2, 5, 6], sortable: true)
        return html
    }
}
