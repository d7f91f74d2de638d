import ArgumentParser
import Engine
import Failures
import Foundation
import LabKit

extension Lab {
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure training and inference throughput of the baseline model, or a spec's, on random data.")

        @OptionGroup var compute: ComputeOptions

        @Option(help: ArgumentHelp("Benchmark this spec's model (its model section and image size) instead of the baseline.",
                                   discussion: "With --torch, PyTorch runs the same model, built by python/lab_model.py."),
                completion: .file())
        var spec: String?

        @Option(help: "Images per training batch (default: 64).")
        var batch = 64

        @Option(help: "Timed steps per measurement (the median is reported).")
        var steps = 8

        @Option(help: ArgumentHelp("Also write the benchmarked model as a safetensors checkpoint.",
                                   discussion: "python3 python/load_checkpoint.py FILE loads it into PyTorch."),
                completion: .file())
        var checkpoint: String?

        @Flag(help: "Convolutions by im2col + GEMM only (no Winograd), to see what Winograd buys.")
        var im2col = false

        @Flag(help: "Also run python/bench_torch.py (same model, batch and threads) and print lab/PyTorch ratios.")
        var torch = false

        func validate() throws {
            guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
            guard steps >= 1 else { throw ValidationError("--steps must be at least 1") }
        }

        func run() throws {
            var config = ModelConfig(), name = "baseline", imageSize = 64
            if let spec {
                let s = try SpecLoader.load(spec)
                config = s.model.config; name = s.name; imageSize = s.dataset.imageSize
            }
            let r = Benchmark.run(config: config, modelName: name, imageSize: imageSize, batch: batch, steps: steps,
                                  threads: compute.threads, winograd: !im2col, progress: Progress.show)
            Progress.done()
            print(BenchReport.text(r.result))
            if torch {
                print("")
                let comparison = TorchComparison.run(r.result, threads: compute.threads, status: Progress.show)
                Progress.done()
                print(comparison)
            }
            if let checkpoint {
                do {
                    try Data(r.model.checkpoint(metadata: ["lab.source": "lab bench"])).write(to: URL(fileURLWithPath: checkpoint))
                } catch {
                    throw Failure(.io, "cannot write checkpoint \(checkpoint): \(error.localizedDescription)")
                }
                print("checkpoint: \(checkpoint)")
            }
        }
    }
}

enum BenchReport {
    static func text(_ r: BenchmarkResult) -> String {
        func f(_ v: Double, _ d: Int = 1) -> String { String(format: "%.\(d)f", v) }
        var lines = [
            "lab bench — \(r.modelName) model (\(r.parameters) parameters, \(f(r.forwardGFLOPPerImage, 3)) GFLOP forward per \(r.imageSize)x\(r.imageSize) image)",
            "build: \(r.buildConfiguration); threads: \(r.threads); BLAS: \(r.blas)",
            "CPU: \(r.cpu); \(r.kernels)",
            "convolutions: \(r.convolution)",
            "",
            "training   \(f(r.trainImagesPerSecond)) img/s  (batch \(r.batch), \(f(r.stepSeconds * 1000)) ms/step, \(f(r.trainGFLOPPerSecond)) GFLOP/s)",
            "inference  \(f(r.inferenceImagesPerSecond)) img/s  (batch \(r.batch), \(f(r.inferenceGFLOPPerSecond)) GFLOP/s)",
            "latency    \(f(r.latencyMilliseconds, 2)) ms  (one image, eval)",
            "Grad-CAM   \(f(r.gradCAMMillisecondsPerImage, 2)) ms per image  (Grad-CAM and Grad-CAM++ at \(r.explainLayer), batch \(r.batch))",
            "data       decode+resize \(f(r.decodeImagesPerSecond, 0)) img/s, augmented batch assembly \(f(r.assemblyImagesPerSecond, 0)) img/s (one thread each; assembly = \(f(100 * r.dataShareOfStep)) % of a step, overlapped on a background thread)",
            "",
            "per layer, ms per training step:",
            "  layer              forward  backward   share",
        ]
        let total = r.layers.reduce(0) { $0 + $1.forward + $1.backward }
        for l in r.layers {
            lines.append("  " + l.name.padding(toLength: 17, withPad: " ", startingAt: 0)
                + String(format: "%9.2f %9.2f %6.1f%%", l.forward * 1000, l.backward * 1000, 100 * (l.forward + l.backward) / max(total, 1e-12)))
        }
        return lines.joined(separator: "\n")
    }
}
