import Analysis
import Faces
import Failures
import Foundation
import Specs
import Synthetic

/// Where lab keeps caches: $LAB_CACHE, else $XDG_CACHE_HOME/lab, else ~/.cache/lab.
public enum LabPaths {
    public static var cache: URL {
        let env = ProcessInfo.processInfo.environment
        if let c = env["LAB_CACHE"], !c.isEmpty { return URL(fileURLWithPath: c) }
        if let x = env["XDG_CACHE_HOME"], !x.isEmpty { return URL(fileURLWithPath: x).appendingPathComponent("lab") }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/lab")
    }
}

/// The data a run trains and evaluates on.
public struct PreparedData: Sendable {
    public var set: FaceSet
    public var source: String               // "rafdb" | "synthetic"
    public var train: [Int]
    public var validation: [Int]
    public var test: [Int]
    public var labelMode: LabelMode
    public var normalization: Normalization
    public var fromCache: Bool
}

public enum DataSource {
    /// Places tried for RAF-DB when neither --data nor dataset.root says.
    static func candidates(spec: ExperimentSpec, data: String?) -> [String] {
        if let data { return [data] }
        var c = [String]()
        if let r = spec.dataset.root { c.append(r) }
        if let env = ProcessInfo.processInfo.environment["LAB_RAFDB"], !env.isEmpty { c.append(env) }
        c += ["data/RAF-DB/basic", "data/RAF-DB", "data/rafdb"]
        return c
    }

    /// Finds or generates the dataset, decodes it (through the cache) and splits it.
    public static func prepare(spec: ExperimentSpec, source override: DatasetSpec.Source?, data: String?, threads: Int,
                               log: (String) -> Void, status: (String) -> Void) throws -> PreparedData {
        let source = override ?? spec.dataset.source
        let root: URL
        if source == .synthetic {
            root = try SyntheticWriter.ensure(
                in: LabPaths.cache, train: spec.dataset.synthetic.train, test: spec.dataset.synthetic.test,
                seed: UInt64(spec.dataset.synthetic.seed), progress: status)
        } else {
            let tried = candidates(spec: spec, data: data)
            var found: URL?
            for path in tried {
                let url = URL(fileURLWithPath: path)
                if (try? RAFDB.index(root: url)) != nil { found = url; break }
                if data != nil { _ = try RAFDB.index(root: url) }   // --data given: its own error is the clearest
            }
            guard let f = found else {
                throw Failure(.data,
                              "RAF-DB not found (looked in \(tried.joined(separator: ", "))). Expected "
                                  + "EmoLabel/list_patition_label.txt and Image/aligned/*_aligned.jpg under the folder given by "
                                      + "--data, dataset.root or $LAB_RAFDB (README: RAF-DB). To run this spec on the built-in "
                                          + "synthetic faces instead: lab run \(spec.file) --dataset synthetic")
            }
            root = f
        }
        let index = try RAFDB.index(root: root)
        let (set, report) = try FaceLoader.load(index, imageSize: spec.dataset.imageSize,
                                                cacheDirectory: LabPaths.cache.appendingPathComponent("decoded"),
                                                threads: threads, progress: status)
        let split = set.split(validationFraction: spec.dataset.validationFraction, seed: UInt64(spec.dataset.splitSeed))
        guard !split.train.isEmpty, !split.validation.isEmpty else {
            throw Failure(.data, "\(root.path): too few training images for a validation split (\(set.counts(.train).reduce(0, +)))")
        }
        let labelMode = set.effectiveLabelMode(spec.dataset.labelMode)
        if case .soft = spec.dataset.labelMode, case .hard = labelMode {
            log("note: \(root.path) has no distribution file; training on hard (one-hot) labels")
        }
        let normalization = spec.dataset.normalization == .dataset ? Normalization.measured(set, indices: split.train) : Normalization()
        return PreparedData(set: set, source: source.rawValue, train: split.train, validation: split.validation, test: split.test,
                            labelMode: labelMode, normalization: normalization, fromCache: report.fromCache)
    }
}

extension RunRow {
    /// The run's data again (RAF-DB from `data` if it moved), refusing data
    /// whose fingerprint differs from what the run was trained on.
    func prepareData(spec: ExperimentSpec, data: String?, threads: Int, reporter: Reporter) throws -> PreparedData {
        let prepared = try DataSource.prepare(spec: spec, source: datasetSource.flatMap(DatasetSpec.Source.init(rawValue:)),
                                              data: datasetSource == "rafdb" ? (data ?? datasetRoot) : nil,
                                              threads: threads, log: reporter.log, status: reporter.status)
        if prepared.set.fingerprint != fingerprint {
            throw Failure(.registry, "run \(id) was trained on data with fingerprint \(fingerprint.prefix(12)), "
                          + "but \(prepared.set.root.path) has \(prepared.set.fingerprint.prefix(12))")
        }
        return prepared
    }
}

extension Normalization {
    /// The normalization a checkpoint was trained with (its `lab.normalization` metadata), or the default.
    init(checkpointMetadata meta: [String: String]) {
        self = meta["lab.normalization"].flatMap { try? JSONDecoder().decode(Normalization.self, from: Data($0.utf8)) } ?? Normalization()
    }
}
