import Faces
import Failures
import Foundation
import Registry
import Specs

/// A run as the CLI shows it.
public struct RunRow: Sendable {
    public var id: String
    public var experiment: String
    public var experimentID: String
    public var parent: String?
    public var status: Run.Status       // with stale 'running', or a dead owner on this host, shown as 'interrupted'
    public var seed: Int
    public var epochsRun: Int
    public var bestEpoch: Int?
    public var bestValAccuracy: Double?
    public var bestValMacroF1: Double?
    public var testAccuracy: Double?
    public var trainSeconds: Double?
    public var startedAt: String
    public var finishedAt: String?
    public var specJSON: String
    public var specFile: String?
    public var datasetSource: String?
    public var datasetRoot: String?
    public var fingerprint: String
    public var threads: Int?
    public var error: String?
    public var pid: Int?
    public var host: String?
    public var heartbeatAt: String
    /// Per-class recall on validation at the best epoch, in class order; empty until the run completes.
    public var valRecall: [Double?] = []
    /// Mean recall over classes with validation images.
    public var valBalancedAccuracy: Double? {
        let r = valRecall.compactMap { $0 }
        return r.isEmpty ? nil : r.reduce(0, +) / Double(r.count)
    }

    init(_ l: RunListing) {
        let r = l.run
        id = r.id; experiment = l.experiment.name; experimentID = r.experimentId; parent = l.experiment.parent; status = l.shownStatus
        seed = r.seed; epochsRun = r.epochsRun; bestEpoch = r.bestEpoch
        bestValAccuracy = r.bestValAccuracy; bestValMacroF1 = r.bestValMacroF1
        testAccuracy = r.testAccuracy; trainSeconds = r.trainSeconds
        startedAt = r.startedAt; finishedAt = r.finishedAt; specJSON = l.experiment.specJson
        specFile = nil; datasetSource = r.datasetSource; datasetRoot = r.datasetRoot
        fingerprint = r.datasetFingerprint ?? ""; threads = r.threads; error = r.error; pid = r.pid; host = r.host
        heartbeatAt = r.heartbeatAt
        if status == .running && RunOwner.isGone(host: host, pid: pid, heartbeat: heartbeatAt) { status = .interrupted }
    }

    public static func fetch(_ registry: Registry, _ id: String) throws -> RunRow {
        guard let listing = try registry.runListings(id: id).first else { throw Failure(.registry, "no run \(id)") }
        var r = RunRow(listing)
        r.valRecall = try validationRecall(registry.classMetrics(run: id, split: .val))[id] ?? []
        return r
    }

    public static func all(_ registry: Registry) throws -> [RunRow] {
        let recall = try validationRecall(registry.classMetrics(split: .val))
        return try registry.runListings().map {
            var r = RunRow($0)
            r.valRecall = recall[r.id] ?? []
            return r
        }
    }

    /// Validation recall per class, in class order, by run id.
    static func validationRecall(_ metrics: [ClassMetric]) -> [String: [Double?]] {
        var out = [String: [Double?]]()
        for m in metrics {
            out[m.runId, default: [Double?](repeating: nil, count: Emotion.count)][m.emotion.rawValue] = m.recall
        }
        return out
    }

    public static func one(_ registry: Registry, _ prefix: String) throws -> RunRow {
        try fetch(registry, try registry.resolveRun(prefix))
    }
}

extension RunRow {
    /// The spec the run was trained with, as stored in the registry.
    public func resolvedSpec() throws -> ExperimentSpec {
        try SpecLoader.stored(specJSON, file: "runs.db:\(id)")
    }
}
