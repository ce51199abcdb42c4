import Foundation
import HorgosAudit
import HorgosPKI
import HorgosServer
import HorgosStore
import HorgosStream
import Logging
import NIOCore
import NIOSSL
import Prometheus
import ServiceLifecycle
import UnixSignals

/// The assembled daemon: certificates, revocation lists, the shard store, the listeners of every protocol
/// on one connection pipeline, the admin endpoint and the systemd glue, run as one ServiceGroup. Built in
/// `init` (fails fast with EX_CONFIG), started with `run`.
///
/// The composition root: each component gets its own configuration from ``HorgosConfiguration`` here
/// (`Daemon+Listeners.swift`, `Daemon+Store.swift`, `Daemon+Reload.swift`), and readiness (READY=1 once every
/// listener is bound and the store is open) and reload (SIGHUP) are wired here, in a library, so tests build
/// and run the same daemon in-process.
public struct Daemon: Sendable {
    /// The configuration it was built from.
    public let configuration: HorgosConfiguration
    /// `--config` (nil: the default path), re-read on reload.
    let configurationFile: String?
    let logger: Logger
    let tlsContext: ReloadableTLSContext
    let revocations: RevocationListHolder
    /// The live facts behind `/health`, `/status` and STATUS=.
    public let state: DaemonState
    let notifier: SystemdNotifier
    /// The NATS JetStream stream's side of the node (issue 20, `Daemon+Stream.swift`); nil without one.
    let stream: StreamNode?

    /// Checks the configuration and loads certificates and revocation lists (nothing is bound yet).
    public init(
        configuration: HorgosConfiguration, configurationFile: String?, logger: Logger
    ) throws(DaemonStartupError) {
        self.configuration = configuration
        self.configurationFile = configurationFile
        self.logger = logger
        logger.notice(
            "horgosd starting",
            metadata: [
                "version": "\(HorgosServerInfo.version)", "state_directory": "\(configuration.stateDirectory)",
                "regions": "\(configuration.regions.count)",
            ])
        if configuration.tls.usesDevelopmentPKI {
            if let refusal = DevelopmentPKIPolicy.refusal(configuration) {
                throw DaemonStartupError(message: refusal, exitCode: 78)
            }
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
            tlsContext = ReloadableTLSContext(try Self.makeTLSContext(configuration))
        } catch {
            throw DaemonStartupError(message: "TLS: \(error)", exitCode: 78)
        }
        do {
            revocations = try RevocationListHolder(sources: configuration.revocationSources)
        } catch {
            throw DaemonStartupError(message: "\(error)", exitCode: 78)
        }
        logger.info(
            "revocation list loaded",
            metadata: [
                "path": "\(configuration.effectiveRevocationListPath)", "entries": "\(revocations.current.count)",
                "crls": "\(revocations.revocations.crls.count)",
                "crl_serials": "\(revocations.revocations.crlSerialNumbers.count)",
            ])
        TrustReloader.report(revocations.revocations, logger: logger)
        try Self.checkAuditPath(configuration)
        state = DaemonState(regions: configuration.regions)
        notifier = SystemdNotifier()
        stream = try Self.makeStreamNode(configuration, logger: logger)
    }

    static func makeTLSContext(_ configuration: HorgosConfiguration) throws(TelemetryTLSError) -> NIOSSLContext {
        let files = configuration.effectiveTLSFiles
        return try TelemetryTLS.makeServerContext(
            caCertificatePath: files.ca, certificateChainPath: files.certificate, privateKeyPath: files.key,
            keyExchangeGroups: configuration.tls.keyExchangeGroups)
    }

    /// Opens the store, binds the listeners and runs every service until one of `shutdownSignals` (the
    /// daemon: SIGTERM, SIGINT) or cancellation.
    public func run(
        registry: PrometheusCollectorRegistry, shutdownSignals: [UnixSignal] = [.sigterm, .sigint]
    ) async throws {
        let activation = SystemdListeners()
        SystemdListeners.unsetEnvironment()
        let store: ShardStore
        do {
            var storeConfiguration = Self.withStorageFaultSettings(
                Self.storeConfiguration(configuration, logger: logger), configuration)
            // The stream's retention hold, wake-up and (replicated) acknowledgement gate, before any round.
            if let stream { storeConfiguration.journalHooks = stream.journalHooks }
            store = try ShardStore(configuration: storeConfiguration)
        } catch {
            logger.critical("cannot open the shard store", metadata: ["error": "\(error)"])
            throw DaemonStartupError(message: "store: \(error)", exitCode: 73)  // EX_CANTCREAT
        }
        let audit: AuditLog
        do {
            audit = try Self.openAuditLog(configuration, logger: logger)
        } catch {
            store.stop(timeoutMs: 1000)
            throw error
        }
        let pipeline = makePipeline(store: store, activation: activation)
        let readiness = Readiness(
            components: ["store", "admin"] + pipeline.listenerNames, state: state, notifier: notifier, logger: logger)
        let trust = makeTrustReloader(pipeline)
        state.setConnectionReporter(
            { pipeline.connections.count }, byProtocol: { pipeline.connections.countsByProtocol })
        state.setAddressReporter { pipeline.connections.connectionsByAddress() }
        state.setBufferedBytesReporter { pipeline.budget.used }
        var report = RegionReport(store: store, policies: Self.regionPolicies(configuration))
        if let stream {
            Self.reportStream(stream, into: &report, state: state, durability: configuration.store.durability)
        }
        state.setRegionReporter({ [report] in report.regions() }, totals: { [report] in report.totals() })
        let reload = ReloadAction(
            reloader: trust, certificatePath: configuration.effectiveTLSFiles.certificate, notifier: notifier,
            state: state, audit: audit, logger: logger)
        let admin = makeAdminServer(
            socket: Self.socket("admin", configured: configuration.listen.admin, activation: activation),
            registry: registry, report: report, pipeline: pipeline, trust: trust, store: store,
            post: Self.adminActions(
                store: store, configuration: configuration, audit: audit, reload: reload, logger: logger),
            onBound: { readiness.ready("admin", address: $0) })
        let state = self.state
        let systemd = SystemdService(
            notifier: notifier, watchdog: SystemdWatchdog(),
            isHealthy: { Self.writersMakeProgress(store) },
            statusLine: { state.statusLine() },
            onStopping: { state.isServing = false },
            logger: logger)
        let drainTimeout = Duration.seconds(configuration.shutdown.drainTimeoutSeconds)
        let reloader = ReloadService(reload: reload)

        // Started in this order, stopped in reverse: systemd (STOPPING=1), the rate sampler, the reloader, the
        // listeners (drain: answer what is committed, the protocol's goodbye), the admin endpoint, the stream
        // (issue 20: after the listeners drained), and last the store (commit, checkpoint, close).
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: StoreService(store: store, logger: logger, onOpen: { readiness.ready("store") }))
        ]
        if let stream { services.append(.init(service: StreamService(node: stream, store: store))) }
        services.append(.init(service: admin))
        services.append(
            .init(
                service: ListenerService(
                    listener: pipeline.native, drainTimeout: drainTimeout, logger: logger,
                    onBound: { readiness.ready(pipeline.native.name, address: $0) })))
        if let gbt32960 = pipeline.gbt32960 {
            services.append(
                .init(
                    service: ListenerService(
                        listener: gbt32960, drainTimeout: drainTimeout, logger: logger,
                        onBound: { readiness.ready(gbt32960.name, address: $0) })))
        }
        services += [.init(service: reloader), .init(service: RateSampler(state: state)), .init(service: systemd)]
        var group = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: shutdownSignals, logger: logger)
        group.maximumGracefulShutdownDuration = drainTimeout + .seconds(10)
        try await ServiceGroup(configuration: group).run()
        logger.notice("horgosd stopped")
    }

    /// A listener's socket: the one systemd passed under `name` (`LISTEN_FDNAMES`), else `configured`.
    static func socket(_ name: String, configured: ListenAddress, activation: SystemdListeners) -> ListenerSocket {
        activation.fileDescriptor(named: name).map { .inherited(fileDescriptor: $0) } ?? .address(configured)
    }
}

/// READY=1 once every component the daemon waits for (the store, the admin endpoint, each listener) has
/// reported; `/health` answers 200 from then on.
struct Readiness: Sendable {
    let components: [String]
    let state: DaemonState
    let notifier: SystemdNotifier
    let logger: Logger

    /// `name` is ready (a listener: bound to `address`).
    func ready(_ name: String, address: SocketAddress? = nil) {
        if let address { state.listenerBound(name, address: ListenAddress(address)?.description ?? "\(address)") }
        guard state.componentReady(name) == components.count else { return }
        state.isServing = true
        notifier.ready(status: state.statusLine())
        logger.notice("ready", metadata: ["listeners": "\(state.snapshot().listeners)"])
    }
}

/// Samples the committed-record totals every 5 s for the rates in `/status` and STATUS=.
struct RateSampler: Service, CustomStringConvertible {
    let state: DaemonState

    var description: String { "rate sampler" }

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(5)) }
            } catch {
                return
            }
            state.sampleRates()
        }
    }
}

extension Daemon {
    /// Test only (HORGOS_TEST_HOOKS=1, Deploy/systemd-nspawn-test.sh): SIGUSR2 wedges every region writer,
    /// so the daemon withholds WATCHDOG=1 and systemd kills and restarts it.
    public static func installTestHooks(_ logger: Logger) {
        logger.warning("test hooks enabled (HORGOS_TEST_HOOKS=1): SIGUSR2 wedges the region writers")
        Task {
            for await _ in await UnixSignalsSequence(trapping: .sigusr2) {
                WriterTestHooks.wedgeWriters()
                logger.warning("test hook: region writers wedged (SIGUSR2)")
            }
        }
    }
}
