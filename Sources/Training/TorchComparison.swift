import ChildProcess
import Engine
import Foundation

/// PyTorch on the same machine, measured right after lab in one command
/// (`lab bench --torch`): python/bench_torch.py with the same model (built by
/// python/lab_model.py from the same model keys), image size, batch and threads.
public enum TorchComparison {
    /// What bench_torch.py --json prints.
    struct Measured: Decodable {
        var torchVersion: String
        var trainImagesPerSecond: Double
        var inferenceImagesPerSecond: Double
        var latencyMs: Double
        var gradcamMsPerImage: Double
    }

    enum Outcome { case measured(Measured), skipped(String) }

    /// The ratio table, or one line saying why the comparison was skipped.
    public static func run(_ r: BenchmarkResult, threads: Int, status: (String) -> Void) -> String {
        let script = "python/bench_torch.py"
        guard FileManager.default.fileExists(atPath: script) else { return "PyTorch comparison skipped: \(script) not found (run from "
            + "the project folder)" }
        status("running PyTorch (\(script))")
        switch measure(script: script, threads: threads, batch: r.batch, config: r.config, imageSize: r.imageSize) {
        case .measured(let m): return table(r, m, threads: threads)
        case .skipped(let reason): return "PyTorch comparison skipped: \(reason)"
        }
    }

    static func measure(script: String, threads: Int, batch: Int, config: ModelConfig, imageSize: Int) -> Outcome {
        let json = String(decoding: (try? JSONEncoder.sorted.encode(config)) ?? Data("{}".utf8), as: UTF8.self)
        let arguments = [script, "--threads", "\(threads)", "--batch", "\(batch)", "--image-size", "\(imageSize)", "--config", json,
                         "--json"]
        guard let r = try? ChildProcess.run("python3", arguments) else { return .skipped("python3 not found") }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        guard r.succeeded, let line = r.output.split(separator: "\n").last,
              let m = try? decoder.decode(Measured.self, from: Data(line.utf8)) else {
            let noTorch = r.errors.contains("No module named 'torch'")
            return .skipped(noTorch ? "torch is not installed (pip install torch==2.13.0+cpu)" : "\(script) failed")
        }
        return .measured(m)
    }

    static func table(_ r: BenchmarkResult, _ m: Measured, threads: Int) -> String {
        let rows: [(String, Double, Double, Bool)] = [
            ("training img/s", r.trainImagesPerSecond, m.trainImagesPerSecond, true),
            ("inference img/s", r.inferenceImagesPerSecond, m.inferenceImagesPerSecond, true),
            ("latency ms", r.latencyMilliseconds, m.latencyMs, false),
            ("Grad-CAM ms/image", r.gradCAMMillisecondsPerImage, m.gradcamMsPerImage, false),
        ]
        var lines = ["PyTorch \(m.torchVersion), \(r.modelName) model (python/lab_model.py), \(threads) threads, batch \(r.batch), "
            + "channels_last (ratio > 1: lab is faster)"]
        lines.append("  measure               lab    PyTorch   ratio")
        for (name, lab, pt, higherBetter) in rows {
            let ratio = higherBetter ? lab / pt : pt / lab
            lines.append("  " + name.padding(toLength: 18, withPad: " ", startingAt: 0)
                         + String(format: "%8.1f %10.1f %7.2fx", lab, pt, ratio))
        }
        return lines.joined(separator: "\n")
    }
}
