import Foundation
import HorgosProxyProtocol
import HorgosServer
import HorgosStore
import Logging
import Metrics
import NIOCore

/// The daemon's connection pipeline: one listener per protocol, one connection registry, one byte budget,
/// one set of region queues and commit inboxes for all of them.
struct DaemonPipeline: Sendable {
    /// Every listener's connections: `limits.max_connections` holds for all of them together.
    let connections: ConnectionRegistry
    /// `limits.max_buffered_bytes`, for every listener.
    let budget: BufferedBytesBudget
    /// Horgos's own protocol (`listen.telemetry`).
    let native: Listener<NativeProtocol>
    /// GB/T 32960 (`listen.gbt32960`; nil when `off`).
    let gbt32960: Listener<GBT32960Protocol>?

    /// The listeners' names, for readiness.
    var listenerNames: [String] { [native.name] + (gbt32960.map { [$0.name] } ?? []) }

    /// The pipeline metrics of every protocol (for the ACK latency histogram in `/metrics`).
    var metrics: [PipelineMetrics] { [native.metrics] + (gbt32960.map { [$0.metrics] } ?? []) }
}

extension Daemon {
    /// Builds the listeners from configuration: each gets its own ``Listener/Configuration`` (socket, PROXY
    /// mode, limits) and protocol value (``NativeProtocol``'s session limits, ``GBT32960Protocol``'s
    /// `gbt32960.*`); everything else is shared.
    func makePipeline(store: ShardStore, activation: SystemdListeners) -> DaemonPipeline {
        let limits = configuration.limits
        let policy = PeerAdmissionPolicy(regions: Set(configuration.regions), revocations: revocations)
        var flows: [String: RegionFlowControl] = [:]
        for region in configuration.regions {
            flows[region] = RegionFlowControl(
                region: region, highWatermark: configuration.queue.highWatermarkBytes,
                lowWatermark: configuration.queue.lowWatermarkBytes)
        }
        let sink = StoreIngestSink(store: store)
        let connections = ConnectionRegistry(
            maxConnections: limits.maxConnections, maxPerAddress: limits.maxConnectionsPerAddress)
        let budget = BufferedBytesBudget(limit: limits.maxBufferedBytes)
        Gauge(label: "horgos_buffered_bytes_limit").record(Double(limits.maxBufferedBytes))
        let inboxes = CommitInboxes()
        let holder = revocations
        let isVINRevoked: @Sendable (VIN) -> Bool = { holder.isRevoked(vin: String(describing: $0)) }
        let now: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }
        let logger = self.logger
        let proxyHeaderRejected: @Sendable (String) -> @Sendable (ProxyHeaderError) -> Void = { what in
            { error in
                Counter(label: "horgos_proxy_header_rejected_total", dimensions: [("reason", error.reason)]).increment()
                logger.notice("\(what) without a valid PROXY v2 header closed", metadata: ["error": "\(error)"])
            }
        }
        FleetMetrics.registerSeries(
            queueHighWatermarkBytes: configuration.queue.highWatermarkBytes,
            journalMaxBytes: configuration.store.journalMaxBytes)
        FleetMetrics.recordServerCertificateExpiry(chainPath: configuration.effectiveTLSFiles.certificate)
        FleetMetrics.recordRevocationListLoaded()

        let nativeMetrics = PipelineMetrics(protocolName: NativeProtocol.name)
        let native = Listener(
            configuration: .init(
                name: "telemetry", socket: Self.socket("telemetry", configured: configuration.listen.telemetry,
                                                       activation: activation),
                proxyProtocol: configuration.listen.proxyProtocol, limits: ListenerLimits(limits)),
            tls: tlsContext, registry: connections,
            environment: PipelineEnvironment(
                wireProtocol: NativeProtocol(
                    limits: Self.sessionLimits(limits, store: configuration.store), regions: configuration.regions,
                    logger: logger),
                admit: { policy.admit($0) },
                regions: RegionHandle.table(flows: flows, sink: sink, metrics: nativeMetrics),
                isVINRevoked: isVINRevoked, budget: budget, metrics: nativeMetrics, inboxes: inboxes,
                maxInFlight: .max, now: now, logger: logger),
            proxyHeaderRejected: proxyHeaderRejected("connection"))

        var gbt32960: Listener<GBT32960Protocol>?
        let settings = configuration.gbt32960
        if let address = settings.listen {
            if !settings.tls {
                logger.warning(
                    """
                    GB/T 32960 listener runs WITHOUT TLS (gbt32960.tls: off): only the allow-listed VINs are \
                    accepted; use it only on a private APN
                    """,
                    metadata: ["address": "\(address)", "vins": "\(settings.allowedVINs.count)",
                               "market": "\(settings.market)"])
            }
            let metrics = PipelineMetrics(protocolName: GBT32960Protocol.name)
            gbt32960 = Listener(
                configuration: .init(
                    name: "gbt32960", title: "GB/T 32960",
                    socket: Self.socket("gbt32960", configured: address, activation: activation),
                    proxyProtocol: configuration.listen.proxyProtocol, limits: ListenerLimits(limits)),
                tls: settings.tls ? tlsContext : nil, registry: connections,
                environment: PipelineEnvironment(
                    wireProtocol: GBT32960Protocol(settings: settings, logger: logger),
                    admit: { policy.admit($0) },
                    plainPeer: settings.tls ? nil : .allowListed(settings.allowedVINs, market: settings.market),
                    regions: RegionHandle.table(flows: flows, sink: sink, metrics: metrics),
                    isVINRevoked: isVINRevoked, budget: budget, metrics: metrics, inboxes: inboxes,
                    maxInFlight: settings.maxInFlight, now: now, logger: logger),
                proxyHeaderRejected: proxyHeaderRejected("GB/T 32960 connection"))
        }
        return DaemonPipeline(connections: connections, budget: budget, native: native, gbt32960: gbt32960)
    }

    /// The admin endpoint over `socket`, reporting the store, the pipeline and the last reload.
    func makeAdminServer(
        socket: ListenerSocket, registry: PrometheusCollectorRegistry, report: RegionReport, pipeline: DaemonPipeline,
        trust: TrustReloader, store: ShardStore,
        post: @escaping @Sendable (AdminPostRequest) async -> AdminPostReply,
        onBound: @escaping @Sendable (SocketAddress) -> Void
    ) -> AdminServer {
        let state = self.state
        let configuration = self.configuration
        let budget = pipeline.budget
        let metrics = pipeline.metrics
        let stream = self.stream
        return AdminServer(
            socket: socket,
            sources: withStorageFaultSources(.init(
                isServing: { state.isServing }, status: { state.snapshot() }, registry: registry,
                extraMetrics: { [publisher = RegionMetricsPublisher(registry: registry)] in
                    report.metrics(publishingInto: publisher) + PipelineMetrics.ackLatencyText(metrics)
                        + Self.streamMetricsText(stream)
                        + "# HELP horgos_buffered_bytes Partial-frame bytes plus receive buffers pinned by queued frames.\n"
                        + "# TYPE horgos_buffered_bytes gauge\nhorgos_buffered_bytes \(budget.used)\n"
                },
                regionStatus: { code in report.regions().first { $0.region == code } },
                fleetHealth: { lowSOC, maxCellTemp in
                    NodeFleetHealth.read(
                        stateDirectory: configuration.stateDirectory, regions: configuration.regions,
                        lowSOCPercent: lowSOC, maxCellTempThresholdC: maxCellTemp)
                },
                reloadVerdict: { trust.latest }, post: post),
                store: store),
            limits: AdminServer.Limits(
                maxConnections: configuration.limits.adminMaxConnections,
                idleTimeout: .seconds(Int64(configuration.limits.adminIdleTimeoutSeconds))),
            logger: logger, onBound: onBound)
    }
}

import Prometheus
import HorgosWire
