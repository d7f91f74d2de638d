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
        .target(name: "Engine", dependencies: ["CBLAS", "LabRandom"], swiftSettings: numeric),
        .target(
            name: "Faces",
            dependencies: ["CJPEG", "LabRandom", "Failures", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: numeric
        ),
        .target(
            name: "Registry",
            dependencies: ["Failures", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Crypto", package: "swift-crypto")]
        ),
        // The built-in synthetic face set (procedural renderer and its RAF-DB-layout writer),
        // apart from Faces so that the real-data pipeline stays easy to read.
        .target(name: "Synthetic", dependencies: ["Faces", "LabRandom", "Failures"], swiftSettings: numeric),
        .target(name: "Explain", dependencies: ["Engine", "Faces", "LabRandom", "Failures"], swiftSettings: numeric),
        .target(
            name: "LabKit",
            dependencies: ["Engine", "Faces", "Synthetic", "Explain", "Registry", "LabRandom", "Failures"],
            resources: [.embedInCode("Resources/analysis.ipynb")]    // in the binary: a copied lab still exports
        ),
        .target(
            name: "Serve",
            dependencies: [
                "LabKit", "Registry", "Faces", "Failures",
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "lab",
            dependencies: [
                "LabKit",
                "Serve",
                "Engine",
                "Synthetic",
                "Failures",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "CLITests"),
        .testTarget(name: "ServeTests", dependencies: ["Serve", "LabKit", "Registry", "Faces"]),
        .testTarget(name: "ExplainTests", dependencies: ["Explain", "Engine", "Faces", "LabRandom"], swiftSettings: numeric),
        .testTarget(
            name: "LabKitTests",
            dependencies: ["LabKit", "Registry", "Engine", "LabRandom", .product(name: "GRDB", package: "GRDB.swift")],
            exclude: ["Fixtures"]    // read by path: specs that extend each other by relative path
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
    swiftLanguageModes: [.v5]
)
