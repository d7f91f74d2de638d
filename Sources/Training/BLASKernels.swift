import Engine
import Foundation

/// Which OpenBLAS kernels run, and whether the CPU could run wider ones.
///
/// OpenBLAS picks its kernels when it loads. A build older than the CPU
/// (Debian 12's 0.3.21 on Sapphire/Emerald Rapids or Zen 5) does not know the
/// CPU model and falls back to Prescott's SSE3 kernels, which train at half the
/// speed of its Haswell (AVX2 + FMA) kernels on the same machine. Where the
/// environment does not choose (`OPENBLAS_CORETYPE` unset), lab chooses Haswell
/// for such a CPU; an explicit setting is always kept.
public enum BLASKernels {
    /// Kernel families without AVX2 + FMA (OpenBLAS's names, lowercased).
    static let narrow: Set<String> = [
        "prescott", "core2", "penryn", "dunnington", "nehalem", "sandybridge", "atom",
        "katmai", "coppermine", "northwood", "banias", "opteron", "barcelona", "bobcat", "bulldozer", "piledriver",
    ]
    /// Set by lab when it chose the kernels itself, so `lab bench` can say so.
    public static let chosenByLabVariable = "LAB_OPENBLAS_CORETYPE_CHOSEN"

    /// The CPU's feature flags, from /proc/cpuinfo (empty where there is none).
    public static let cpuFlags: Set<String> = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }()

    /// The CPU's model line, as lscpu prints it.
    public static let cpuModel: String = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
              let colon = line.firstIndex(of: ":") else { return "unknown" }
        return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }()

    /// The core type to ask for, or nil when OpenBLAS's own choice should stand.
    public static func betterCoreType(environment: [String: String] = ProcessInfo.processInfo.environment,
                                      selected: String = BLAS.coreName, flags: Set<String> = cpuFlags) -> String? {
        guard environment["OPENBLAS_CORETYPE"] == nil, environment[chosenByLabVariable] == nil,
              narrow.contains(selected.lowercased()), flags.contains("avx2"), flags.contains("fma") else { return nil }
        return "Haswell"
    }

    /// This process's environment without lab's own kernel choice: sbatch
    /// passes the environment to compute nodes, whose CPUs lab has not seen
    /// (a node without AVX2 would die on Haswell kernels). Each node's lab
    /// chooses again.
    public static func environmentForOtherMachines(_ environment: [String: String] = ProcessInfo.processInfo.environment)
        -> [String: String] {
        guard environment[chosenByLabVariable] != nil else { return environment }
        var env = environment
        env["OPENBLAS_CORETYPE"] = nil; env[chosenByLabVariable] = nil
        return env
    }

    /// One line for `lab bench`: the kernels in use and, where the CPU could
    /// run wider ones, why they are not.
    public static func summary(environment: [String: String] = ProcessInfo.processInfo.environment,
                               selected: String = BLAS.coreName, flags: Set<String> = cpuFlags) -> String {
        var line = "OpenBLAS kernels: \(selected)"
        if environment[chosenByLabVariable] != nil {
            line += " (chosen by lab: this OpenBLAS does not recognize the CPU and would run its SSE3 Prescott kernels)"
        } else if let pinned = environment["OPENBLAS_CORETYPE"] {
            line += " (pinned by OPENBLAS_CORETYPE=\(pinned))"
        }
        let s = selected.lowercased()
        if flags.contains("avx512f"), !s.contains("skylakex"), !s.contains("cooperlake"), !s.contains("sapphirerapids") {
            line += "; the CPU also has AVX-512, which these kernels do not use"
        }
        return line
    }

    /// Where this OpenBLAS would run narrower kernels than the CPU allows,
    /// the process starts itself again with OPENBLAS_CORETYPE set: OpenBLAS
    /// reads the variable once, when it loads. Returns only when no restart
    /// is needed or it failed (then OpenBLAS's own choice stands).
    public static func restartWithBetterKernels() {
        guard let core = betterCoreType() else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        setenv(chosenByLabVariable, "1", 1)
        let args = CommandLine.arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", args)
        // execv returned: keep running on the kernels OpenBLAS chose.
    }
}
