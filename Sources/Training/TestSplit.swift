import Analysis
import Engine
import Failures
import Foundation
import Registry
import Specs

/// `lab test`: the week-5 look at the untouched test split, recorded.
public enum TestSplit {
    /// A run id prefix, or every completed run of an experiment name.
    public static func targets(_ reg: Registry, _ target: String) throws -> [RunRow] {
        let all = try RunRow.all(reg)
        let byName = all.filter { $0.experiment == target && $0.status == .completed }
        if !byName.isEmpty { return byName }
        if all.contains(where: { $0.experiment == target }) {
            throw Failure(.registry, "experiment \(target) has no completed run to evaluate")
        }
        let r: RunRow
        do { r = try RunRow.one(reg, target) } catch let e as Failure where e.kind == .registry && !e.description.contains("ambiguous") {
            let known = Set(all.map(\.experiment)).sorted()
            throw Failure(.registry,
                          "no experiment or run \(target) in "
                              + "\(reg.path)\(known.isEmpty ? "" : " (experiments: \(known.joined(separator: ", ")))")")
        }
        guard r.status == .completed else { throw Failure(.registry, "run \(r.id) is \(r.status); only completed runs are evaluated on "
            + "test") }
        return [r]
    }

    public static func evaluate(_ reg: Registry, _ row: RunRow, data: String?, threads: Int) throws {
        let spec = try row.resolvedSpec()
        let prepared = try row.prepareData(spec: spec, data: data, threads: threads, reporter: .silent)
        guard let best = try reg.checkpoint(run: row.id, kind: .best) else {
            throw Failure(.registry, "run \(row.id) has no best checkpoint")
        }
        let (model, _) = try Engine.Model.load(checkpoint: [UInt8](best.data), threads: threads)
        let runner = Runner(registry: reg,
                            reporter: Reporter(status: { _ in }, log: { FileHandle.standardError.write(Data(("\($0)\n").utf8)) }))
        try runner.testEvaluation(runID: row.id, model: model, checkpointSHA: best.sha256, data: prepared, batch: spec.train.batchSize,
                                  trigger: .labTest)
    }
}
