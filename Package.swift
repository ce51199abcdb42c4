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
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        // Wire format: pure Swift, no NIO, no Foundation.
        .target(name: "HorgosWire", swiftSettings: strictSettings),
        // The frame codec as a NIO ByteToMessageDecoder, shared by the daemon and the simulator.
        .target(
            name: "HorgosWireNIO",
            dependencies: ["HorgosWire", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        // The system SQLite library.
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .target(name: "HorgosStore", dependencies: ["CSQLite", "HorgosWire"], swiftSettings: strictSettings),
        .target(
            name: "HorgosServer",
            dependencies: [
                "HorgosWire", "HorgosWireNIO", "HorgosStore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(name: "horgosd", dependencies: ["HorgosServer"], swiftSettings: strictSettings),
        .executableTarget(name: "horgosctl", dependencies: ["HorgosServer"], swiftSettings: strictSettings),
        .target(
            name: "HorgosSimulator",
            dependencies: [
                "HorgosWire", "HorgosWireNIO",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "horgos-sim",
            dependencies: ["HorgosSimulator", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),

        // Benchmarks and fuzzing (executables run by scripts in Benchmarks/ and Proto/fuzz).
        .executableTarget(
            name: "horgos-bench-wire",
            dependencies: ["HorgosWire"],
            path: "Benchmarks/WireBenchmark",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "horgos-fuzz-wire",
            dependencies: ["HorgosWire"],
            path: "Benchmarks/WireFuzz",
            swiftSettings: strictSettings
        ),

        .testTarget(name: "HorgosWireTests", dependencies: ["HorgosWire"], swiftSettings: strictSettings),
        .testTarget(name: "HorgosStoreTests", dependencies: ["HorgosStore"], swiftSettings: strictSettings),
        .testTarget(name: "HorgosSimulatorTests", dependencies: ["HorgosSimulator"], swiftSettings: strictSettings),
        .testTarget(
            name: "HorgosServerTests",
            dependencies: [
                "HorgosServer",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)
