import Failures
import Foundation
import Registry
import Specs

/// One unit of a sweep: a resolved spec and a seed, trained as one run.
public struct SweepTask: Codable, Sendable, Equatable {
    public var index: Int
    public var name: String
    public var parent: String?
    public var experimentID: String
    public var seed: Int
    public var maxEpochs: Int
    public var specJSON: String          // the resolved spec, so a task never rereads an edited file

    public var label: String { "\(name) seed \(seed)" }

    public func spec() throws -> ExperimentSpec {
        try SpecLoader.resolve(JSONValue(parsing: Data(specJSON.utf8)), file: "sweep task \(index)")
    }
}

/// A sweep as stored in sweeps/<id>/plan.json. The id hashes the tasks, so
/// the same command run again finds the same sweep.
public struct SweepPlan: Codable, Sendable {
    public var id: String
    public var createdAt: String
    public var command: [String]         // what resubmits the unfinished tasks
    public var tasks: [SweepTask]
    public var slurm: SlurmJobs?

    public init(tasks: [SweepTask], command: [String]) {
        self.tasks = tasks
        self.command = command
        id = SweepPlan.id(tasks)
        createdAt = Registry.timestamp()
    }

    /// The command that runs the unfinished tasks again, as a shell reads it.
    public var resubmitCommand: String { command.map(SweepPlan.shellQuoted).joined(separator: " ") }

    static func shellQuoted(_ s: String) -> String {
        s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=,:@%+".contains($0) }) ? s
            : "'" + s.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
    }

    static func id(_ tasks: [SweepTask]) -> String {
        String(Registry.sha256(Data(tasks.map { "\($0.experimentID) \($0.seed)\n" }.joined().utf8)).prefix(12))
    }
}

/// The Slurm jobs a sweep was last submitted as.
public struct SlurmJobs: Codable, Sendable {
    public var arrayJob: String
    public var mergeJob: String
    public var registry: String
    public init(arrayJob: String, mergeJob: String, registry: String) {
        self.arrayJob = arrayJob; self.mergeJob = mergeJob; self.registry = registry
    }
}

/// `--grid KEY=V1,V2`: one axis of the cartesian product.
public struct GridAxis: Sendable {
    public let key: String
    public let values: [SpecOverride]

    public static let usage = "--grid takes KEY=V1,V2,... with a dotted spec key, e.g. --grid train.lr=0.001,0.0003"

    /// nil when malformed. Values split at top-level commas, so
    /// `model.widths=[8,16],[16,32]` has two values.
    public init?(_ argument: String) {
        guard let eq = argument.firstIndex(of: "=") else { return nil }
        let key = String(argument[..<eq])
        let parts = GridAxis.split(String(argument[argument.index(after: eq)...]))
        let values = parts.compactMap { SpecOverride("\(key)=\($0)") }
        guard !key.isEmpty, !parts.isEmpty, !parts.contains(where: \.isEmpty), values.count == parts.count else { return nil }
        self.key = key
        self.values = values
    }

    static func split(_ s: String) -> [String] {
        var parts = [String](), current = "", depth = 0
        for c in s {
            if c == "[" || c == "{" { depth += 1 } else if c == "]" || c == "}" { depth -= 1 }
            if c == "," && depth == 0 { parts.append(current); current = "" } else { current.append(c) }
        }
        parts.append(current)
        return parts
    }
}

public enum SweepPlanner {
    /// One task per (resolved spec, seed): each spec file crossed with every
    /// grid combination, each combination its own experiment named after
    /// the values it sets and with the file's experiment as its parent.
    public static func tasks(specs: [String], seeds: [Int]?, overrides: [SpecOverride], grid: [GridAxis]) throws -> [SweepTask] {
        var tasks = [SweepTask]()
        var seen = Set<String>()
        for file in specs {
            for combo in combinations(grid) {
                let spec = try resolve(file, overrides: overrides, combo: combo)
                let exp = Registry.experimentID(specJSON: spec.resolvedJSON)
                for seed in seeds ?? spec.train.runSeeds where seen.insert("\(exp) \(seed)").inserted {
                    tasks.append(SweepTask(index: tasks.count, name: spec.name, parent: spec.parent, experimentID: exp,
                                           seed: seed, maxEpochs: spec.train.maxEpochs, specJSON: spec.resolvedJSON))
                }
            }
        }
        return tasks
    }

    static func combinations(_ grid: [GridAxis]) -> [[SpecOverride]] {
        grid.reduce([[]]) { acc, axis in acc.flatMap { prefix in axis.values.map { prefix + [$0] } } }
    }

    /// The spec file with --set then the grid values applied; a grid
    /// combination renames the experiment, since it is a different one.
    static func resolve(_ file: String, overrides: [SpecOverride], combo: [SpecOverride]) throws -> ExperimentSpec {
        guard !combo.isEmpty else { return try SpecLoader.load(file, overrides: overrides) }
        var chain = [String]()
        var merged = try SpecLoader.applying(overrides, to: SpecLoader.loadMerged(URL(fileURLWithPath: file), chain: &chain))
        do {
            merged = try SpecLoader.applying(combo, to: merged)
        } catch let e as Failure where e.kind == .spec && e.description.hasPrefix("--set ") {
            throw Failure(.spec, "--grid " + e.description.dropFirst("--set ".count))
        }
        let base = merged["name"]?.string ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        merged["parent"] = .string(base)
        merged["name"] = .string(base + "[" + combo.map(\.text).joined(separator: ",") + "]")
        do {
            return try SpecLoader.resolve(merged, file: file)
        } catch let e as Failure where e.kind == .spec && e.description.hasPrefix(file + ": ") {
            let culprit = ([file] + overrides.map { "--set \($0.text)" } + combo.map { "--grid \($0.text)" }).joined(separator: " ")
            throw Failure(.spec, culprit + e.description.dropFirst(file.count))
        }
    }
}
