import ArgumentParser
import Engine
import Foundation
import Specs
import Training

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
            print(r.result.text)
            if torch {
                print("")
                let comparison = TorchComparison.run(r.result, threads: compute.threads, status: Progress.show)
                Progress.done()
                print(comparison)
            }
            if let checkpoint {
                try Benchmark.writeCheckpoint(r.model, to: checkpoint)
                print("checkpoint: \(checkpoint)")
            }
        }
    }
}
