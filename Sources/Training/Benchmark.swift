import Engine
import Explain
import Failures
import Faces
import Foundation
import LabRandom
import Specs
import Synthetic

/// `lab bench`: the baseline model, or any spec's, on random data, timed step by step.
public struct BenchmarkResult: Sendable {
    public struct Layer: Sendable { public let name: String; public let forward: Double; public let backward: Double }
    public var modelName = "baseline"
    public var config = ModelConfig()
    public var imageSize = 64
    public var threads = 0
    public var batch = 0
    public var buildConfiguration = ""
    public var convolution = ""
    public var blas = ""
    public var kernels = ""
    public var cpu = ""
    public var parameters = 0
    public var forwardGFLOPPerImage = 0.0
    public var trainImagesPerSecond = 0.0
    public var inferenceImagesPerSecond = 0.0
    public var latencyMilliseconds = 0.0
    public var layers: [Layer] = []   // seconds per training step
    public var stepSeconds = 0.0
    public var explainLayer = ""
    public var gradCAMMillisecondsPerImage = 0.0  // Grad-CAM and Grad-CAM++ at the last block's output, batch 64
    public var decodeImagesPerSecond = 0.0     // JPEG decode + antialiased resize 100 -> 64, one thread
    public var assemblyImagesPerSecond = 0.0   // augmented batch assembly (warp + normalize), one thread
    /// Share of a training step the data pipeline would cost if it were not overlapped.
    public var dataShareOfStep: Double { (Double(batch) / assemblyImagesPerSecond) / stepSeconds }

    /// Training costs about three forwards (forward, input and weight gradients).
    public var trainGFLOPPerSecond: Double { 3 * forwardGFLOPPerImage * trainImagesPerSecond }
    public var inferenceGFLOPPerSecond: Double { forwardGFLOPPerImage * inferenceImagesPerSecond }
}

public enum Benchmark {
    public static func run(config: ModelConfig = ModelConfig(), modelName: String = "baseline", imageSize: Int = 64, batch: Int = 64,
                           steps: Int = 8, threads: Int, winograd: Bool = true,
                           progress: (String) -> Void = { _ in }) -> (result: BenchmarkResult, model: Model) {
        let model = Model(config: config, imageSize: imageSize, threads: threads)
        model.winograd = winograd
        var rng = RNG(seed: 1)
        model.initialize(rng: &rng)
        let x = (0..<(batch * imageSize * imageSize * 3)).map { _ in rng.uniform(-1, 1) }

        var r = BenchmarkResult()
        r.modelName = modelName; r.config = config; r.imageSize = imageSize
        r.threads = threads; r.batch = batch; r.buildConfiguration = engineBuildConfiguration
        r.convolution = winograd ? "Winograd F(4x4,3x3) where C >= 16 (F(2x2) where H or W is not a multiple of 4), im2col "
            + "elsewhere" : "im2col + GEMM only"
        r.blas = BLAS.config; r.kernels = BLASKernels.summary(); r.cpu = BLASKernels.cpuModel; r.parameters = model.parameterCount
        r.forwardGFLOPPerImage = config.forwardFLOPs(imageSize: imageSize) / 1e9
        training(model, x: x, batch: batch, steps: steps, rng: &rng, into: &r, progress: progress)
        progress("inference")
        r.inferenceImagesPerSecond = Double(batch) / medianTime(runs: steps,
                                                                warmup: 1) { model.forward(x, N: batch, training: false, rng: &rng) }
        progress("latency")
        let single = Model(config: config, imageSize: imageSize, threads: threads)
        single.winograd = winograd
        for (a, b) in zip(single.parameters, model.parameters) { a.value.copy(from: b.value) }
        r.latencyMilliseconds = 1000 * medianTime(runs: 4 * steps, warmup: 2) { single.forward(x, N: 1, training: false, rng: &rng) }
        progress("Grad-CAM")
        // The last block's output, where PyTorch's hook sits (bench_torch.py): the last
        // convolution's activation unless attention or a projection comes after it.
        let last = model.blocks.last!
        let explainer = try! Explainer(model: model, layer: last.se != nil || last.cbam != nil || last.shortcut != nil ? last.name : nil)
        r.explainLayer = explainer.layer
        r.gradCAMMillisecondsPerImage = 1000 * medianTime(runs: max(2, steps / 2), warmup: 0) {
            _ = explainer.explain(x, N: batch, targets: Array(repeating: nil, count: batch), methods: CAMMethod.allCases)
        } / Double(batch)
        progress("data pipeline")
        dataPipeline(imageSize: imageSize, batch: batch, steps: steps, classes: config.classes, into: &r)
        return (r, model)
    }

    /// Median seconds of `runs` calls after `warmup` untimed ones.
    static func medianTime(runs: Int, warmup: Int, _ body: () -> Void) -> Double {
        for _ in 0..<warmup { body() }
        return median((0..<runs).map { _ in let t0 = now(); body(); return now() - t0 })
    }

    /// Training steps (forward, loss, backward, Adam) with the per-layer profile.
    static func training(_ model: Model, x: [Float], batch: Int, steps: Int, rng: inout RNG, into r: inout BenchmarkResult,
                         progress: (String) -> Void) {
        let classes = model.config.classes
        let adam = Adam(parameters: model.parameters, config: AdamConfig())
        var t = [Float](repeating: 0, count: batch * classes)
        for n in 0..<batch { t[n * classes + n % classes] = 1 }
        func step() {
            model.forward(x, N: batch, training: true, rng: &rng)
            _ = model.loss(targets: t, classWeights: nil, N: batch)
            model.backwardLoss(targets: t, classWeights: nil, N: batch, training: true)
            adam.update()
        }
        progress("warm-up")
        step(); step()
        let profile = LayerProfile()
        model.profile = profile
        var times = [Double]()
        for i in 0..<steps {
            let t0 = now()
            step()
            times.append(now() - t0)
            progress("training step \(i + 1)/\(steps): \(String(format: "%.0f", Double(batch) / times.last!)) img/s")
        }
        model.profile = nil
        r.stepSeconds = median(times)
        r.trainImagesPerSecond = Double(batch) / r.stepSeconds
        r.layers = profile.order.map {
            .init(name: $0, forward: (profile.forward[$0] ?? 0) / Double(steps), backward: (profile.backward[$0] ?? 0) / Double(steps))
        }
    }

    /// JPEG decode + resize, and augmented batch assembly, one thread each.
    static func dataPipeline(imageSize: Int, batch: Int, steps: Int, classes: Int, into r: inout BenchmarkResult) {
        let faces = (0..<64).map { SyntheticFaces.render(seed: 1, index: $0) }
        let jpegs = faces.map { JPEG.encode(RGBImage(width: $0.size, height: $0.size, pixels: $0.rgb), quality: 90) }
        var t0 = now()
        var decoded = [RGBImage]()
        for j in jpegs { decoded.append(try! JPEG.decode(j).resized(width: imageSize, height: imageSize)) }
        r.decodeImagesPerSecond = Double(jpegs.count) / (now() - t0)
        let set = FaceSet.inMemory(decoded, classes: faces.map { _ in 0 }, imageSize: imageSize)
        var bx = [Float](repeating: 0, count: batch * imageSize * imageSize * 3), bt = [Float](repeating: 0, count: batch * classes)
        let order = (0..<batch).map { $0 % set.count }
        t0 = now()
        for s in 0..<steps {
            Augmenter.assemble(x: &bx, targets: &bt, set: set, indices: order[...], augmentation: AugmentSpec().augmentation,
                               labelMode: .hard(smoothing: 0), normalization: Normalization(), seed: UInt64(s))
        }
        r.assemblyImagesPerSecond = Double(batch * steps) / (now() - t0)
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }
    static func median(_ v: [Double]) -> Double { let s = v.sorted(); return s[s.count / 2] }
}

extension BenchmarkResult {
    /// What `lab bench` prints.
    public var text: String {
        let r = self
        func f(_ v: Double, _ d: Int = 1) -> String { String(format: "%.\(d)f", v) }
        var lines = [
            "lab bench — \(r.modelName) model (\(r.parameters) parameters, \(f(r.forwardGFLOPPerImage, 3)) GFLOP forward per "
                + "\(r.imageSize)x\(r.imageSize) image)",
            "build: \(r.buildConfiguration); threads: \(r.threads); BLAS: \(r.blas)",
            "CPU: \(r.cpu); \(r.kernels)",
            "convolutions: \(r.convolution)",
            "",
            "training   \(f(r.trainImagesPerSecond)) img/s  (batch \(r.batch), \(f(r.stepSeconds * 1000)) ms/step, "
                + "\(f(r.trainGFLOPPerSecond)) GFLOP/s)",
            "inference  \(f(r.inferenceImagesPerSecond)) img/s  (batch \(r.batch), \(f(r.inferenceGFLOPPerSecond)) GFLOP/s)",
            "latency    \(f(r.latencyMilliseconds, 2)) ms  (one image, eval)",
            "Grad-CAM   \(f(r.gradCAMMillisecondsPerImage, 2)) ms per image  (Grad-CAM and Grad-CAM++ at \(r.explainLayer), batch "
                + "\(r.batch))",
            "data       decode+resize \(f(r.decodeImagesPerSecond, 0)) img/s, augmented batch assembly "
                + "\(f(r.assemblyImagesPerSecond, 0)) img/s (one thread each; assembly = \(f(100 * r.dataShareOfStep)) % of a step, "
                    + "overlapped on a background thread)",
            "",
            "per layer, ms per training step:",
            "  layer              forward  backward   share",
        ]
        let total = r.layers.reduce(0) { $0 + $1.forward + $1.backward }
        for l in r.layers {
            lines.append("  " + l.name.padding(toLength: 17, withPad: " ", startingAt: 0)
                + String(format: "%9.2f %9.2f %6.1f%%", l.forward * 1000, l.backward * 1000,
                         100 * (l.forward + l.backward) / max(total, 1e-12)))
        }
        return lines.joined(separator: "\n")
    }
}

extension Benchmark {
    /// The benchmarked model as a safetensors checkpoint (`lab bench --checkpoint`).
    public static func writeCheckpoint(_ model: Model, to path: String) throws {
        do {
            try Data(model.checkpoint(metadata: ["lab.source": "lab bench"])).write(to: URL(fileURLWithPath: path))
        } catch {
            throw Failure(.io, "cannot write checkpoint \(path): \(error.localizedDescription)")
        }
    }
}
