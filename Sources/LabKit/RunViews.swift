import Engine
import Faces
import Failures
import Foundation
import Registry

/// Aligned text tables for the terminal.
public enum TextTable {
    public static func render(_ header: [String], _ rows: [[String]], rightAligned: Set<Int> = []) -> String {
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                let pad = String(repeating: " ", count: widths[i] - c.count)
                return rightAligned.contains(i) ? pad + c : c + pad
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        return ([line(header), line(widths.map { String(repeating: "-", count: $0) })] + rows.map(line)).joined(separator: "\n")
    }
}

func pct(_ v: Double?) -> String { v.map { String(format: "%.2f%%", $0 * 100) } ?? "-" }

public enum RunTable {
    public static func render(_ rows: [RunRow]) -> String {
        TextTable.render(
            ["run", "experiment", "status", "seed", "epochs", "best val acc", "val bal acc", "val macro-F1",
             "val recall % " + Compare.shortClass.joined(separator: " "), "test acc", "duration"],
            rows.map { r in
                [String(r.id.prefix(10)), r.experiment, r.status.rawValue, String(r.seed), "\(r.bestEpoch.map { "\($0)/" } ?? "")\(r.epochsRun)",
                 pct(r.bestValAccuracy), pct(r.valBalancedAccuracy), r.bestValMacroF1.map { String(format: "%.4f", $0) } ?? "-",
                 recallCells(r.valRecall), pct(r.testAccuracy), r.trainSeconds.map { Runner.duration($0) } ?? "-"]
            },
            rightAligned: [3, 4, 5, 6, 7, 8, 9, 10])
    }

    /// Recall per class as whole percents under the header's class abbreviations; "-" for a class without images.
    static func recallCells(_ recall: [Double?]) -> String {
        guard !recall.isEmpty else { return "-" }
        return zip(recall, Compare.shortClass).map { r, name in
            let cell = r.map { String(Int(($0 * 100).rounded())) } ?? "-"
            return String(repeating: " ", count: max(0, name.count - cell.count)) + cell
        }.joined(separator: " ")
    }
}

public enum RunDetail {
    public static func render(_ reg: Registry, _ prefix: String) throws -> String {
        let r = try RunRow.one(reg, prefix)
        var out = [String]()
        guard let run = try reg.run(r.id) else { throw Failure(.registry, "no run \(r.id)") }
        out.append("run \(r.id)  \(r.experiment)\(r.parent.map { " (extends \($0))" } ?? "")  seed \(r.seed)  \(r.status)")
        if let e = r.error { out.append("note: \(e)") }
        for (k, v) in provenance(run) { out.append("  " + k.padding(toLength: 20, withPad: " ", startingAt: 0) + (v ?? "-")) }
        out.append("\nresolved spec:")
        if let spec = try? JSONValue(parsing: Data(r.specJSON.utf8)) { out.append(spec.pretty) }
        let epochs = try reg.epochs(run: r.id)
        out.append("\nepochs:")
        out.append(TextTable.render(["epoch", "train loss", "train acc", "val loss", "val acc", "val macro-F1", "seconds", "img/s"],
            epochs.map { e in
                let f: (Double?, String) -> String = { v, fmt in v.map { String(format: fmt, $0) } ?? "-" }
                return ["\(e.epoch)\(e.epoch == r.bestEpoch ? "*" : "")", f(e.trainLoss, "%.4f"), f(e.trainAccuracy, "%.4f"),
                        f(e.valLoss, "%.4f"), f(e.valAccuracy, "%.4f"), f(e.valMacroF1, "%.4f"), f(e.seconds, "%.1f"), f(e.imagesPerSecond, "%.0f")]
            }, rightAligned: Set(0..<8)))
        for split in ["val", "test"] {
            let cells = try reg.confusion(run: r.id, split: split)
            if cells.isEmpty { continue }
            let names = Emotion.allCases.map(\.name)
            var m = [[Int]](repeating: [Int](repeating: 0, count: names.count), count: names.count)
            for c in cells {
                if let i = names.firstIndex(of: c.trueClass), let j = names.firstIndex(of: c.predictedClass) { m[i][j] = c.count }
            }
            let metrics = try reg.classMetrics(run: r.id, split: split)
            let recall = Dictionary(uniqueKeysWithValues: metrics.map { ($0.className, $0.recall) })
            out.append("\nconfusion (\(split == "val" ? "validation, best epoch" : "test"); rows true, columns predicted):")
            out.append(TextTable.render(["true \\ pred"] + names + ["recall"],
                names.indices.map { i in [names[i]] + m[i].map(String.init) + [pct(recall[names[i]] ?? nil)] },
                rightAligned: Set(1...(names.count + 1))))
            let summary = Metrics(confusion: m)
            out.append(String(format: "accuracy %.2f%%, balanced accuracy %.2f%%, macro-F1 %.4f; most confused: %@",
                              summary.accuracy * 100, summary.balancedAccuracy * 100, summary.macroF1, Compare.confusedSummary(m)))
        }
        let looks = try reg.testEvaluations(run: r.id)
        if !looks.isEmpty {
            out.append("\ntest evaluations:")
            for l in looks { out.append(String(format: "  %@  accuracy %.4f  macro-F1 %.4f  (%@)", l.evaluatedAt, l.accuracy, l.macroF1, l.trigger)) }
        }
        return out.joined(separator: "\n")
    }

    /// The provenance lines of `lab show`, under their column names; numbers
    /// as SQLite holds them (git_dirty 0 or 1).
    static func provenance(_ r: Run) -> [(String, String?)] {
        func s<T>(_ v: T?) -> String? { v.map { "\($0)" } }
        return [("started_at", r.startedAt), ("finished_at", r.finishedAt), ("train_seconds", s(r.trainSeconds)), ("git_commit", r.gitCommit),
                ("git_dirty", r.gitDirty.map { $0 ? "1" : "0" }), ("host", r.host), ("threads", s(r.threads)), ("blas", r.blas),
                ("build", r.build), ("dataset_source", r.datasetSource), ("dataset_root", r.datasetRoot),
                ("dataset_fingerprint", r.datasetFingerprint), ("label_mode", r.labelMode), ("n_train", s(r.nTrain)), ("n_val", s(r.nVal)),
                ("n_test", s(r.nTest)), ("params", s(r.params))]
    }
}

public enum TestCommand {
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
            throw Failure(.registry, "no experiment or run \(target) in \(reg.path)\(known.isEmpty ? "" : " (experiments: \(known.joined(separator: ", ")))")")
        }
        guard r.status == .completed else { throw Failure(.registry, "run \(r.id) is \(r.status); only completed runs are evaluated on test") }
        return [r]
    }

    public static func evaluate(_ reg: Registry, _ row: RunRow, data: String?, threads: Int) throws {
        let spec = try row.resolvedSpec()
        let prepared = try row.prepareData(spec: spec, data: data, threads: threads, reporter: .silent)
        guard let best = try reg.checkpoint(run: row.id, kind: .best) else { throw Failure(.registry, "run \(row.id) has no best checkpoint") }
        let (model, _) = try Engine.Model.load(checkpoint: [UInt8](best.data), threads: threads)
        let runner = Runner(registry: reg, reporter: Reporter(status: { _ in }, log: { FileHandle.standardError.write(Data(("\($0)\n").utf8)) }))
        try runner.testEvaluation(runID: row.id, model: model, checkpointSHA: best.sha256, data: prepared, batch: spec.train.batchSize, trigger: "lab test")
    }
}
