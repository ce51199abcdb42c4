import HorgosServer
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Prometheus
import ServiceLifecycle
import UnixSignals

/// The assembled daemon: certificates, revocation list, listeners and the systemd glue, run as one
/// ServiceGroup. Built in `init` (fails fast with EX_CONFIG), started with `run`.
struct Daemon {
    let configuration: HorgosConfiguration
    let logger: Logger
    let tlsContext: NIOSSLContext
    let revocations: RevocationListHolder
    let state: DaemonState
    let notifier: SystemdNotifier

    init(configuration: HorgosConfiguration, logger: Logger) throws(DaemonStartupError) {
        self.configuration = configuration
        self.logger = logger
        logger.notice(
            "horgosd starting",
            metadata: [
                "version": "\(HorgosServerInfo.version)", "state_directory": "\(configuration.stateDirectory)",
                "regions": "\(configuration.regions.count)",
            ])
        if configuration.tls.usesDevelopmentPKI {
            do {
                let pki = try FleetPKI.ensureDevelopmentPKI(in: configuration.developmentPKIDirectory)
                logger.warning(
                    """
                    using a DEVELOPMENT PKI; configure tls.ca_certificate, tls.server_certificate and \
                    tls.server_key for production
                    """,
                    metadata: ["directory": "\(pki.paths.directory)", "created": "\(pki.created)"])
            } catch {
                throw DaemonStartupError(message: "development PKI: \(error)", exitCode: 78)
            }
        }
        do {
            tlsContext = try Self.makeTLSContext(configuration)
        } catch {
            throw DaemonStartupError(message: "TLS: \(error)", exitCode: 78)
        }
        do {
            revocations = try RevocationListHolder(
                path: configuration.effectiveRevocationListPath, required: !configuration.tls.revocationList.isEmpty)
        } catch {
            throw DaemonStartupError(message: "tls.revocation_list: \(error)", exitCode: 78)
        }
        logger.info(
            "revocation list loaded",
            metadata: [
                "path": "\(configuration.effectiveRevocationListPath)", "entries": "\(revocations.current.count)",
            ])
        state = DaemonState(regions: configuration.regions)
        notifier = SystemdNotifier()
    }

    static func makeTLSContext(_ configuration: HorgosConfiguration) throws(TelemetryTLSError) -> NIOSSLContext {
        let files = configuration.effectiveTLSFiles
        return try TelemetryTLS.makeServerContext(
            caCertificatePath: files.ca, certificateChainPath: files.certificate, privateKeyPath: files.key)
    }

    func run(registry: PrometheusCollectorRegistry) async throws {
        let activation = SystemdListeners()
        SystemdListeners.unsetEnvironment()
        let telemetrySocket: ListenerSocket =
            activation.fileDescriptor(named: "telemetry")
            .map { .inherited(fileDescriptor: $0) } ?? .address(configuration.listen.telemetry)
        let adminSocket: ListenerSocket =
            activation.fileDescriptor(named: "admin")
            .map { .inherited(fileDescriptor: $0) } ?? .address(configuration.listen.admin)

        let state = self.state
        let notifier = self.notifier
        let logger = self.logger
        let onBound: @Sendable (String, SocketAddress) -> Void = { name, address in
            if state.listenerBound(name, address: ListenAddress(address)?.description ?? "\(address)") == 2 {
                state.isServing = true
                notifier.ready(status: state.statusLine())
                logger.notice("ready", metadata: ["listeners": "\(state.snapshot().listeners)"])
            }
        }
        let telemetry = TelemetryListener(
            socket: telemetrySocket, tlsContext: tlsContext,
            policy: PeerAdmissionPolicy(regions: Set(configuration.regions), revocations: revocations),
            limits: configuration.limits, logger: logger,
            onBound: { onBound("telemetry", $0) })
        state.setConnectionCounter { telemetry.connectionCount }
        let admin = AdminServer(
            socket: adminSocket,
            sources: .init(isServing: { state.isServing }, status: { state.snapshot() }, registry: registry),
            logger: logger,
            onBound: { onBound("admin", $0) })
        let systemd = SystemdService(
            notifier: notifier, watchdog: SystemdWatchdog(),
            statusLine: { state.statusLine() },
            onStopping: { state.isServing = false },
            logger: logger)
        let reloader = ReloadService(
            configuration: configuration, telemetry: telemetry, revocations: revocations, notifier: notifier,
            state: state, logger: logger)

        var groupConfiguration = ServiceGroupConfiguration(
            services: [
                .init(service: admin), .init(service: telemetry), .init(service: reloader), .init(service: systemd),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(configuration.shutdown.drainTimeoutSeconds)
        try await ServiceGroup(configuration: groupConfiguration).run()
        logger.notice("horgosd stopped")
    }
}

/// Reloads certificates and the revocation list on SIGHUP, bracketed by RELOADING=1 / READY=1.
/// Existing sessions keep their connection; new handshakes use the new material. Limits and regions are
/// not reloaded yet (a restart applies them).
struct ReloadService: Service, CustomStringConvertible {
    let configuration: HorgosConfiguration
    let telemetry: TelemetryListener
    let revocations: RevocationListHolder
    let notifier: SystemdNotifier
    let state: DaemonState
    let logger: Logger

    var description: String { "SIGHUP reloader" }

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            notifier.reloading(status: "reloading certificates and revocation list")
            logger.notice("reload requested (SIGHUP)")
            do {
                telemetry.replaceTLSContext(try Daemon.makeTLSContext(configuration))
                logger.notice("TLS certificates reloaded")
            } catch {
                logger.error("TLS reload failed; keeping the previous certificates", metadata: ["error": "\(error)"])
            }
            do {
                let list = try revocations.reload()
                logger.notice("revocation list reloaded", metadata: ["entries": "\(list.count)"])
            } catch {
                logger.error(
                    "revocation list reload failed; keeping the previous list", metadata: ["error": "\(error)"])
            }
            notifier.ready(status: state.statusLine())
        }
    }
}
