// swift-tools-version: 6.1
import PackageDescription

/// Settings every Horgos target shares: Swift 6 language mode plus the upcoming features that keep
/// the code honest about existentials and imports.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// HorgosServer mixes Foundation with POSIX calls (stat, timespec, sockaddr_un). With
/// MemberImportVisibility, Swift 6.3 on Linux attributes those Glibc struct members to whichever
/// Clang module first included the header (CoreFoundation in release builds, CDispatch in debug
/// builds), so no set of imports compiles in both configurations; that target keeps the other rules.
let serverSettings: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

/// Library products of the dependencies, named once.
let nioCore: Target.Dependency = .product(name: "NIOCore", package: "swift-nio")
let nioPosix: Target.Dependency = .product(name: "NIOPosix", package: "swift-nio")
let nioHTTP1: Target.Dependency = .product(name: "NIOHTTP1", package: "swift-nio")
let nioTLS: Target.Dependency = .product(name: "NIOTLS", package: "swift-nio")
let nioEmbedded: Target.Dependency = .product(name: "NIOEmbedded", package: "swift-nio")
let nioExtras: Target.Dependency = .product(name: "NIOExtras", package: "swift-nio-extras")
let nioSSL: Target.Dependency = .product(name: "NIOSSL", package: "swift-nio-ssl")
let x509: Target.Dependency = .product(name: "X509", package: "swift-certificates")
let crypto: Target.Dependency = .product(name: "Crypto", package: "swift-crypto")
let asn1: Target.Dependency = .product(name: "SwiftASN1", package: "swift-asn1")
let configuration: Target.Dependency = .product(name: "Configuration", package: "swift-configuration")
let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
let metrics: Target.Dependency = .product(name: "Metrics", package: "swift-metrics")
let prometheus: Target.Dependency = .product(name: "Prometheus", package: "swift-prometheus")
let serviceLifecycle: Target.Dependency = .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let unixSignals: Target.Dependency = .product(name: "UnixSignals", package: "swift-service-lifecycle")
let systemPackage: Target.Dependency = .product(name: "SystemPackage", package: "swift-system")
let argumentParser: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")
let histogram: Target.Dependency = .product(name: "Histogram", package: "hdrhistogram-swift")
let swiftProtobuf: Target.Dependency = .product(name: "SwiftProtobuf", package: "swift-protobuf")
let yams: Target.Dependency = .product(name: "Yams", package: "Yams")
/// What every NIO TLS client or server target needs.
let nioTLSStack: [Target.Dependency] = [nioCore, nioPosix, nioSSL, nioTLS]

let package = Package(
    name: "horgos",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "HorgosWire", targets: ["HorgosWire"]),
        .library(name: "HorgosStore", targets: ["HorgosStore"]),
        .library(name: "HorgosGBT32960", targets: ["HorgosGBT32960"]),
        .executable(name: "horgosd", targets: ["horgosd"]),
        .executable(name: "horgosctl", targets: ["horgosctl"]),
        .executable(name: "horgos-sim", targets: ["horgos-sim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0", traits: ["YAML"]),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        // Already in the build through swift-configuration's YAML trait (same range); named here because the
        // strict configuration loader walks the file's keys itself (an unknown key is exit 78).
        .package(url: "https://github.com/jpsim/Yams", "5.4.0"..<"7.0.0"),
    ],
    targets: [
        // Wire format: Swift, no NIO, no Foundation; its one dependency is the tiny C target below.
        .target(name: "HorgosWire", dependencies: ["CHorgosCRC32C"], swiftSettings: strictSettings),
        // GB/T 32960.3 frames (Chinese EV remote monitoring): Swift, no NIO, no Foundation, like HorgosWire.
        .target(name: "HorgosGBT32960", dependencies: ["HorgosWire"], swiftSettings: strictSettings),
        // The SSE4.2 crc32 instruction for HorgosWire's CRC-32C (Swift cannot emit it); chosen at run time.
        .target(name: "CHorgosCRC32C"),
        // The frame codec as a NIO ByteToMessageDecoder, shared by the daemon and the simulator.
        .target(
            name: "HorgosWireNIO",
            dependencies: ["HorgosWire", nioCore],
            swiftSettings: strictSettings
        ),
        // The fleet PKI (CA, server, vehicle and gateway certificates), shared by daemon, CLI and simulator.
        .target(
            name: "HorgosPKI",
            dependencies: [
                "HorgosWire",
                x509,
                crypto,
                asn1,
            ],
            swiftSettings: strictSettings
        ),
        // PROXY protocol v2 header parser (issue 14): pure Swift, no NIO, so it is fuzzed on its own.
        .target(name: "HorgosProxyProtocol", dependencies: ["HorgosWire"], swiftSettings: strictSettings),
        // The system SQLite library.
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .target(
            name: "HorgosStore", dependencies: ["CSQLite", "HorgosWire", "HorgosGBT32960"], swiftSettings: strictSettings),
        // The system libcrypto (OpenSSL 3), for X.509 CRLs only; NIO-SSL's BoringSSL stays the TLS stack
        // (its symbols are prefixed CNIOBoringSSL_, so both link into one binary).
        .systemLibrary(
            name: "CHorgosLibcrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        // The daemon's configuration and revocation lists (deny list, X.509 CRLs): read by the daemon and
        // by horgosctl, which therefore does not link the daemon module.
        .target(
            name: "HorgosConfig",
            dependencies: ["HorgosWire", "HorgosPKI", "CHorgosLibcrypto", configuration, logging, systemPackage, yams],
            swiftSettings: strictSettings
        ),
        // Issue 20: a NATS and JetStream client on SwiftNIO (no build-time system library; README "Dependencies").
        .target(
            name: "HorgosNATS",
            dependencies: [nioCore, nioPosix, nioSSL, logging],
            swiftSettings: serverSettings
        ),
        // The stream record's generated SwiftProtobuf types (Proto/stream/horgos_stream_v1.proto; generated
        // once with protoc + protoc-gen-swift and committed, see Scripts/generate-stream-proto.sh).
        .target(name: "HorgosStreamFormat", dependencies: [swiftProtobuf], swiftSettings: strictSettings),
        // Issue 20: the journal's publisher to NATS JetStream, the standby follower, the record encoder.
        .target(
            name: "HorgosStream",
            dependencies: [
                "HorgosNATS", "HorgosStreamFormat", "HorgosStore", "HorgosWire", "HorgosGBT32960", swiftProtobuf,
                nioCore, nioPosix, nioSSL, logging, serviceLifecycle,
            ],
            swiftSettings: serverSettings
        ),
        // The admin endpoint's documents (/status, /reload, /fleet): encoded by the daemon, decoded by horgosctl.
        .target(
            name: "HorgosAdminAPI", dependencies: ["HorgosStore", "HorgosConfig"], swiftSettings: strictSettings),
        // The audit log of operator actions (issue 22): append-only, fsync'd, hash-chained; written by the
        // daemon and by horgosctl, verified by horgosctl audit --verify.
        .target(name: "HorgosAudit", dependencies: [crypto], swiftSettings: strictSettings),
        // The daemon's parts: the connection pipeline and its protocols, identity, admin endpoint, systemd glue.
        .target(
            name: "HorgosServer",
            dependencies: [
                "HorgosAdminAPI",
                "HorgosConfig",
                "HorgosAudit",
                "HorgosWire",
                "HorgosWireNIO",
                "HorgosPKI",
                "HorgosStore",
                "HorgosGBT32960",
                "HorgosProxyProtocol",
                nioHTTP1,
                nioExtras,
                x509,
                crypto,
                asn1,
                configuration,
                logging,
                metrics,
                prometheus,
                serviceLifecycle,
                systemPackage,
            ] + nioTLSStack,
            swiftSettings: serverSettings
        ),
        // The composition root: the daemon's services built from configuration, with readiness and reload
        // (a library, so tests build and run the same daemon in-process).
        .target(
            name: "HorgosDaemon",
            dependencies: [
                "HorgosServer", "HorgosAdminAPI", "HorgosConfig", "HorgosPKI", "HorgosStore", "HorgosProxyProtocol",
                "HorgosWire", "HorgosGBT32960", "HorgosAudit", "HorgosStream", "HorgosNATS",
                logging, metrics, prometheus, serviceLifecycle, unixSignals,
            ] + nioTLSStack,
            swiftSettings: serverSettings
        ),
        // The executable: parses the command line, loads the configuration, runs HorgosDaemon.
        .executableTarget(
            name: "horgosd",
            dependencies: ["HorgosDaemon", "HorgosServer", argumentParser, logging, unixSignals],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "horgosctl",
            dependencies: [
                "HorgosAdminAPI", "HorgosConfig", "HorgosStore", "HorgosPKI", "HorgosSimulator", "HorgosWire",
                "HorgosAudit",
                argumentParser,
                x509,
                nioCore,
                nioPosix,
                nioHTTP1,
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "HorgosSimulator",
            dependencies: [
                "HorgosWire", "HorgosWireNIO", "HorgosPKI", "HorgosGBT32960",
                histogram,
            ] + nioTLSStack,
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "horgos-sim",
            dependencies: [
                "HorgosSimulator", "HorgosPKI",
                argumentParser,
            ],
            swiftSettings: strictSettings
        ),

        // Benchmarks and fuzzing (executables run by Scripts/bench-wire.sh and Scripts/fuzz-wire.sh).
        .executableTarget(
            name: "horgos-bench-wire",
            dependencies: ["HorgosWire", "CHorgosCRC32C"],
            path: "Benchmarks/WireBenchmark",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "horgos-bench-store",
            dependencies: ["HorgosStore", "HorgosWire", "CSQLite", "HorgosBenchSupport", "HorgosGBT32960"],
            path: "Benchmarks/StoreBenchmark",
            swiftSettings: strictSettings
        ),
        // What the store and floor benchmarks share: the bare SQLite append loop.
        .target(
            name: "HorgosBenchSupport", dependencies: ["CSQLite", "HorgosWire"], path: "Benchmarks/Support",
            swiftSettings: strictSettings
        ),
        // The CPU floor of the ingest pipeline per record: TLS record decryption (NIO-SSL's BoringSSL),
        // frame parse + CRC, the store's bare append loop (issue 7; run by Benchmarks/loadrun.sh).
        .executableTarget(
            name: "horgos-bench-floor",
            dependencies: [
                "HorgosWire", "CSQLite", "HorgosBenchSupport", nioSSL,
            ],
            path: "Benchmarks/FloorBenchmark",
            swiftSettings: strictSettings
        ),
        // The per-frame cost of the event-loop path (issue 11): native or GB/T 32960 frames through the real
        // session pipeline on EmbeddedChannels with a fake store; counted with callgrind (see BENCHMARKS.md).
        .executableTarget(
            name: "horgos-bench-session",
            dependencies: [
                "HorgosServer", "HorgosStore", "HorgosWire", "HorgosWireNIO", "HorgosGBT32960",
                "HorgosAllocationCounter", logging, nioCore, nioEmbedded, nioTLS,
            ],
            path: "Benchmarks/SessionBenchmark",
            swiftSettings: serverSettings
        ),
        // Server CPU per mutual-TLS handshake by key-exchange group (RUNBOOK "TLS policy", BENCHMARKS.md).
        .executableTarget(
            name: "horgos-bench-handshake",
            dependencies: ["HorgosServer", "HorgosPKI"] + nioTLSStack,
            path: "Benchmarks/HandshakeBenchmark",
            swiftSettings: strictSettings
        ),
        // Child process of the store's crash test: writes through the store until it is killed.
        .executableTarget(
            name: "horgos-store-crash-child",
            dependencies: ["HorgosStore", "HorgosWire"],
            path: "Tests/StoreCrashChild",
            swiftSettings: strictSettings
        ),
        // The libFuzzer driver shared by the horgos-fuzz-* targets (Scripts/fuzz-*.sh).
        .target(name: "HorgosFuzzDriver", path: "Benchmarks/FuzzDriver", swiftSettings: strictSettings),
        .executableTarget(
            name: "horgos-fuzz-wire",
            dependencies: ["HorgosWire", "HorgosFuzzDriver"],
            path: "Benchmarks/WireFuzz",
            swiftSettings: strictSettings
        ),

        // What every test target shares: waiting for a condition and running blocking work without holding a
        // thread of Swift's cooperative pool (issue 25).
        .target(name: "HorgosTestSupport", path: "Tests/HorgosTestSupport", swiftSettings: strictSettings),
        // Reads Proto/vectors/sessions.txt for the trace test and the end-to-end sample.
        .target(name: "HorgosSessionTraces", dependencies: ["HorgosWire"], path: "Tests/HorgosSessionTraces",
                swiftSettings: strictSettings),
        .testTarget(
            name: "HorgosWireTests",
            dependencies: ["HorgosTestSupport", "HorgosWire", "CHorgosCRC32C", "HorgosAllocationCounter"],
            exclude: ["AllocationCounter"],
            swiftSettings: strictSettings
        ),
        // Counts this thread's malloc calls for HorgosWireTests' no-allocation test (no LD_PRELOAD).
        .target(name: "HorgosAllocationCounter", path: "Tests/HorgosWireTests/AllocationCounter"),
        .testTarget(
            name: "HorgosGBT32960Tests",
            dependencies: ["HorgosTestSupport", "HorgosGBT32960", "HorgosWire", "HorgosAllocationCounter"],
            exclude: ["Vectors"],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "horgos-bench-gbt32960",
            dependencies: ["HorgosGBT32960", "HorgosWire"],
            path: "Benchmarks/GBT32960Benchmark",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "horgos-fuzz-gbt32960",
            dependencies: ["HorgosGBT32960", "HorgosWire", "HorgosFuzzDriver"],
            path: "Benchmarks/GBT32960Fuzz",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "HorgosStoreTests",
            dependencies: ["HorgosTestSupport", "HorgosStore", "HorgosWire", "CSQLite", "HorgosGBT32960"],
            swiftSettings: strictSettings),
        .testTarget(
            name: "HorgosSimulatorTests", dependencies: ["HorgosTestSupport", "HorgosSimulator"],
            swiftSettings: strictSettings),
        .testTarget(
            name: "HorgosServerTests",
            dependencies: [
                "HorgosTestSupport",
                "HorgosAudit",
                "HorgosGBT32960",
                "HorgosServer",
                "HorgosDaemon",
                "HorgosAdminAPI",
                "HorgosStore",
                "HorgosProxyProtocol",
                "HorgosConfig",
                "CHorgosLibcrypto",
                "HorgosWireNIO",
                "HorgosPKI",
                "HorgosSessionTraces",
                nioEmbedded,
                nioHTTP1,
                x509,
                crypto,
                asn1,
                configuration,
                logging,
                metrics,
            ] + nioTLSStack,
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "HorgosIntegrationTests",
            dependencies: [
                "HorgosTestSupport",
                "HorgosServer", "HorgosSimulator", "HorgosPKI", "HorgosStore",
                nioCore,
                nioPosix,
                nioSSL,
                logging,
            ],
            swiftSettings: strictSettings
        ),
        // Start the real horgosd (and horgosctl, horgos-sim) as processes.
        .testTarget(
            name: "HorgosEndToEndTests",
            dependencies: [
                "HorgosTestSupport",
                "HorgosSimulator", "HorgosPKI", "HorgosStore", "HorgosWire", "HorgosWireNIO", "HorgosGBT32960",
                "HorgosSessionTraces", "HorgosAudit", "HorgosNATS", "HorgosNATSTestSupport", "HorgosStreamFormat",
                swiftProtobuf, x509,
            ] + nioTLSStack,
            swiftSettings: strictSettings
        ),
        .testTarget(name: "DeployTests", dependencies: ["HorgosTestSupport"], swiftSettings: strictSettings),
        .testTarget(
            name: "HorgosProxyProtocolTests", dependencies: ["HorgosTestSupport", "HorgosProxyProtocol"],
            swiftSettings: strictSettings),
        // libFuzzer target for the PROXY v2 parser (Scripts/fuzz-proxy.sh).
        .executableTarget(
            name: "horgos-fuzz-proxy",
            dependencies: ["HorgosProxyProtocol", "HorgosFuzzDriver"],
            path: "Benchmarks/ProxyFuzz",
            swiftSettings: strictSettings
        ),
        // Issue 20: the NATS client's codec and connection (EmbeddedChannel and a real nats-server), the
        // record format, the publisher and follower against a 3-node JetStream cluster.
        .testTarget(
            name: "HorgosNATSTests",
            dependencies: [
                "HorgosNATS", "HorgosNATSTestSupport", "HorgosPKI", nioCore, nioEmbedded, nioPosix, nioSSL, logging,
            ],
            swiftSettings: strictSettings
        ),
        // The reusable test helper: a 3-node JetStream cluster (nats-server) on free loopback ports in a
        // temporary directory, nodes stopped and started at will, and a reader of a whole stream.
        .target(
            name: "HorgosNATSTestSupport", dependencies: ["HorgosNATS", "HorgosTestSupport", nioCore, nioPosix, logging],
            path: "Tests/HorgosNATSTestSupport", swiftSettings: strictSettings),
        // Issue 20 in process: the record format against the generated types, the journal hooks, the
        // publisher and the follower with a real store and a real cluster.
        .testTarget(
            name: "HorgosStreamTests",
            dependencies: [
                "HorgosStream", "HorgosStreamFormat", "HorgosNATS", "HorgosNATSTestSupport", "HorgosStore",
                "HorgosWire", "HorgosGBT32960", swiftProtobuf, logging, nioCore,
            ],
            swiftSettings: strictSettings
        ),
        // Runs the built horgosctl binary against shards written by the real store writer.
        .testTarget(
            name: "HorgosCtlTests",
            dependencies: [
                "HorgosTestSupport", "HorgosStore", "HorgosWire", "HorgosConfig", "HorgosServer", "HorgosPKI",
                "HorgosAdminAPI", "HorgosAudit", "HorgosGBT32960",
            ],
            swiftSettings: strictSettings
        ),
    ]
)
