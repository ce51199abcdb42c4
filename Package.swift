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
        // Wire format: pure Swift, no NIO, no Foundation.
        .target(name: "HorgosWire", swiftSettings: strictSettings),
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

        // Benchmarks and fuzzing (executables run by scripts in Benchmarks/ and Proto/fuzz).
        .executableTarget(
            name: "horgos-bench-wire",
            dependencies: ["HorgosWire"],
            path: "Benchmarks/WireBenchmark",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "horgos-bench-store",
            dependencies: ["HorgosStore", "HorgosWire", "CSQLite"],
            path: "Benchmarks/StoreBenchmark",
            swiftSettings: strictSettings
        ),
        // Child process of the store's crash test: writes through the store until it is killed.
        .executableTarget(
            name: "horgos-store-crash-child",
            dependencies: ["HorgosStore", "HorgosWire"],
            path: "Tests/StoreCrashChild",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "horgos-fuzz-wire",
            dependencies: ["HorgosWire"],
            path: "Benchmarks/WireFuzz",
            swiftSettings: strictSettings
        ),

        .testTarget(name: "HorgosWireTests", dependencies: ["HorgosWire"], swiftSettings: strictSettings),
        .testTarget(
            name: "HorgosStoreTests", dependencies: ["HorgosStore", "HorgosWire", "CSQLite"],
            swiftSettings: strictSettings),
        .testTarget(name: "HorgosServerTests", dependencies: ["HorgosServer"], swiftSettings: strictSettings),
    ]
)
