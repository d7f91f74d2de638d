import Engine
import Explain
import Faces
import Foundation
import LabRandom
import Registry

public struct ExplainOptions: Sendable {
    public var methods: [CAMMethod] = CAMMethod.allCases
    public var layer: String?
    public var split = "val"
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
        guard let best = try reg.checkpoint(run: row.id, kind: .best) else { throw RegistryError("run \(row.id) has no checkpoint yet") }
        let (model, meta) = try Model.load(checkpoint: [UInt8](best.data), threads: o.threads)
        let explainer = try Explainer(model: model, layer: o.layer)
        let S = model.imageSize
        let normalization = meta["lab.normalization"].flatMap { try? JSONDecoder().decode(Normalization.self, from: Data($0.utf8)) } ?? Normalization()
        let names = Emotion.allCases.map(\.name)

        // The images: a run's split, or files given by path.
        let set: FaceSet, indices: [Int], trueClasses: [Int?], split: String
        if !o.imagePaths.isEmpty {
            var imgs = [RGBImage]()
            for p in o.imagePaths {
                guard let d = FileManager.default.contents(atPath: p) else { throw DataError("\(p): no such image") }
                do { imgs.append(try JPEG.decode([UInt8](d))) } catch { throw DataError("\(p): \(error)") }
            }
            set = FaceSet.inMemory(imgs, classes: imgs.map { _ in 0 }, imageSize: S, names: o.imagePaths.map { ($0 as NSString).lastPathComponent })
            indices = Array(0..<imgs.count); trueClasses = imgs.map { _ in nil }; split = "files"
        } else {
            let data = try row.prepareData(spec: try row.resolvedSpec(), data: o.data, threads: o.threads, reporter: reporter)
            let pool = o.split == "test" ? data.test : data.validation
            if o.split == "test" { reporter.log("note: explaining test images shows test predictions; model selection belongs on validation") }
            // An even spread over the split, so every class tends to appear.
            let n = min(o.images, pool.count)
            indices = (0..<n).map { pool[$0 * pool.count / max(n, 1)] }
            set = data.set; trueClasses = indices.map { data.set.classes[$0] }; split = o.split
        }
        let targetFor: (Int?) throws -> Int? = { truth in
            switch o.targetClass {
            case "predicted": return nil
            case "true": return truth
            default:
                guard let e = Emotion(name: o.targetClass) else { throw ExplainError("--class must be predicted, true or one of \(names.joined(separator: ", "))") }
                return e.rawValue
            }
        }

        // Maps, 16 images per backward.
        var x = [Float](repeating: 0, count: indices.count * S * S * 3)
        var t = [Float](repeating: 0, count: indices.count * Emotion.count)
        Augmenter.assemble(x: &x, targets: &t, set: set, indices: indices[...], augmentation: nil, labelMode: .hard(smoothing: 0),
                           normalization: normalization, seed: 0)
        var maps = [CAMMethod: [[Float]]](), targets = [Int](), predicted = [Int](), probs = [Float]()
        var start = 0
        while start < indices.count {
            let n = min(16, indices.count - start)
            let r = x.withUnsafeBufferPointer { p in
                explainer.explain(p.baseAddress! + start * S * S * 3, N: n, targets: try! (start..<(start + n)).map { try targetFor(trueClasses[$0]) },
                                  methods: o.methods)
            }
            for m in o.methods { maps[m, default: []] += r.maps[m]! }
            targets += r.targets
            for k in 0..<n {
                predicted.append(argmax(r.probabilities[(k * Emotion.count)..<((k + 1) * Emotion.count)]))
            }
            probs += r.probabilities
            start += n
            reporter.status("explaining \(start)/\(indices.count)")
        }

        // Scores against the expressive regions, with chance baselines.
        let masks: [[UInt8]]
        let maskSource: String
        if let m = set.masks {
            masks = indices.map { Array(m[($0 * S * S)..<(($0 + 1) * S * S)]) }; maskSource = "masks"
        } else {
            masks = indices.map { _ in Localization.templateMask(S) }; maskSource = "template"
        }
        let maskArea = masks.reduce(0.0) { $0 + Double($1.filter { $0 >= 128 }.count) } / Double(max(1, masks.count * S * S))
        var rng = RNG(seed: 17)
        var allMaps = maps.map { ($0.key.rawValue, $0.value) }.sorted { $0.0 < $1.0 }
        allMaps.append(("center_prior", indices.map { _ in Localization.centerPrior(S) }))
        allMaps.append(("random", indices.map { _ in Localization.randomMap(S, rng: &rng) }))
        let faith = Faithfulness(model: model)
        let images = (0..<indices.count).map { Array(x[($0 * S * S * 3)..<(($0 + 1) * S * S * 3)]) }
        let baselines = images.map { Faithfulness.blurred($0, S: S) }
        var rows = [Explanation]()
        for (method, ms) in allMaps {
            for (k, i) in indices.enumerated() {
                let f = faith.scores(image: images[k], baseline: baselines[k], map: ms[k], target: targets[k])
                rows.append(.init(runId: row.id, method: method, layer: explainer.layer, split: split, image: set.names[i],
                                  targetClass: names[targets[k]], predictedClass: names[predicted[k]],
                                  trueClass: trueClasses[k].map { names[$0] } ?? "unknown",
                                  energyInMask: Double(Localization.energyInMask(ms[k], masks[k])),
                                  pointingHit: Localization.pointingHit(ms[k], masks[k]),
                                  deletionAuc: Double(f.deletionAUC), insertionAuc: Double(f.insertionAUC), confidenceDrop: Double(f.confidenceDrop)))
            }
            reporter.status("scoring \(method)")
        }

        // Cascading randomization: trained-model maps must not survive re-initialization.
        var randomization = [String: [(String, Double)]]()
        let nr = min(o.randomizationImages, indices.count)
        if nr > 0 {
            let copy = try Model.load(checkpoint: [UInt8](best.data), threads: o.threads).model
            let check = try x.withUnsafeBufferPointer {
                try CascadingRandomization.run(copy: copy, layer: explainer.layer, x: $0.baseAddress!, N: nr,
                                               targets: Array(targets.prefix(nr)), trainedMaps: maps, methods: o.methods)
            }
            randomization = check.correlations
            // The fully re-initialized model, scored the same way, says what training added.
            let faithU = Faithfulness(model: check.untrained)
            for m in o.methods {
                for k in 0..<nr {
                    let i = indices[k], map = check.untrainedMaps[m]![k]
                    let f = faithU.scores(image: images[k], baseline: baselines[k], map: map, target: targets[k])
                    rows.append(.init(runId: row.id, method: "\(m.rawValue) untrained", layer: explainer.layer, split: split, image: set.names[i],
                                      targetClass: names[targets[k]], predictedClass: names[predicted[k]],
                                      trueClass: trueClasses[k].map { names[$0] } ?? "unknown",
                                      energyInMask: Double(Localization.energyInMask(map, masks[k])),
                                      pointingHit: Localization.pointingHit(map, masks[k]),
                                      deletionAuc: Double(f.deletionAUC), insertionAuc: Double(f.insertionAUC), confidenceDrop: Double(f.confidenceDrop)))
                }
                allMaps.append(("\(m.rawValue) untrained", []))
            }
        }

        if split != "files" {
            try reg.recordExplanations(run: row.id, layer: explainer.layer, split: split, maskSource: maskSource, maskArea: maskArea,
                                       rows: rows, randomization: randomization)
        }

        // Overlays and a contact sheet.
        var outURL: URL?
        if o.writeImages, let out = o.out ?? (split == "files" ? "explain-\(row.id.prefix(10))" : "explain-\(row.id.prefix(10))-\(split)") as String? {
            let dir = URL(fileURLWithPath: out)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            var sheetRows = [[RGBImage]](), correct = [Bool](), index = ["row,image,true_class,predicted_class,target_class"]
            for (k, i) in indices.enumerated() {
                let face = Overlay.face(x[(k * S * S * 3)..<((k + 1) * S * S * 3)], S: S, normalization: normalization)
                var tiles = [face]
                let stem = (set.names[i] as NSString).deletingPathExtension
                for m in CAMMethod.allCases where maps[m] != nil {
                    let ov = Overlay.blend(face, maps[m]![k])
                    tiles.append(ov)
                    try Data(JPEG.encode(ov, quality: 92)).write(to: dir.appendingPathComponent("\(stem)_\(m.rawValue).jpg"))
                }
                sheetRows.append(tiles)
                correct.append(trueClasses[k].map { $0 == predicted[k] } ?? true)
                index.append("\(k + 1),\(set.names[i]),\(trueClasses[k].map { names[$0] } ?? "unknown"),\(names[predicted[k]]),\(names[targets[k]])")
            }
            try Data(JPEG.encode(Overlay.sheet(faces: sheetRows, correct: correct, perRow: 4), quality: 92)).write(to: dir.appendingPathComponent("contact_sheet.jpg"))
            try Data((index.joined(separator: "\n") + "\n").utf8).write(to: dir.appendingPathComponent("contact_sheet.csv"))
            outURL = dir
        }

        // Summary.
        var lines = ["run \(row.id) (\(row.experiment)), layer \(explainer.layer), \(indices.count) \(split) images, regions from \(maskSource) (\(String(format: "%.1f", 100 * maskArea))% of pixels)", ""]
        let table = allMaps.map { method, _ -> [String] in
            let rs = rows.filter { $0.method == method }
            func mean(_ f: (Explanation) -> Double) -> String { String(format: "%.3f", rs.map(f).reduce(0, +) / Double(max(1, rs.count))) }
            return [method, mean { $0.energyInMask }, mean { $0.pointingHit ? 1 : 0 }, mean { $0.deletionAuc }, mean { $0.insertionAuc }, mean { $0.confidenceDrop }]
        }
        lines.append(TextTable.render(["map", "energy in regions", "pointing hit", "deletion AUC (low)", "insertion AUC (high)", "drop @top20% (low)"], table, rightAligned: [1, 2, 3, 4, 5]))
        for v in verdicts(rows, methods: o.methods) { lines.append(""); lines.append(v.text) }
        for (m, stages) in randomization.sorted(by: { $0.key < $1.key }) {
            lines.append("")
            lines.append("randomization check (\(m)): rank correlation with the trained maps as layers are re-initialized top-down")
            lines.append("  " + stages.map { "\($0.0) \(String(format: "%.2f", $0.1))" }.joined(separator: " -> "))
        }
        if let outURL { lines.append(""); lines.append("overlays and contact sheet (input, Grad-CAM, Grad-CAM++; green frame = correct): \(outURL.path)/contact_sheet.jpg") }
        return Report(text: lines.joined(separator: "\n"), outDirectory: outURL)
    }
}

extension ExplainRunner {
    /// Each CAM method against the centre prior on the same faces (rows
    /// of both are in image order, one per explained face).
    static func verdicts(_ rows: [Explanation], methods: [CAMMethod]) -> [PriorVerdict] {
        let prior = rows.filter { $0.method == "center_prior" }
        return methods.compactMap { m in
            let mine = rows.filter { $0.method == m.rawValue }
            guard mine.count == prior.count else { return nil }
            return PriorVerdict(method: m.rawValue, pairs: zip(mine, prior).map {
                .init(energy: $0.energyInMask, priorEnergy: $1.energyInMask, hit: $0.pointingHit, priorHit: $1.pointingHit)
            })
        }
    }
}
