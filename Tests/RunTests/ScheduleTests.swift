import Foundation
import XCTest
@testable import Specs
@testable import Sweeps
@testable import Training

final class ScheduleTests: XCTestCase {
    func testCosineWarmsUpLinearlyThenDecaysToZero() {
        let s = LRSchedule(kind: .cosine, peak: 0.002, warmupEpochs: 1, epochs: 5)
        // 10 steps per epoch: warm-up over steps 1...10, cosine over 11...50.
        XCTAssertEqual(s.lr(step: 1, stepsPerEpoch: 10), 0.0002, accuracy: 1e-9)
        XCTAssertEqual(s.lr(step: 10, stepsPerEpoch: 10), 0.002, accuracy: 1e-9)
        XCTAssertEqual(s.lr(step: 30, stepsPerEpoch: 10), 0.001, accuracy: 1e-7, "half-way through the cosine")
        XCTAssertEqual(s.lr(step: 50, stepsPerEpoch: 10), 0, accuracy: 1e-9)
        XCTAssertEqual(s.lr(step: 80, stepsPerEpoch: 10), 0, accuracy: 1e-9, "past the end it stays at zero")
        let rates = (11...50).map { s.lr(step: $0, stepsPerEpoch: 10) }
        XCTAssertEqual(rates, rates.sorted(by: >), "monotone after the warm-up")
        XCTAssertEqual(LRSchedule(kind: .constant, peak: 3e-4, warmupEpochs: 0, epochs: 5).lr(step: 7, stepsPerEpoch: 10), 3e-4)
    }

    func testScheduleIsASpecKeyThatLeavesOlderSpecsHashesAlone() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lab-sched-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func write(_ name: String, _ text: String) -> String {
            let p = dir.appendingPathComponent(name).path
            _ = FileManager.default.createFile(atPath: p, contents: Data(text.utf8)); return p
        }
        let plain = try SpecLoader.load(write("a.json", #"{"name": "a"}"#))
        XCTAssertFalse(plain.resolvedJSON.contains("schedule"), "a spec at the defaults keeps the hash it had before the key existed")
        XCTAssertFalse(plain.resolvedJSON.contains("warmup_epochs"))
        let explicitDefault = try SpecLoader.load(write("b.json", #"{"name": "a", "train": {"schedule": "constant", "warmup_epochs": 0}}"#))
        XCTAssertEqual(explicitDefault.resolvedJSON, plain.resolvedJSON)
        let cosine = try SpecLoader.load(write("c.json", #"{"name": "c", "train": {"schedule": "cosine", "warmup_epochs": 2, "max_epochs": 10}}"#))
        XCTAssertEqual(cosine.train.lrSchedule, LRSchedule(kind: .cosine, peak: 3e-4, warmupEpochs: 2, epochs: 10))
        XCTAssertTrue(cosine.resolvedJSON.contains(#""schedule":"cosine""#))
        func error(_ text: String) -> String {
            do { _ = try SpecLoader.load(write("bad.json", text)); return "no error" } catch { return "\(error)" }
        }
        let bad = dir.appendingPathComponent("bad.json").path
        XCTAssertEqual(error(#"{"train": {"schedule": "step"}}"#), "\(bad): train.schedule: expected one of constant, cosine, got \"step\"")
        XCTAssertEqual(error(#"{"train": {"warmup_epochs": 5, "max_epochs": 5}}"#),
                       "\(bad): train.warmup_epochs: must be less than train.max_epochs (5)")
    }

    func testLabPicksWiderBLASKernelsOnlyWhereNothingChoseAndTheCPUCanRunThem() {
        let avx2: Set<String> = ["sse3", "avx", "avx2", "fma"]
        XCTAssertEqual(BLASKernels.betterCoreType(environment: [:], selected: "Prescott", flags: avx2), "Haswell")
        XCTAssertNil(BLASKernels.betterCoreType(environment: ["OPENBLAS_CORETYPE": "Prescott"], selected: "Prescott", flags: avx2),
                     "an explicit setting is kept")
        XCTAssertNil(BLASKernels.betterCoreType(environment: [:], selected: "Prescott", flags: ["sse3", "avx"]), "no AVX2: Prescott is right")
        XCTAssertNil(BLASKernels.betterCoreType(environment: [:], selected: "Haswell", flags: avx2))
        XCTAssertNil(BLASKernels.betterCoreType(environment: [BLASKernels.chosenByLabVariable: "1"], selected: "Prescott", flags: avx2),
                     "never twice: no exec loop")
        // What lab chose here is not handed to Slurm's compute nodes; a user's own setting is.
        let chosen = ["OPENBLAS_CORETYPE": "Haswell", BLASKernels.chosenByLabVariable: "1", "PATH": "/usr/bin"]
        XCTAssertEqual(BLASKernels.environmentForOtherMachines(chosen), ["PATH": "/usr/bin"])
        XCTAssertEqual(BLASKernels.environmentForOtherMachines(["OPENBLAS_CORETYPE": "Zen"]), ["OPENBLAS_CORETYPE": "Zen"])
        XCTAssertEqual(BLASKernels.summary(environment: ["OPENBLAS_CORETYPE": "Haswell"], selected: "Haswell", flags: avx2.union(["avx512f"])),
                       "OpenBLAS kernels: Haswell (pinned by OPENBLAS_CORETYPE=Haswell); the CPU also has AVX-512, which these kernels do not use")
    }
}
