import ArgumentParser
import HorgosDaemon
import HorgosServer
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// `horgosd`: the telemetry ingestion daemon. Reads its configuration, binds the telemetry (mutual TLS),
/// GB/T 32960 and admin listeners, tells systemd when it is ready, and runs until SIGTERM or SIGINT.
///
/// A thin main: the daemon itself (services, readiness, reload) is ``Daemon`` in the HorgosDaemon library.
/// Exit codes: 0 after a graceful stop, 78 (EX_CONFIG) for a bad configuration (an unknown key included) or
/// unusable certificates, 73 when the store cannot be opened, 1 for any other startup failure.
@main
struct Horgosd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "horgosd",
        abstract: "Horgos telemetry ingestion daemon (mutual-TLS listeners, admin endpoint, systemd notify).",
        discussion: """
            With no --config the daemon reads \(HorgosConfiguration.defaultFilePath) if it exists and otherwise \
            starts with defaults: telemetry on 127.0.0.1:7443, GB/T 32960 on 127.0.0.1:7325, admin on \
            127.0.0.1:9477, state in ./horgos-state and a development PKI created there. HORGOS_<KEY> \
            environment variables override any key. A key the daemon does not know stops it (exit 78).
            """,
        version: HorgosServerInfo.version)

    @Option(name: .long, help: "YAML configuration file (must exist when given).")
    var config: String?

    func run() async throws {
        let configuration: HorgosConfiguration
        var warnings: [String] = []
        do {
            configuration = try await HorgosConfiguration.load(filePath: config) { warnings.append($0) }
        } catch {
            Daemon.printToStandardError("horgosd: \(error)")
            throw ExitCode(78)
        }
        let level = configuration.log.level
        LoggingSystem.bootstrap { label in JournalLogHandler(label: label, level: level) }
        var logger = Logger(label: "horgosd")
        logger.logLevel = level
        for warning in warnings { logger.warning("\(warning)") }
        let registry = HorgosMetrics.bootstrap()

        let daemon: Daemon
        do {
            daemon = try Daemon(configuration: configuration, configurationFile: config, logger: logger)
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error.message)"])
            throw ExitCode(error.exitCode)
        }
        if let hooks = getenv("HORGOS_TEST_HOOKS"), String(cString: hooks) == "1" { Daemon.installTestHooks(logger) }
        do {
            try await daemon.run(registry: registry)
        } catch let error as DaemonStartupError {
            throw ExitCode(error.exitCode)
        }
    }
}
