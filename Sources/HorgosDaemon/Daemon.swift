import Foundation
import HorgosPKI
import HorgosProxyProtocol
import HorgosServer
import HorgosStore
import HorgosWire
import Logging
import Metrics
import NIOCore
import NIOPosix
import NIOSSL
import Prometheus
import ServiceLifecycle
import Synchronization
import UnixSignals

/// The assembled daemon: certificates, revocation list, region shard writers, listeners and the systemd
/// glue, run as one ServiceGroup. Built in `init` (fails fast with EX_CONFIG), started with `run`.
///
/// The composition root: each component gets its own configuration from ``HorgosConfiguration`` here,
/// and readiness (READY=1 once every listener is bound and the store is open) and reload (SIGHUP) are wired
/// here, in a library, so tests build and run the same daemon in-process.
public struct Daemon: Sendable {
    /// The configuration it was built from.
    public let configuration: HorgosConfiguration
    /// `--config` (nil: the default path), re-read on reload.
    let configurationFile: String?
    let logger: Logger
    let tlsContext: ReloadableTLSContext
    let revocations: RevocationListHolder
    let state: DaemonState
    let notifier: SystemdNotifier

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
        state = DaemonState(regions: configuration.regions)
        notifier = SystemdNotifier()
    }

    static func makeTLSContext(_ configuration: HorgosConfiguration) throws(TelemetryTLSError) -> NIOSSLContext {
        let files = configuration.effectiveTLSFiles
        return try TelemetryTLS.makeServerContext(
            caCertificatePath: files.ca, certificateChainPath: files.certificate, privateKeyPath: files.key,
            keyExchangeGroups: configuration.tls.keyExchangeGroups)
    }

    /// Opens the store, binds the listeners and runs every service until SIGTERM or SIGINT.
    public func run(registry: PrometheusCollectorRegistry) async throws {
        let activation = SystemdListeners()
        SystemdListeners.unsetEnvironment()
        let telemetrySocket: ListenerSocket =
            activation.fileDescriptor(named: "telemetry")
            .map { .inherited(fileDescriptor: $0) } ?? .address(configuration.listen.telemetry)
        let adminSocket: ListenerSocket =
            activation.fileDescriptor(named: "admin")
            .map { .inherited(fileDescriptor: $0) } ?? .address(configuration.listen.admin)

        let store: ShardStore
        do {
            store = try ShardStore(configuration: Self.storeConfiguration(configuration, logger: logger))
        } catch {
            logger.critical("cannot open the shard store", metadata: ["error": "\(error)"])
            throw DaemonStartupError(message: "store: \(error)", exitCode: 73)  // EX_CANTCREAT
        }

        let state = self.state
        let notifier = self.notifier
        let logger = self.logger
        // READY once every listener (telemetry, admin and, when configured, GB/T 32960) is bound and the
        // store has opened its files.
        let components = 3 + (configuration.gbt32960.listen == nil ? 0 : 1)
        let onBound: @Sendable (String, SocketAddress?) -> Void = { name, address in
            if let address {
                state.listenerBound(name, address: ListenAddress(address)?.description ?? "\(address)")
            }
            if state.componentReady(name) == components {
                state.isServing = true
                notifier.ready(status: state.statusLine())
                logger.notice("ready", metadata: ["listeners": "\(state.snapshot().listeners)"])
            }
        }
        let policy = PeerAdmissionPolicy(regions: Set(configuration.regions), revocations: revocations)
        var flows: [String: RegionFlowControl] = [:]
        for region in configuration.regions {
            flows[region] = RegionFlowControl(
                region: region, highWatermark: configuration.queue.highWatermarkBytes,
                lowWatermark: configuration.queue.lowWatermarkBytes)
        }
        let limits = configuration.limits
        let observer = MetricsSessionObserver(logger: logger, regions: configuration.regions)
        var environment = SessionEnvironment(
            authorize: { policy.authorize($0) }, regions: flows, sink: StoreIngestSink(store: store),
            limits: Self.sessionLimits(limits, store: configuration.store),
            now: { Int64(Date().timeIntervalSince1970 * 1000) },
            observer: observer, logger: logger)
        let holder = self.revocations
        environment.isVINRevoked = { holder.isRevoked(vin: String(describing: $0)) }
        let budget = BufferedBytesBudget(limit: limits.maxBufferedBytes)
        environment.bufferBudget = budget
        Gauge(label: "horgos_buffered_bytes_limit").record(Double(limits.maxBufferedBytes))
        let listener = TelemetryListener(
            tls: tlsContext,
            registry: ConnectionRegistry(
                maxConnections: limits.maxConnections, maxPerAddress: limits.maxConnectionsPerAddress),
            environment: environment,
            limits: ListenerLimits(limits),
            group: MultiThreadedEventLoopGroup.singleton,
            handshakeTimedOut: {
                Counter(label: "horgos_refusals_total", dimensions: [("code", "HANDSHAKE_TIMEOUT")]).increment()
            },
            refusedAtAccept: { refusal in
                Counter(label: "horgos_refusals_total", dimensions: [("code", refusal.rawValue.uppercased())])
                    .increment()
            },
            proxyProtocol: configuration.listen.proxyProtocol,
            proxyHeaderRejected: { error in
                Counter(label: "horgos_proxy_header_rejected_total", dimensions: [("reason", error.reason)]).increment()
                logger.notice("connection without a valid PROXY v2 header closed", metadata: ["error": "\(error)"])
            })
        FleetMetrics.registerSeries(
            queueHighWatermarkBytes: configuration.queue.highWatermarkBytes,
            journalMaxBytes: configuration.store.journalMaxBytes)
        FleetMetrics.recordServerCertificateExpiry(chainPath: configuration.effectiveTLSFiles.certificate)
        FleetMetrics.recordRevocationListLoaded()
        // The GB/T 32960 listener is built further down; a reload reaches it through this box.
        let gbt32960Listener = Mutex<GBT32960Listener?>(nil)
        let trust = makeTrustReloader(listener: listener, budget: budget) { limits in
            guard let gbt = gbt32960Listener.withLock({ $0 }) else { return }
            gbt.registry.setLimits(maxConnections: limits.maxConnections, maxPerAddress: limits.maxConnectionsPerAddress)
            gbt.apply(ListenerLimits(limits))
        }
        let registryOfConnections = listener.registry
        state.setConnectionCounter { registryOfConnections.count }
        state.setAddressReporter { registryOfConnections.connectionsByAddress() }
        let report = RegionReport(store: store)
        state.setRegionReporter({ report.regions() }, totals: { report.totals() })
        let telemetry = TelemetryService(
            listener: listener, socket: telemetrySocket,
            drainTimeout: .seconds(configuration.shutdown.drainTimeoutSeconds), logger: logger,
            onBound: { onBound("telemetry", $0) })
        let admin = AdminServer(
            socket: adminSocket,
            sources: .init(
                isServing: { state.isServing }, status: { state.snapshot() }, registry: registry,
                extraMetrics: { [publisher = RegionMetricsPublisher(registry: registry)] in
                    report.publish(into: publisher)
                    return report.prometheusText() + observer.prometheusText()
                        + "# HELP horgos_buffered_bytes Partial-frame bytes plus receive buffers pinned by queued frames.\n"
                        + "# TYPE horgos_buffered_bytes gauge\nhorgos_buffered_bytes \(budget.used)\n"
                },
                regionStatus: { code in report.regions().first { $0.region == code } },
                fleetHealth: { [configuration] lowSOC, maxCellTemp in
                    NodeFleetHealth.read(
                        stateDirectory: configuration.stateDirectory, regions: configuration.regions,
                        lowSOCPercent: lowSOC, maxCellTempThresholdC: maxCellTemp)
                },
                reloadVerdict: { trust.latest }),
            limits: AdminServer.Limits(
                maxConnections: limits.adminMaxConnections, idleTimeout: .seconds(Int64(limits.adminIdleTimeoutSeconds))),
            logger: logger,
            onBound: { onBound("admin", $0) })
        let systemd = SystemdService(
            notifier: notifier, watchdog: SystemdWatchdog(),
            isHealthy: { Self.writersMakeProgress(store) },
            statusLine: { state.statusLine() },
            onStopping: { state.isServing = false },
            logger: logger)
        let gbt32960 = gbt32960Service(
            policy: policy, flows: flows, sink: StoreIngestSink(store: store),
            onBound: { onBound("gbt32960", $0) })
        gbt32960Listener.withLock { $0 = gbt32960?.listener }
        let reloader = ReloadService(
            reloader: trust, certificatePath: configuration.effectiveTLSFiles.certificate, notifier: notifier,
            state: state, logger: logger)

        // Started in this order, stopped in reverse: systemd (STOPPING=1), reloader, telemetry (drain:
        // ACK what is committed, BYE), admin endpoint, and last the store (commit, checkpoint, close).
        var groupConfiguration = ServiceGroupConfiguration(
            services: [
                .init(
                    service: StoreService(
                        store: store, logger: logger, onOpen: { onBound("store", SocketAddress?.none) })),
                .init(service: admin),
                .init(service: telemetry),
            ] + (gbt32960.map { [ServiceGroupConfiguration.ServiceConfiguration(service: $0)] } ?? []) + [
                .init(service: reloader), .init(service: RateSampler(state: state)),
                .init(service: systemd),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(configuration.shutdown.drainTimeoutSeconds + 10)
        try await ServiceGroup(configuration: groupConfiguration).run()
        logger.notice("horgosd stopped")
    }

    /// The shard store's settings from the daemon configuration; store log lines go to the daemon log.
    static func storeConfiguration(_ configuration: HorgosConfiguration, logger: Logger) -> StoreConfiguration {
        let store = configuration.store
        return StoreConfiguration(
            stateDirectory: configuration.stateDirectory,
            regions: configuration.regions.compactMap(HorgosStore.Region.init),
            durability: store.durability == .disk ? .disk : .process,
            applyIntervalMs: store.applyIntervalMilliseconds, commitMaxRows: store.commitMaxRows,
            horizon: TimeHorizon(
                pastMs: Int64(store.lateHorizonDays) * 86_400_000, futureMs: Int64(store.futureHorizonHours) * 3_600_000
            ),
            retentionDays: store.retentionDays,
            journalSegmentBytes: store.journalSegmentBytes, journalMaxBytes: store.journalMaxBytes,
            journalMaxDelayMicroseconds: store.journalMaxDelayMicroseconds,
            appliers: store.appliers > 0 ? store.appliers : ProcessInfo.processInfo.activeProcessorCount,
            onJournalFailure: { error in
                // Never retried on the same file (the kernel may have dropped the pages): stop, let
                // systemd restart us, replay the journal; units resend what was not acknowledged.
                logger.critical(
                    "journal write failed; exiting so that a restart replays the journal",
                    metadata: ["error": "\(error)"])
                exit(74)  // EX_IOERR
            },
            log: { level, message in
                switch level {
                case .info: logger.info("\(message)", metadata: ["component": "store"])
                case .warning: logger.warning("\(message)", metadata: ["component": "store"])
                case .error: logger.error("\(message)", metadata: ["component": "store"])
                }
            },
            createdBy: "horgosd \(HorgosServerInfo.version)")
    }

    /// True while every region writer's loop has turned in the last 10 s (they turn at least once a
    /// second); a writer hung in a system call withholds the systemd watchdog ping.
    static func writersMakeProgress(_ store: ShardStore) -> Bool {
        let nowNs = SystemdNotifier.monotonicMicroseconds() * 1000
        let journal = store.journalStatistics.lastProgressNs
        guard journal == 0 || nowNs &- journal < 10_000_000_000 else { return false }
        return store.writers.values.allSatisfy { writer in
            let last = writer.statistics.lastProgressNs
            return last == 0 || nowNs &- last < 10_000_000_000
        }
    }
}

/// Owns the shard store in the ServiceGroup: on graceful shutdown (after the listener drained) it commits
/// what is queued, checkpoints and closes every region.
struct StoreService: Service, CustomStringConvertible {
    let store: ShardStore
    let logger: Logger
    /// Called once every region writer has left `.starting` (files opened, or degraded and retrying).
    let onOpen: @Sendable () -> Void

    var description: String { "shard store (\(store.writers.count) regions)" }

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let starting = store.writers.values.filter { $0.state == .starting }.count
            if starting == 0 {
                let degraded = store.writers.filter {
                    if case .degraded = $0.value.state { true } else { false }
                }
                if !degraded.isEmpty {
                    logger.warning(
                        "regions degraded at start; they keep retrying",
                        metadata: ["regions": "\(degraded.keys.map(\.code).sorted())"])
                }
                logger.notice("region writers open", metadata: ["regions": "\(store.writers.count)"])
                onOpen()
                break
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        try? await gracefulShutdown()
        logger.notice("stopping region writers")
        store.stop(timeoutMs: 10_000)
        logger.notice("region writers stopped")
    }
}

/// Runs a ``TrustReloader`` reload on each SIGHUP, bracketed by RELOADING=1 / READY=1. The verdict is on
/// the admin endpoint's `/reload`, which `horgosctl reload` (the unit's ExecReload) waits for, so a
/// failed reload makes `systemctl reload horgosd` fail. Regions, listeners and store keys need a restart.
struct ReloadService: Service, CustomStringConvertible {
    let reloader: TrustReloader
    /// The server certificate chain file, whose notAfter is exported again after each reload.
    let certificatePath: String
    let notifier: SystemdNotifier
    let state: DaemonState
    let logger: Logger

    var description: String { "SIGHUP reloader" }

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            notifier.reloading(status: "reloading certificates, revocations and limits")
            logger.notice("reload requested (SIGHUP)")
            let verdict = await reloader.reload()
            if verdict.succeeded {
                FleetMetrics.recordServerCertificateExpiry(chainPath: certificatePath)
                FleetMetrics.recordRevocationListLoaded()
            }
            notifier.ready(status: verdict.succeeded ? state.statusLine() : "reload failed: \(verdict.error ?? "")")
        }
    }
}

extension Daemon {
    /// The reloader: re-reads the configuration file, builds the TLS context and loads every revocation
    /// source from it, and applies `limits.*` to the listener and the connection registry.
    func makeTrustReloader(
        listener: TelemetryListener, budget: BufferedBytesBudget,
        alsoApply: @escaping @Sendable (HorgosConfiguration.Limits) -> Void = { _ in }
    ) -> TrustReloader {
        let file = configurationFile
        let started = configuration
        let logger = self.logger
        return TrustReloader(
            load: {
                let fresh = try await HorgosConfiguration.load(filePath: file)
                if fresh.regions != started.regions || fresh.listen != started.listen || fresh.store != started.store {
                    logger.warning("regions, listen.* and store.* changes need a restart; they are not applied")
                }
                if fresh.tls.usesDevelopmentPKI != started.tls.usesDevelopmentPKI {
                    throw DaemonStartupError(
                        message: "switching between the development PKI and tls.* files needs a restart", exitCode: 78)
                }
                let context = try Daemon.makeTLSContext(fresh)
                let revocations = try Revocations.load(fresh.revocationSources)
                return TrustMaterial(tlsContext: context, revocations: revocations, limits: fresh.limits)
            },
            tls: tlsContext, revocations: revocations, listener: listener,
            applyLimits: { limits in
                budget.limit = limits.maxBufferedBytes
                listener.registry.setLimits(
                    maxConnections: limits.maxConnections, maxPerAddress: limits.maxConnectionsPerAddress)
                listener.apply(ListenerLimits(limits), session: Daemon.sessionLimits(limits, store: started.store))
                alsoApply(limits)
            },
            logger: logger)
    }

    /// The session limits from `limits.*`, and the time horizon of `store.*` that WELCOME 1.1 announces.
    static func sessionLimits(_ limits: HorgosConfiguration.Limits, store: HorgosConfiguration.Store) -> SessionLimits {
        SessionLimits(
            ackWindow: limits.ackWindow, maxPayload: limits.maxPayloadBytes,
            heartbeatSeconds: limits.heartbeatIntervalSeconds, idleTimeoutSeconds: limits.idleTimeoutSeconds,
            horizon: AnnouncedHorizon(
                pastSeconds: UInt32(store.lateHorizonDays * 86_400),
                futureSeconds: UInt32(store.futureHorizonHours * 3_600)))
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
