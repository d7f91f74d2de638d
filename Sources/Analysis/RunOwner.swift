import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whether the process recorded as running a run can still be running it.
/// The registry's heartbeat rule (run_summary: no heartbeat for two
/// minutes means dead) is all another host can know; on the run's own host
/// the process table says it at once, so `lab resume` need not wait.
public enum RunOwner {
    /// This machine's name, as runs record their host.
    public static let thisHost: String = ProcessInfo.processInfo.hostName

    /// True only when certain: the run was started on this host and its pid
    /// is free, a zombie, or now a process that started after the run's last
    /// heartbeat (the pid was reused). Anything unsure answers false.
    static func isGone(host: String?, pid: Int?, heartbeat: String?, thisHost: String = RunOwner.thisHost) -> Bool {
        guard let host, host == thisHost, let pid, pid > 0, pid <= Int(Int32.max) else { return false }
        if kill(pid_t(pid), 0) != 0 && errno == ESRCH { return true }
        #if os(Linux)
        guard let stat = procStat(pid) else { return false }
        if stat.state == "Z" { return true }
        guard let heartbeat, let beat = parse(heartbeat), let started = startTime(stat.startTicks) else { return false }
        // The owner wrote its heartbeat while alive, so it started before it.
        // /proc/stat's boot time is whole seconds: allow one second of doubt.
        return started > beat.addingTimeInterval(1)
        #else
        return false
        #endif
    }

    static func parse(_ timestamp: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: timestamp)
    }

    #if os(Linux)
    /// State letter and start time (clock ticks after boot) from /proc/PID/stat.
    static func procStat(_ pid: Int) -> (state: Character, startTicks: Double)? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // The command name in parentheses may hold spaces; fields after it start at field 3 (state).
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let state = fields[0].first, let ticks = Double(fields[19]) else { return nil }
        return (state, ticks)
    }

    /// Wall-clock start of a process from its start ticks and the boot time.
    static func startTime(_ ticks: Double) -> Date? {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = stat.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
              let boot = Double(line.dropFirst("btime ".count).trimmingCharacters(in: .whitespaces)) else { return nil }
        let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
        return Date(timeIntervalSince1970: boot + ticks / (hz > 0 ? hz : 100))
    }
    #endif
}
