// swift-tools-version: 6.1
import PackageDescription

/// Settings every Horgos target shares: Swift 6 language mode plus the upcoming features that keep
/// the code honest about existentials and imports.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "horgos",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "HorgosWire", targets: ["HorgosWire"]),
        .library(name: "HorgosStore", targets: ["HorgosStore"]),
        .executable(name: "horgosd", targets: ["horgosd"]),
        .executable(name: "horgosctl", targets: ["horgosctl"]),
        .executable(name: "horgos-sim", targets: ["horgos-sim"]),
    ],
    dependencies: [],
    targets: [
        // Wire format: Swift, no NIO, no Foundation; its one dependency is the tiny C target below.
        .target(name: "HorgosWire", dependencies: ["CHorgosCRC32C"], swiftSettings: strictSettings),
        // The SSE4.2 crc32 instruction for HorgosWire's CRC-32C (Swift cannot emit it); chosen at run time.
        .target(name: "CHorgosCRC32C"),
        // The system SQLite library.
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .target(name: "HorgosStore", dependencies: ["CSQLite", "HorgosWire"], swiftSettings: strictSettings),
        .target(name: "HorgosServer", dependencies: ["HorgosWire", "HorgosStore"], swiftSettings: strictSettings),
        .executableTarget(name: "horgosd", dependencies: ["HorgosServer"], swiftSettings: strictSettings),
        .executableTarget(name: "horgosctl", dependencies: ["HorgosServer"], swiftSettings: strictSettings),
        .executableTarget(name: "horgos-sim", dependencies: ["HorgosWire"], swiftSettings: strictSettings),

        // Benchmarks and fuzzing (executables run by Scripts/bench-wire.sh and Scripts/fuzz-wire.sh).
        .executableTarget(
            name: "horgos-bench-wire",
            dependencies: ["HorgosWire", "CHorgosCRC32C"],
            path: "Benchmarks/WireBenchmark",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "horgos-fuzz-wire",
            dependencies: ["HorgosWire"],
            path: "Benchmarks/WireFuzz",
            swiftSettings: strictSettings
        ),

        .testTarget(
            name: "HorgosWireTests",
            dependencies: ["HorgosWire", "CHorgosCRC32C", "HorgosAllocationCounter"],
            exclude: ["AllocationCounter"],
            swiftSettings: strictSettings
        ),
        // Counts this thread's malloc calls for HorgosWireTests' no-allocation test (no LD_PRELOAD).
        .target(name: "HorgosAllocationCounter", path: "Tests/HorgosWireTests/AllocationCounter"),
        .testTarget(name: "HorgosStoreTests", dependencies: ["HorgosStore"], swiftSettings: strictSettings),
        .testTarget(name: "HorgosServerTests", dependencies: ["HorgosServer"], swiftSettings: strictSettings),
    ]
)
