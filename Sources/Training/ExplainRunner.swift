import Analysis
import Engine
import Explain
import Faces
import Failures
import Foundation
import LabRandom
import Registry
import Specs

public struct ExplainOptions: Sendable {
    public var methods: [CAMMethod] = CAMMethod.allCases
    public var layer: String?
    public var split = ExplainSpec.Split.val
    public var images = 32
    public var imagePaths: [String] = []
    public var targetClass = "predicted"    // predicted | true | a class name
    public var out: String?
    public var data: String?
    public var threads = 2
    public var randomizationImages = 8
    public var writeImages = true
    public init() {}
}

/// `lab explain`: maps, overlays, and the scores that say whether they mean anything.
public enum ExplainRunner {
    public struct Report {
        public var text: String
        public var outDirectory: URL?
    }

    public static func run(_ reg: Registry, run prefix: String, options o: ExplainOptions, reporter: Reporter) throws -> Report {
        let row = try RunRow.one(reg, prefix)
        guard let best = try reg.checkpoint(run: row.id, kind: .best) else {
            throw Failure(.registry, "run \(row.id) has no checkpoint yet")
        }
        let (model, meta) = try Model.load(checkpoint: [UInt8](best.data), threads: o.threads)
        let explainer = try Explainer(model: model, layer: o.layer)
        let normalization = Normalization(checkpointMetadata: meta)
        let faces = try subject(row, options: o, imageSize: model.imageSize, normalization: normalization, reporter: reporter)
        let computed = try maps(explainer, faces, options: o, reporter: reporter)
        var scored = score(model, faces, computed, reporter: reporter)
        let randomization = try randomizationCheck(checkpoint: [UInt8](best.data), explainer.layer, faces, computed, options: o,
                                                   into: &scored)
        if let split = faces.split {
            let rows = records(scored.rows, faces, computed, layer: explainer.layer, split: split)
            try reg.recordExplanations(run: row.id, layer: explainer.layer, split: split, maskSource: scored.maskSource,
                                       maskArea: scored.maskArea, rows: rows, randomization: randomization)
        }
        let defaultOut = "explain-\(row.id.prefix(10))" + (faces.split.map { "-\($0.rawValue)" } ?? "")
        let outURL = o.writeImages ? try writeOverlays(faces, computed, to: URL(fileURLWithPath: o.out ?? defaultOut)) : nil
        let text = summary(row, layer: explainer.layer, faces, scored, randomization: randomization, methods: o.methods, outURL: outURL)
        return Report(text: text, outDirectory: outURL)
    }

    /// The faces explained: a run's split, or files given by path, normalized as the run trained.
    struct Subject {
        var set: FaceSet
        var indices: [Int]
        var trueClasses: [Int?]
        var runID: String
        var split: EvalSplit?               // nil: files given by path
        var x: [Float]                      // (N, S, S, 3) normalized
        var S: Int
        var normalization: Normalization
        var count: Int { indices.count }
        func image(_ k: Int) -> ArraySlice<Float> { x[(k * S * S * 3)..<((k + 1) * S * S * 3)] }
    }

    static func subject(_ row: RunRow, options o: ExplainOptions, imageSize S: Int, normalization: Normalization,
                        reporter: Reporter) throws -> Subject {
        let set: FaceSet, indices: [Int], trueClasses: [Int?], split: EvalSplit?
        if !o.imagePaths.isEmpty {
            var imgs = [RGBImage]()
            for p in o.imagePaths {
                guard let d = FileManager.default.contents(atPath: p) else { throw Failure(.data, "\(p): no such image") }
                do { imgs.append(try JPEG.decode([UInt8](d))) } catch { throw Failure(.data, "\(p): \(error)") }
            }
            set = FaceSet.inMemory(imgs, classes: imgs.map { _ in 0 }, imageSize: S,
                                   names: o.imagePaths.map { ($0 as NSString).lastPathComponent })
            indices = Array(0..<imgs.count); trueClasses = imgs.map { _ in nil }; split = nil
        } else {
            let data = try row.prepareData(spec: try row.resolvedSpec(), data: o.data, threads: o.threads, reporter: reporter)
            let pool = o.split == .test ? data.test : data.validation
            if o.split == .test { reporter.log("note: explaining test images shows test predictions; model selection belongs on "
                + "validation") }
            // An even spread over the split, so every class tends to appear.
            let n = min(o.images, pool.count)
            indices = (0..<n).map { pool[$0 * pool.count / max(n, 1)] }
            set = data.set; trueClasses = indices.map { data.set.classes[$0] }; split = o.split
        }
        var x = [Float](repeating: 0, count: indices.count * S * S * 3)
        var t = [Float](repeating: 0, count: indices.count * Emotion.count)
        Augmenter.assemble(x: &x, targets: &t, set: set, indices: indices[...], augmentation: nil, labelMode: .hard(smoothing: 0),
                           normalization: normalization, seed: 0)
        return Subject(set: set, indices: indices, trueClasses: trueClasses, runID: row.id, split: split, x: x, S: S,
                       normalization: normalization)
    }

    /// The class each map explains: nil for the predicted one.
    static func target(_ choice: String, truth: Int?) throws -> Int? {
        switch choice {
        case "predicted": return nil
        case "true": return truth
        default:
            guard let e = Emotion(name: choice) else {
                throw Failure(.explain, "--class must be predicted, true or one of \(Emotion.allCases.map(\.name).joined(separator: ", "))")
            }
            return e.rawValue
        }
    }

    struct Computed {
        var maps = [CAMMethod: [[Float]]]()
        var targets = [Int](), predicted = [Int]()
    }

    /// Maps, 16 images per backward.
    static func maps(_ explainer: Explainer, _ f: Subject, options o: ExplainOptions, reporter: Reporter) throws -> Computed {
        let S = f.S
        let wanted = try f.trueClasses.map { try target(o.targetClass, truth: $0) }
        var c = Computed()
        var start = 0
        while start < f.count {
            let n = min(16, f.count - start)
            let r = f.x.withUnsafeBufferPointer { p in
                explainer.explain(p.baseAddress! + start * S * S * 3, N: n, targets: Array(wanted[start..<(start + n)]), methods: o.methods)
            }
            for m in o.methods { c.maps[m, default: []] += r.maps[m]! }
            c.targets += r.targets
            for k in 0..<n { c.predicted.append(argmax(r.probabilities[(k * Emotion.count)..<((k + 1) * Emotion.count)])) }
            start += n
            reporter.status("explaining \(start)/\(f.count)")
        }
        return c
    }

    /// One face's scores under one map.
    struct FaceScore {
        var method: ExplanationMethod
        var face: Int                       // index into the subject
        var energyInMask: Double, pointingHit: Bool, deletionAuc: Double, insertionAuc: Double, confidenceDrop: Double
    }

    struct Scored {
        var rows = [FaceScore]()
        var methods = [ExplanationMethod]()  // in table order
        var masks = [[UInt8]]()
        var maskSource = "", maskArea = 0.0
        var images = [[Float]](), baselines = [[Float]]()
    }

    /// Scores against the expressive regions, with chance baselines.
    static func score(_ model: Model, _ f: Subject, _ c: Computed, reporter: Reporter) -> Scored {
        let S = f.S
        var s = Scored()
        if let m = f.set.masks {
            s.masks = f.indices.map { Array(m[($0 * S * S)..<(($0 + 1) * S * S)]) }; s.maskSource = "masks"
        } else {
            s.masks = f.indices.map { _ in Localization.templateMask(S) }; s.maskSource = "template"
        }
        s.maskArea = s.masks.reduce(0.0) { $0 + Double($1.filter { $0 >= 128 }.count) } / Double(max(1, s.masks.count * S * S))
        var rng = RNG(seed: 17)
        var allMaps = c.maps.map { (method(of: $0.key), $0.value) }.sorted { $0.0.rawValue < $1.0.rawValue }
        allMaps.append((.centerPrior, f.indices.map { _ in Localization.centerPrior(S) }))
        allMaps.append((.random, f.indices.map { _ in Localization.randomMap(S, rng: &rng) }))
        let faith = Faithfulness(model: model)
        s.images = (0..<f.count).map { Array(f.image($0)) }
        s.baselines = s.images.map { Faithfulness.blurred($0, S: S) }
        for (method, ms) in allMaps {
            for k in 0..<f.count {
                s.rows.append(row(method, k, map: ms[k], mask: s.masks[k],
                                  faith.scores(image: s.images[k], baseline: s.baselines[k], map: ms[k], target: c.targets[k])))
            }
            s.methods.append(method)
            reporter.status("scoring \(method.rawValue)")
        }
        return s
    }

    /// The stored name of a CAM method's maps.
    static func method(of m: CAMMethod) -> ExplanationMethod {
        switch m {
        case .gradCAM: return .gradCAM
        case .gradCAMPlusPlus: return .gradCAMPlusPlus
        }
    }

    static func row(_ method: ExplanationMethod, _ k: Int, map: [Float], mask: [UInt8], _ scores: Faithfulness.Scores) -> FaceScore {
        FaceScore(method: method, face: k, energyInMask: Double(Localization.energyInMask(map, mask)),
                  pointingHit: Localization.pointingHit(map, mask), deletionAuc: Double(scores.deletionAUC),
                  insertionAuc: Double(scores.insertionAUC), confidenceDrop: Double(scores.confidenceDrop))
    }

    /// The registry's rows of a split's faces.
    static func records(_ rows: [FaceScore], _ f: Subject, _ c: Computed, layer: String, split: EvalSplit) -> [Explanation] {
        let classes = Emotion.allCases
        return rows.map { r in
            Explanation(runId: f.runID, method: r.method, layer: layer, split: split, image: f.set.names[f.indices[r.face]],
                        targetClass: classes[c.targets[r.face]], predictedClass: classes[c.predicted[r.face]],
                        trueClass: classes[f.trueClasses[r.face] ?? f.set.classes[f.indices[r.face]]],
                        energyInMask: r.energyInMask, pointingHit: r.pointingHit, deletionAuc: r.deletionAuc,
                        insertionAuc: r.insertionAuc, confidenceDrop: r.confidenceDrop)
        }
    }

    /// Cascading randomization: trained-model maps must not survive re-initialization.
    /// The fully re-initialized model, scored the same way, says what training added.
    static func randomizationCheck(checkpoint: [UInt8], _ layer: String, _ f: Subject, _ c: Computed, options o: ExplainOptions,
                                   into s: inout Scored) throws -> [ExplanationMethod: [(String, Double)]] {
        let nr = min(o.randomizationImages, f.count)
        guard nr > 0 else { return [:] }
        let copy = try Model.load(checkpoint: checkpoint, threads: o.threads).model
        let check = try f.x.withUnsafeBufferPointer {
            try CascadingRandomization.run(copy: copy, layer: layer, x: $0.baseAddress!, N: nr,
                                           targets: Array(c.targets.prefix(nr)), trainedMaps: c.maps, methods: o.methods)
        }
        let faithU = Faithfulness(model: check.untrained)
        for m in o.methods {
            let untrained = method(of: m).untrained!
            for k in 0..<nr {
                let map = check.untrainedMaps[m]![k]
                s.rows.append(row(untrained, k, map: map, mask: s.masks[k],
                                  faithU.scores(image: s.images[k], baseline: s.baselines[k], map: map, target: c.targets[k])))
            }
            s.methods.append(untrained)
        }
        return Dictionary(uniqueKeysWithValues: o.methods.compactMap { m in check.correlations[m.rawValue].map { (method(of: m), $0) } })
    }

    /// Overlays and a contact sheet.
    static func writeOverlays(_ f: Subject, _ c: Computed, to dir: URL) throws -> URL {
        let names = Emotion.allCases.map(\.name)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var sheetRows = [[RGBImage]](), correct = [Bool](), index = ["row,image,true_class,predicted_class,target_class"]
        for (k, i) in f.indices.enumerated() {
            let face = Overlay.face(f.image(k), S: f.S, normalization: f.normalization)
            var tiles = [face]
            let stem = (f.set.names[i] as NSString).deletingPathExtension
            for m in CAMMethod.allCases where c.maps[m] != nil {
                let ov = Overlay.blend(face, c.maps[m]![k])
                tiles.append(ov)
                try Data(JPEG.encode(ov, quality: 92)).write(to: dir.appendingPathComponent("\(stem)_\(m.rawValue).jpg"))
            }
            sheetRows.append(tiles)
            correct.append(f.trueClasses[k].map { $0 == c.predicted[k] } ?? true)
            let truth = f.trueClasses[k].map { names[$0] } ?? "unknown"
            index.append("\(k + 1),\(f.set.names[i]),\(truth),\(names[c.predicted[k]]),\(names[c.targets[k]])")
        }
        try Data(JPEG.encode(Overlay.sheet(faces: sheetRows, correct: correct, perRow: 4),
                             quality: 92)).write(to: dir.appendingPathComponent("contact_sheet.jpg"))
        try Data((index.joined(separator: "\n") + "\n").utf8).write(to: dir.appendingPathComponent("contact_sheet.csv"))
        return dir
    }

    static func summary(_ row: RunRow, layer: String, _ f: Subject, _ s: Scored, randomization: [ExplanationMethod: [(String, Double)]],
                        methods: [CAMMethod], outURL: URL?) -> String {
        var lines = ["run \(row.id) (\(row.experiment)), layer \(layer), \(f.count) \(f.split?.rawValue ?? "files") images, regions from "
                     + "\(s.maskSource) (\(String(format: "%.1f", 100 * s.maskArea))% of pixels)", ""]
        let table = s.methods.map { method -> [String] in
            let rs = s.rows.filter { $0.method == method }
            func mean(_ v: (FaceScore) -> Double) -> String { String(format: "%.3f", rs.map(v).reduce(0, +) / Double(max(1, rs.count))) }
            return [method.rawValue, mean { $0.energyInMask }, mean { $0.pointingHit ? 1 : 0 }, mean { $0.deletionAuc },
                    mean { $0.insertionAuc },
                    mean { $0.confidenceDrop }]
        }
        lines.append(TextTable.render(["map", "energy in regions", "pointing hit", "deletion AUC (low)", "insertion AUC (high)",
                                       "drop @top20% (low)"], table, rightAligned: [1, 2, 3, 4, 5]))
        for v in verdicts(s.rows, methods: methods.map(method(of:))) { lines.append(""); lines.append(v.text) }
        for (m, stages) in randomization.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            lines.append("")
            lines.append("randomization check (\(m.rawValue)): rank correlation with the trained maps as layers are re-initialized "
                + "top-down")
            lines.append("  " + stages.map { "\($0.0) \(String(format: "%.2f", $0.1))" }.joined(separator: " -> "))
        }
        if let outURL {
            lines.append("")
            lines.append("overlays and contact sheet (input, Grad-CAM, Grad-CAM++; green frame = correct): "
                + "\(outURL.path)/contact_sheet.jpg")
        }
        return lines.joined(separator: "\n")
    }
}

extension ExplainRunner {
    /// Each CAM method against the centre prior on the same faces (rows
    /// of both are in image order, one per explained face).
    static func verdicts(_ rows: [FaceScore], methods: [ExplanationMethod]) -> [PriorVerdict] {
        let prior = rows.filter { $0.method == .centerPrior }
        return methods.compactMap { m in
            let mine = rows.filter { $0.method == m }
            guard mine.count == prior.count else { return nil }
            return PriorVerdict(method: m.rawValue, pairs: zip(mine, prior).map {
                .init(energy: $0.energyInMask, priorEnergy: $1.energyInMask, hit: $0.pointingHit, priorHit: $1.pointingHit)
            })
        }
    }
}
