import Engine
import Foundation
import LabRandom
import XCTest
@testable import Specs

/// Checkpoints of every shipped architecture variant load in PyTorch with
/// strict=True through python/lab_model.py (python/load_checkpoint.py), and
/// PyTorch's eval logits for the same faces match lab's within 1e-4 with
/// the same predicted class for every face. Skipped where python3 has no torch.
final class TorchCheckpointTests: XCTestCase {
    var root: URL { URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent() }

    func python(_ args: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3"] + args
        p.currentDirectoryURL = root
        let out = Pipe()
        p.standardOutput = out; p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testShippedVariantCheckpointsLoadInPyTorchAndPredictTheSame() throws {
        guard (try? python(["-c", "import torch"]))?.status == 0 else { throw XCTSkip("python3 with torch not available") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lab-torch-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let S = 32, N = 16
        for name in ["baseline", "se", "cbam", "separable", "projection", "kernel_5", "avg_pool", "silu", "no_hidden"] {
            let spec = try SpecLoader.load(root.appendingPathComponent("experiments/\(name).json").path)
            let model = Model(config: spec.model.config, imageSize: S, threads: 2)
            var rng = RNG(seed: 3)
            model.initialize(rng: &rng)
            // Two Adam steps: weights and running statistics off their start.
            let adam = Adam(parameters: model.parameters, config: AdamConfig(lr: 1e-2))
            let x = (0..<(N * S * S * 3)).map { _ in rng.uniform(-1, 1) }
            var t = [Float](repeating: 0, count: N * 6)
            for n in 0..<N { t[n * 6 + n % 6] = 1 }
            for _ in 0..<2 {
                model.forward(x, N: N, training: true, rng: &rng)
                _ = model.loss(targets: t, classWeights: nil, N: N)
                model.backwardLoss(targets: t, classWeights: nil, N: N, training: true)
                adam.update()
            }
            let logits = Array(UnsafeBufferPointer(start: model.forward(x, N: N, training: false, rng: &rng), count: N * 6))
            let ckpt = dir.appendingPathComponent("\(name).safetensors"), inputs = dir.appendingPathComponent("\(name).inputs.safetensors")
            try Data(model.checkpoint(metadata: ["lab.run": name])).write(to: ckpt)
            try Data(Safetensors.encode(["input": SafeTensor(shape: [N, S, S, 3], floats: x), "logits": SafeTensor(shape: [N, 6], floats: logits)],
                                        metadata: [:])).write(to: inputs)
            let r = try python(["python/load_checkpoint.py", ckpt.path, "--compare", inputs.path])
            XCTAssertEqual(r.status, 0, "\(name): \(r.output)")
            XCTAssertTrue(r.output.contains("same class for 100.0% of images"), "\(name): \(r.output)")
        }
    }
}
