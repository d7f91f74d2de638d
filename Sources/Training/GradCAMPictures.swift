import Analysis
import Engine
import Explain
import Faces
import Foundation
import Registry
import Specs

/// The Grad-CAM pictures the report and the run page show beside a run's most confident errors.
public enum GradCAMPictures {
    /// Each named face of a run beside its Grad-CAM map (predicted class, last
    /// conv, the best checkpoint), keyed by image name; empty when the run's
    /// data or checkpoint is not at hand. `lab report` (Report.markdown's `pictures`) and `lab serve` draw
    /// the same pictures.
    public static func pairs(_ reg: Registry, run: String, images: [String]) -> [String: RGBImage] {
        guard let row = try? RunRow.one(reg, run), let spec = try? row.resolvedSpec(),
              let data = try? row.prepareData(spec: spec, data: nil, threads: 2, reporter: .silent),
              let best = try? reg.checkpoint(run: run, kind: .best),
              let (model, meta) = try? Engine.Model.load(checkpoint: [UInt8](best.data), threads: 2),
              let explainer = try? Explainer(model: model) else { return [:] }
        let normalization = Normalization(checkpointMetadata: meta)
        let indices = images.compactMap { data.set.names.firstIndex(of: $0) }
        guard indices.count == images.count, !indices.isEmpty else { return [:] }
        let S = data.set.imageSize
        var x = [Float](repeating: 0, count: indices.count * S * S * 3), t = [Float](repeating: 0, count: indices.count * Emotion.count)
        Augmenter.assemble(x: &x, targets: &t, set: data.set, indices: indices[...], augmentation: nil, labelMode: .hard(smoothing: 0),
                           normalization: normalization, seed: 0)
        let r = x.withUnsafeBufferPointer {
            explainer.explain($0.baseAddress!, N: indices.count, targets: indices.map { _ in nil }, methods: [.gradCAM])
        }
        var out = [String: RGBImage]()
        for (k, image) in images.enumerated() {
            let face = Overlay.face(x[(k * S * S * 3)..<((k + 1) * S * S * 3)], S: S, normalization: normalization)
            out[image] = Overlay.sheet(faces: [[face, Overlay.blend(face, r.maps[.gradCAM]![k])]], correct: [false], perRow: 1, scale: 1)
        }
        return out
    }
}
