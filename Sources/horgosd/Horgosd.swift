import ArgumentParser
import HorgosServer
import HorgosStore
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
    import Glibc
#endif

/// `horgosd`: the telemetry ingestion daemon. Reads its configuration, binds the telemetry (mutual TLS)
/// and admin listeners, tells systemd when it is ready, and runs until SIGTERM or SIGINT.
///
/// Exit codes: 0 after a graceful stop, 78 (EX_CONFIG) for a bad configuration or unusable certificates,
/// 1 for any other startup failure.
@main
struct Horgosd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "horgosd",
        abstract: "Horgos telemetry ingestion daemon (mutual-TLS listener, admin endpoint, systemd notify).",
        discussion: """
            With no --config the daemon reads \(HorgosConfiguration.defaultFilePath) if it exists and otherwise \
            starts with defaults: telemetry on 127.0.0.1:7443, admin on 127.0.0.1:9477, state in ./horgos-state \
            and a development PKI created there. HORGOS_<KEY> environment variables override any key.
            """,
        version: HorgosServerInfo.version)

    @Option(name: .long, help: "YAML configuration file (must exist when given).")
    var config: String?

    func run() async throws {
        let configuration: HorgosConfiguration
        do {
            configuration = try await HorgosConfiguration.load(filePath: config)
        } catch {
            printToStderr("horgosd: \(error)")
            throw ExitCode(78)
        }
        let level = configuration.log.level
        LoggingSystem.bootstrap { label in JournalLogHandler(label: label, level: level) }
        var logger = Logger(label: "horgosd")
        logger.logLevel = level
        let registry = HorgosMetrics.bootstrap()

        let daemon: Daemon
        do {
            daemon = try Daemon(configuration: configuration, configurationFile: config, logger: logger)
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error.message)"])
            throw ExitCode(error.exitCode)
        }
        if let hooks = getenv("HORGOS_TEST_HOOKS"), String(cString: hooks) == "1" { Self.installTestHooks(logger) }
        try await daemon.run(registry: registry)
    }

    /// Test only (HORGOS_TEST_HOOKS=1, Deploy/systemd-nspawn-test.sh): SIGUSR2 wedges every region writer,
    /// so the daemon withholds WATCHDOG=1 and systemd kills and restarts it.
    static func installTestHooks(_ logger: Logger) {
        logger.warning("test hooks enabled (HORGOS_TEST_HOOKS=1): SIGUSR2 wedges the region writers")
        Task {
            for await _ in await UnixSignalsSequence(trapping: .sigusr2) {
                WriterTestHooks.wedgeWriters()
                logger.warning("test hook: region writers wedged (SIGUSR2)")
            }
        }
    }
}

/// A startup failure with the exit code it maps to.
struct DaemonStartupError: Error {
    var message: String
    var exitCode: Int32
}

func printToStderr(_ text: String) {
    let line = Array((text + "\n").utf8)
    _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
}
