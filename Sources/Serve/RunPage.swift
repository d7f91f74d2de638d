import Foundation
import Analysis
import Faces
import Registry

/// `/runs/<id>`: everything the registry holds about one run.
enum RunPage {
    static func render(_ site: Site, _ view: RunView) throws -> String {
        let (row, run, epochs) = (view.row, view.run, view.epochs)
        let live = row.status == .running
        var body = """
        <h1>\(HTML.esc(row.experiment)) <small>seed \(row.seed)</small></h1>
        <p class="summary">run <code>\(HTML.esc(row.id))</code>\(row.parent.map { " · extends \(HTML.esc($0))" } ?? "") · \
        status <b id="status" class="status-\(HTML.esc(row.status.rawValue))">\(HTML.esc(row.status.rawValue))</b> · \
        <span id="epochs">\(row.epochsRun)</span> epoch\(row.epochsRun == 1 ? "" : "s")\(heartbeat(row))\
        \(row.error.map { " · note: \(HTML.esc($0))" } ?? "")</p>
        \(summary(run))
        <h2>Learning curves</h2>
        <div class="figures" id="curves" data-epochs="\(epochs.count)" \
        \(live ? "data-live=\"/api/runs/\(HTML.url(row.id))/epochs\"" : "")>
        <figure id="loss" data-src="/runs/\(HTML.url(row.id))/loss.svg">\(curve(.loss, row, epochs))</figure>
        <figure id="accuracy" data-src="/runs/\(HTML.url(row.id))/accuracy.svg">\(curve(.accuracy, row, epochs))</figure>
        </div>
        """
        for ev in view.evaluations { body += try evaluation(site, row, ev) }
        body += explanations(view.explanations)
        body += testLooks(view.testLooks)
        body += provenance(run)
        body += "<h2>Resolved spec</h2><pre>\(HTML.esc(SpecFacts.pretty(row.specJSON)))</pre>"
        if view.hasBestCheckpoint {
            body += "<h2>Checkpoint</h2><p><a download "
                + "href=\"/runs/\(HTML.url(row.id))/checkpoint/best.safetensors\">best.safetensors</a> (epoch "
                    + "\(run.bestEpoch.map(String.init) ?? "-"); PyTorch <code>state_dict</code> names)</p>"
        }
        return HTML.page(title: "\(row.experiment) \(row.id.prefix(10))", body: body)
    }

    /// How long ago a running run last wrote (it is called dead after two minutes).
    static func heartbeat(_ row: RunRow) -> String {
        guard row.status == .running, let beat = Time.parse(row.heartbeatAt) else { return "" }
        return " · heartbeat \(Format.duration(Date().timeIntervalSince(beat))) ago"
    }

    enum Curve { case loss, accuracy }

    /// The report's figure for this one run.
    static func curve(_ kind: Curve, _ row: RunRow, _ epochs: [Epoch]) -> String {
        let runs = [Figures.RunCurve(seed: row.seed, epochs: epochs)]
        switch kind {
        case .loss: return Figures.loss(title: "\(row.experiment): loss", runs: runs)
        case .accuracy: return Figures.accuracy(title: "\(row.experiment): accuracy", runs: runs)
        }
    }

    static func summary(_ r: Run) -> String {
        HTML.table(["best epoch", "best val acc", "val macro-F1", "test acc", "test macro-F1", "train time", "params"],
                   [[r.bestEpoch.map(String.init) ?? "-", HTML.pct(r.bestValAccuracy), HTML.f(r.bestValMacroF1), HTML.pct(r.testAccuracy),
                     HTML.f(r.testMacroF1), r.trainSeconds.map { Format.duration($0) } ?? "-", r.params.map(String.init) ?? "-"]],
                   numeric: Set(0..<7))
    }

    /// Confusion matrices, per-class metrics and (validation) the most confident errors of one split.
    static func evaluation(_ site: Site, _ row: RunRow, _ ev: RunView.Evaluation) throws -> String {
        let (m, name) = (ev.matrix, ev.title)
        var s = "<h2>Confusion (\(name))</h2><div class=\"figures\">"
        s += "<figure>\(Figures.confusion(title: "\(row.experiment): \(name) (counts)", counts: m, normalized: false))</figure>"
        s += "<figure>\(Figures.confusion(title: "\(row.experiment): \(name) (row %)", counts: m, normalized: true))</figure></div>"
        s += "<h3>Per class (\(name))</h3>" + HTML.table(["class", "precision", "recall", "F1", "support"], Emotion.allCases.map { c in
            let x = ev.classes[c]
            return [HTML.esc(c.name), HTML.pct(x?.precision), HTML.pct(x?.recall), HTML.f(x?.f1, 3), x.map { "\($0.support)" } ?? "-"]
        }, numeric: [1, 2, 3, 4])
        if ev.split == .val { s += try errors(site, row) }
        return s
    }

    /// The most confident wrong predictions, with the face where the dataset is still at hand.
    /// Prediction indices of the most confident wrong validation predictions, most confident first.
    static func errorIndices(_ site: Site, _ id: String) throws -> [Int] {
        errorIndices(try site.registry.predictions(run: id, split: .val))
    }

    static func errorIndices(_ preds: [Prediction]) -> [Int] {
        Array(preds.indices.filter { preds[$0].trueClass != preds[$0].predictedClass }
            .sorted { preds[$0].confidence != preds[$1].confidence ? preds[$0].confidence > preds[$1].confidence : $0 < $1 }
            .prefix(12))
    }

    static func errors(_ site: Site, _ row: RunRow) throws -> String {
        let preds = try site.registry.predictions(run: row.id, split: .val)
        let wrong = errorIndices(preds)
        guard !wrong.isEmpty else { return "" }
        var missing = 0
        let rows: [[String]] = wrong.map { i in
            let p = preds[i]
            let found = site.images.file(root: row.datasetRoot, image: p.image) != nil
            if !found { missing += 1 }
            let img = found ? "<img src=\"/runs/\(HTML.url(row.id))/images/\(EvalSplit.val)/\(i)\" alt=\"\(HTML.esc(p.image))\" "
                + "width=\"72\" height=\"72\">" : "-"
            let cam = found ? "<img src=\"/runs/\(HTML.url(row.id))/gradcam/\(i)\" alt=\"Grad-CAM of \(HTML.esc(p.image))\" "
                + "height=\"72\" loading=\"lazy\">" : "-"
            return [img, cam, HTML.esc(p.image), HTML.esc(p.trueClass.name), HTML.esc(p.predictedClass.name), HTML.f(p.confidence, 3)]
        }
        let note = missing > 0 ? "<p class=\"summary\">\(missing) face\(missing == 1 ? "" : "s") not found under "
            + "\(HTML.esc(row.datasetRoot ?? "the run's dataset folder")).</p>" : ""
        let header = ["face", "Grad-CAM (predicted class)", "image", "true", "predicted", "confidence"]
        return "<h3>Most confident errors (validation)</h3>" + HTML.table(header, rows, id: "errors", numeric: [5]) + note
    }

    static func explanations(_ ex: [ExplanationSummary]) -> String {
        guard !ex.isEmpty else { return "" }
        return "<h2>Grad-CAM scores</h2><p class=\"summary\">Energy inside the expressive regions (a uniform map scores the region "
            + "area), pointing-game hits, deletion AUC (lower is more faithful), insertion AUC (higher is more faithful).</p>"
            + HTML.table(["split", "layer", "map", "images", "energy in regions", "region area", "pointing", "deletion AUC",
                          "insertion AUC"],
                         ex.map { e in
                             [HTML.esc(e.split.rawValue), HTML.esc(e.layer), HTML.esc(e.method.rawValue), "\(e.images)",
                              HTML.f(e.energyInMask, 3), HTML.f(e.maskArea, 3), HTML.f(e.pointingHitRate, 3), HTML.f(e.deletionAuc, 3),
                              HTML.f(e.insertionAuc, 3)]
                         },
                         numeric: Set(3...8))
    }

    static func testLooks(_ looks: [TestEvaluation]) -> String {
        guard !looks.isEmpty else { return "" }
        return "<h2>Test evaluations</h2>" + HTML.table(["evaluated", "accuracy", "macro-F1", "NLL", "ECE", "by"], looks.map { l in
            [HTML.esc(l.evaluatedAt), HTML.pct(l.accuracy), HTML.f(l.macroF1), HTML.f(l.nll), HTML.f(l.ece), HTML.esc(l.trigger.rawValue)]
        }, numeric: [1, 2, 3, 4])
    }

    static func provenance(_ r: Run) -> String {
        let commit = r.gitCommit.map { $0 + (r.gitDirty == true ? " (uncommitted changes)" : "") }
        return "<h2>Provenance</h2>" + HTML.definitions([
            ("git commit", commit), ("host", r.host), ("pid", r.pid.map(String.init)), ("threads", r.threads.map(String.init)),
            ("BLAS", r.blas), ("build", r.build), ("Swift", r.swiftVersion), ("started", r.startedAt), ("finished", r.finishedAt),
            ("dataset", r.datasetSource), ("dataset folder", r.datasetRoot), ("dataset fingerprint", r.datasetFingerprint),
            ("labels", r.labelMode),
            ("images train/val/test", [r.nTrain, r.nVal, r.nTest].map { $0.map(String.init) ?? "-" }.joined(separator: "/")),
        ])
    }
}
