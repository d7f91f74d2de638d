import Faces
import Foundation
import Registry

/// `lab report`: the weeks 3-4 analysis as Markdown with SVG figures, or as CSV tables.
public enum Report {
    static let classes = Emotion.allCases.map(\.name)

    struct ExperimentData {
        var name: String
        var runs: [Run]
        var epochs: [String: [Epoch]]
        var confusion: [[Int]]                  // validation, summed over runs
        var errors: [(run: String, image: String, truth: String, predicted: String, confidence: Double)]
        var ece: Double
        var testLooks: Int
    }

    static func load(_ reg: Registry) throws -> [ExperimentData] {
        let completed = try reg.completedRuns()
        return try Set(completed.map(\.experiment.name)).sorted().map { name in
            let runs = completed.filter { $0.experiment.name == name }.map(\.run)
            var epochs = [String: [Epoch]]()
            for r in runs { epochs[r.id] = try reg.epochs(run: r.id) }
            var cells = [ConfusionCell]()
            var errors = [(run: String, image: String, truth: String, predicted: String, confidence: Double)]()
            var confidence = [Double](), correct = [Bool]()
            for r in runs {
                cells += try reg.confusion(run: r.id, split: .val)
                for p in try reg.predictions(run: r.id, split: .val) {
                    confidence.append(p.confidence); correct.append(p.trueClass == p.predictedClass)
                    if p.trueClass != p.predictedClass {
                        errors.append((r.id, p.image, p.trueClass.name, p.predictedClass.name, p.confidence))
                    }
                }
            }
            let ece = Metrics.expectedCalibrationError(confidence: confidence, correct: correct)
            errors.sort { $0.confidence != $1.confidence ? $0.confidence > $1.confidence : ($0.image, $0.run) < ($1.image, $1.run) }
            return ExperimentData(name: name, runs: runs, epochs: epochs, confusion: Confusion.matrix(cells), errors: errors, ece: ece,
                                  testLooks: try reg.testLooks(experiment: name))
        }
    }

    static func slug(_ s: String) -> String { String(s.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" }) }
    static func f(_ v: Double?, _ d: Int = 3) -> String { v.map { String(format: "%.\(d)f", $0) } ?? "-" }

    static func confusedPairs(_ c: [[Int]]) -> [(String, String, Int)] {
        var pairs = [(String, String, Int)]()
        for i in 0..<c.count { for j in 0..<c.count where i != j && c[i][j] > 0 { pairs.append((classes[i], classes[j], c[i][j])) } }
        return pairs.sorted { $0.2 != $1.2 ? $0.2 > $1.2 : ($0.0, $0.1) < ($1.0, $1.1) }
    }

    /// Each named face of a run beside its Grad-CAM map, keyed by image name;
    /// empty when the run's data or checkpoint is not at hand. Training draws
    /// them (`GradCAMPictures.pairs`): it has the data and the model.
    public typealias Pictures = (_ registry: Registry, _ run: String, _ images: [String]) -> [String: RGBImage]

    /// Writes report.md and figures/ into `dir`; returns the Markdown path.
    /// `pictures` draws the Grad-CAM overlays of the most confident errors.
    public static func markdown(_ reg: Registry, to file: URL, pictures: Pictures) throws -> URL {
        let dir = file.deletingLastPathComponent(), figs = dir.appendingPathComponent("figures")
        try FileManager.default.createDirectory(at: figs, withIntermediateDirectories: true)
        let exps = try load(reg)
        var md = ["# lab report", "", "Registry: `\(reg.path)`. Validation split at each run's best epoch unless marked test.", ""]
        if exps.isEmpty {
            md.append("No completed runs yet: `lab run experiments/quickstart.json`.")
        } else {
            md += dataSection(exps)
            md += try comparisonSections(reg)
            let explanations = try reg.explanationAverages()
            md += try explanationSection(reg, explanations)
            for e in exps {
                md += try experimentSection(reg, e, explained: explanations.contains { $0.experiment == e.name }, figures: figs,
                                            pictures: pictures)
            }
        }
        try Data((md.joined(separator: "\n") + "\n").utf8).write(to: file)
        return file
    }

    /// Dataset summary, per distinct data a run used.
    static func dataSection(_ exps: [ExperimentData]) -> [String] {
        var md = ["## Data", "", "| source | fingerprint | labels | split | " + classes.joined(separator: " | ") + " | total |",
                  "|---|---|---|---|" + String(repeating: "---:|", count: classes.count + 1)]
        var seen = Set<String>()
        for e in exps { for r in e.runs {
            let fp = r.datasetFingerprint ?? ""
            guard !seen.contains(fp) else { continue }
            seen.insert(fp)
            let counts = ClassCounts(json: r.classCounts)?.bySplit ?? ClassCounts.splitNames.map { ($0, []) }
            for (split, c) in counts {
                md.append("| \(r.datasetSource ?? "-") | `\(fp.prefix(12))` | \(r.labelMode ?? "-") | \(split) | "
                          + (c.isEmpty ? classes.map { _ in "-" } : c.map(String.init)).joined(separator: " | ") + " | \(c.reduce(0, +)) |")
            }
        } }
        md.append("")
        return md
    }

    static func comparisonSections(_ reg: Registry) throws -> [String] {
        var md = [String]()
        for split in EvalSplit.allCases {
            let all = try Compare.load(reg, split: split)
            if all.isEmpty { continue }
            let rows = try Compare.rows(all)
            md += ["## Comparison (\(split.name))", "",
                   "Accuracy in %, Δ and MDE in points, against the experiment each one extends. "
                       + Compare.method.joined(separator: " "), "",
                   "| experiment | vs | runs | accuracy | balanced accuracy | macro-F1 | Δ accuracy [95% CI] | p | Holm p | P(A>B) "
                       + "[95% CI] | MDE | "
                       + Compare.shortClass.map { "recall \($0)" }.joined(separator: " | ") + " | most confused | params | FLOPs | "
                           + "best epoch | changes |",
                   "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + String(repeating: "---:|", count: 6)
                       + "---|---:|---:|---:|---|"]
            for r in rows {
                md.append("| \(r.experiment) | \(r.baseline ?? "-") | \(r.runs) | \(Compare.accuracy(r)) | "
                    + "\(Compare.pct(r.balancedAccuracy)) | \(f(r.macroF1)) | "
                          + "\(Compare.deltaString(r)) | \(Compare.pString(r.pValue)) | \(Compare.holmString(r, marker: "\\*")) | "
                          + "\(Compare.improveString(r)) | \(Compare.mdeString(r)) | "
                          + r.recall.map { Compare.pct($0) }.joined(separator: " | ") + " | \(Compare.confusedSummary(r.confusion)) | "
                              + "\(r.params) | \(Compare.flopsString(r.flops)) | \(Compare.epoch(r.bestEpoch)) | "
                                  + "\(r.changes.joined(separator: ", "))\(r.note.map { " **\($0)**" } ?? "") |")
            }
            if let note = Compare.holmFootnote(rows, marker: "\\*") { md += ["", note] }
            md.append("")
        }
        return md
    }

    static func explanationSection(_ reg: Registry, _ explanations: [ExplanationAverage]) throws -> [String] {
        guard !explanations.isEmpty else { return [] }
        var md = ["## Explanations", "",
                  "Share of map energy inside the expressive regions (uniform attention scores the region area), pointing-game hit "
                      + "rate, deletion AUC (lower is more faithful), insertion AUC (higher is more faithful). "
                  + "Against the centre prior on the same faces: Wilcoxon signed-rank on energy, exact McNemar on pointing; \"beats\" "
                      + "and \"worse\" at p < 0.05.", "",
                  "| experiment | layer | map | images | energy in regions | region area | pointing | deletion AUC | insertion AUC | "
                      + "energy vs centre prior | pointing vs centre prior |",
                  "|---|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
        for e in explanations {
            let verdict = try priorVerdict(reg, experiment: e.experiment, layer: e.layer, method: e.method)
            md.append("| \(e.experiment) | \(e.layer) | \(e.method) | \(e.images) | \(f(e.energyInMask)) | \(f(e.maskArea)) | "
                + "\(f(e.pointingHitRate)) | \(f(e.deletionAuc)) | \(f(e.insertionAuc)) | "
                      + "\(verdict?.energyCell ?? "-") | \(verdict?.pointingCell ?? "-") |")
        }
        md.append("")
        return md
    }

    /// Per experiment: curves, confusion, confused pairs, confident errors, calibration.
    static func experimentSection(_ reg: Registry, _ e: ExperimentData, explained: Bool, figures figs: URL,
                                  pictures: Pictures) throws -> [String] {
        let s = slug(e.name)
        var md = ["## \(e.name)", ""]
        md.append("\(e.runs.count) completed run\(e.runs.count == 1 ? "" : "s"); validation ECE \(f(e.ece)); test split evaluated "
            + "\(e.testLooks) time\(e.testLooks == 1 ? "" : "s")"
            + "\(e.testLooks > e.runs.count ? " (more than once per run: selection on test?)" : "").")
        md.append("")
        let curves = e.runs.map { r in Figures.RunCurve(seed: r.seed, epochs: e.epochs[r.id] ?? []) }
        try Data(Figures.loss(title: "\(e.name): loss", runs: curves).utf8).write(to: figs.appendingPathComponent("\(s)_loss.svg"))
        try Data(Figures.accuracy(title: "\(e.name): accuracy", runs: curves).utf8)
            .write(to: figs.appendingPathComponent("\(s)_accuracy.svg"))
        try Data(SVG.confusion(title: "\(e.name): validation confusion (counts)", classes: classes, counts: e.confusion,
                               normalized: false).utf8)
            .write(to: figs.appendingPathComponent("\(s)_confusion.svg"))
        try Data(SVG.confusion(title: "\(e.name): validation confusion (row %)", classes: classes, counts: e.confusion,
                               normalized: true).utf8)
            .write(to: figs.appendingPathComponent("\(s)_confusion_normalized.svg"))
        md += ["![loss](figures/\(s)_loss.svg) ![accuracy](figures/\(s)_accuracy.svg)", "",
               "![confusion](figures/\(s)_confusion.svg) ![confusion, row-normalized](figures/\(s)_confusion_normalized.svg)", ""]
        let pairs = confusedPairs(e.confusion).prefix(5)
        if !pairs.isEmpty {
            let listed = pairs.map { "\($0.0) → \($0.1) (\($0.2))" }.joined(separator: ", ")
            md += ["Most confused (true → predicted, summed over runs): " + listed, ""]
        }
        guard !e.errors.isEmpty else { return md }
        let overlays = explained ? errorOverlays(reg, Array(e.errors.prefix(8)), figures: figs, prefix: s, pictures: pictures) : [:]
        md += ["Most confident errors\(overlays.isEmpty ? "" : " (Grad-CAM of the predicted class)"):", "",
               "| image | true | predicted | confidence | run |\(overlays.isEmpty ? "" : " Grad-CAM |")",
               "|---|---|---|---:|---|\(overlays.isEmpty ? "" : "---|")"]
        for err in e.errors.prefix(8) {
            let ov = overlays[err.run + "/" + err.image].map { " ![\(err.image)](figures/\($0)) |" } ?? (overlays.isEmpty ? "" : " - |")
            md.append("| \(err.image) | \(err.truth) | \(err.predicted) | \(f(err.confidence)) | \(err.run.prefix(10)) |\(ov)")
        }
        md.append("")
        return md
    }

    /// A trained CAM method's paired verdict against the centre prior; nil for the chance maps and untrained models.
    static func priorVerdict(_ reg: Registry, experiment: String, layer: String, method: ExplanationMethod) throws -> PriorVerdict? {
        guard method.isTrainedCAM else { return nil }
        let pairs = try reg.pairedExplanationScores(experiment: experiment, layer: layer, method: method, against: .centerPrior)
        return PriorVerdict(method: method.rawValue,
                            pairs: pairs.map { .init(energy: $0.energy, priorEnergy: $0.otherEnergy, hit: $0.hit, priorHit: $0.otherHit) })
    }

    /// Grad-CAM overlays (predicted class, last conv) for the given errors,
    /// written into `figures`; keyed "run/image". Empty when the run's data
    /// is not at hand (RAF-DB moved): the table then goes without pictures.
    static func errorOverlays(_ reg: Registry,
                              _ errors: [(run: String, image: String, truth: String, predicted: String, confidence: Double)],
                              figures: URL, prefix: String, pictures: Pictures) -> [String: String] {
        var out = [String: String]()
        for run in errors.map(\.run).uniqued() {
            let mine = errors.filter { $0.run == run }
            let drawn = pictures(reg, run, mine.map(\.image))
            for e in mine {
                guard let both = drawn[e.image] else { continue }
                let name = "\(prefix)_error_\(run.prefix(10))_\(slug((e.image as NSString).deletingPathExtension)).jpg"
                if (try? Data(JPEG.encode(both, quality: 90)).write(to: figures.appendingPathComponent(name))) != nil {
                    out[run + "/" + e.image] = name
                }
            }
        }
        return out
    }

    /// The same tables as CSV files in `dir`.
    public static func csv(_ reg: Registry, to dir: URL) throws -> [URL] {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var written = [URL]()
        for split in EvalSplit.allCases {
            let all = try Compare.load(reg, split: split)
            if all.isEmpty && split == .test { continue }
            let url = dir.appendingPathComponent("comparison_\(split).csv")
            try Data(Compare.csv(try Compare.rows(all), split: split).utf8).write(to: url)
            written.append(url)
        }
        let exps = try load(reg)
        var pairs = ["experiment,true_class,predicted_class,count"]
        var errors = ["experiment,run_id,image,true_class,predicted_class,confidence"]
        var calib = ["experiment,runs,ece"]
        var conf = ["experiment,true_class,predicted_class,count"]
        for e in exps {
            for (t, p, n) in confusedPairs(e.confusion) { pairs.append("\(CSV.escape(e.name)),\(t),\(p),\(n)") }
            for err in e.errors.prefix(20) {
                let cells = [CSV.escape(e.name), err.run, CSV.escape(err.image), err.truth, err.predicted, f(err.confidence, 6)]
                errors.append(cells.joined(separator: ","))
            }
            calib.append("\(CSV.escape(e.name)),\(e.runs.count),\(f(e.ece, 6))")
            for i in 0..<classes.count {
                for j in 0..<classes.count { conf.append("\(CSV.escape(e.name)),\(classes[i]),\(classes[j]),\(e.confusion[i][j])") }
            }
        }
        for (name, lines) in [("confused_pairs", pairs), ("confident_errors", errors), ("calibration", calib), ("confusion_val", conf)] {
            let url = dir.appendingPathComponent("\(name).csv")
            try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: url)
            written.append(url)
        }
        return written
    }
}
