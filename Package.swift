// swift-tools-version:6.0
import PackageDescription

// The numeric targets are compiled with -Ounchecked in every configuration:
// `swift run lab ...` is a debug build, and unoptimized Swift is ~60x slower
// in hot loops. (-wmo would break the debug build, so it is not used.)
// -target-cpu haswell: AVX2 and FMA for the engine's own loops (batch norm,
// Winograd transforms, pooling, Adam), which otherwise compile for SSE2;
// every x86-64 CPU since 2013-2015 (Haswell, Zen) has them; one without
// AVX2 (QEMU's default CPU, some Celerons) would stop on an illegal
// instruction. It changes no result: Swift does not contract a * b + c
// into FMA on its own.
#if arch(x86_64)
let numeric: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-target-cpu", "haswell"])]
#else
let numeric: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"])]
#endif

let package = Package(
    name: "lab",
    products: [
        .executable(name: "lab", targets: ["lab"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .target(
            name: "CJPEG",
            linkerSettings: [.linkedLibrary("jpeg")]
        ),
        .target(name: "LabRandom", swiftSettings: numeric),
        // The one user-facing error type (a line naming the culprit), under every layer that refuses input.
        .target(name: "Failures"),
        // The one way lab starts another program (git, sbatch, python, its own children): swift-subprocess.
        .target(
            name: "ChildProcess",
            dependencies: [
                .product(name: "Subprocess", package: "swift-subprocess"), .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .target(name: "Engine", dependencies: ["CBLAS", "LabRandom"], swiftSettings: numeric),
        .target(
            name: "Faces",
            dependencies: ["CJPEG", "LabRandom", "Failures", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: numeric
        ),
        .target(
            name: "Registry",
            dependencies: [
                "Faces", "Failures", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The built-in synthetic face set (procedural renderer and its RAF-DB-layout writer),
        // apart from Faces so that the real-data pipeline stays easy to read.
        .target(name: "Synthetic", dependencies: ["Faces", "LabRandom", "Failures"], swiftSettings: numeric),
        .target(name: "Explain", dependencies: ["Engine", "Faces", "LabRandom", "Failures"], swiftSettings: numeric),
        // The spec files: JSON values, the Codable spec types and their defaults, the schema
        // every file is checked against, loading with `extends` and `--set`, and diffs.
        .target(name: "Specs", dependencies: ["Registry", "Engine", "Faces", "Failures"]),
        // Comparisons and their statistics, metrics, reports, figures (SVG), the views of runs
        // that `lab runs`, `lab show` and `lab serve` render, and the export.
        .target(
            name: "Analysis",
            dependencies: ["Specs", "Registry", "Engine", "Faces", "LabRandom", "Failures"],
            resources: [.embedInCode("Resources/analysis.ipynb")]    // in the binary: a copied lab still exports
        ),
        // A run from spec to registry rows: data, schedules, imbalance remedies, interruption,
        // provenance, the test look, explanations; the benchmark and the BLAS kernel choice.
        .target(
            name: "Training",
            dependencies: [
                "Specs", "Analysis", "Registry", "Engine", "Faces", "Synthetic", "Explain", "LabRandom", "Failures", "ChildProcess",
            ]
        ),
        // Many runs: plans, their state over registries and shards, the local pool, Slurm.
        .target(name: "Sweeps", dependencies: ["Specs", "Analysis", "Training", "Registry", "Failures", "ChildProcess"]),
        .target(
            name: "Serve",
            dependencies: [
                "Specs", "Analysis", "Training", "Sweeps", "Registry", "Faces", "Failures",
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "lab",
            dependencies: [
                "Specs", "Analysis", "Training", "Sweeps", "Serve", "Registry", "Explain", "Engine", "Faces", "Synthetic", "Failures",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "CLITests"),
        .testTarget(
            name: "ServeTests",
            dependencies: [
                "Serve", "Specs", "Analysis", "Training", "Sweeps", "Registry", "Faces", .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(name: "ExplainTests", dependencies: ["Explain", "Engine", "Faces", "LabRandom"], swiftSettings: numeric),
        .testTarget(
            name: "SpecsTests",
            dependencies: ["Specs", "Registry", "Engine"],
            exclude: ["Fixtures"]    // read by path: specs that extend each other by relative path
        ),
        .testTarget(name: "AnalysisTests", dependencies: ["Analysis", "Specs", "LabRandom"], exclude: ["Fixtures"]),
        // Tiny real runs: training, the registry rows they leave, merging, reports, sweep plans.
        .testTarget(
            name: "RunTests",
            dependencies: [
                "Specs", "Analysis", "Training", "Sweeps", "Registry", "Engine", "LabRandom", .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(
            name: "FacesTests",
            dependencies: ["Faces"],
            resources: [.copy("Fixtures")],
            swiftSettings: numeric
        ),
        .testTarget(
            name: "EngineTests",
            dependencies: ["Engine", "LabRandom"],
            resources: [.copy("Fixtures")],
            swiftSettings: numeric
        ),
    ],
    swiftLanguageModes: [.v6]
)
