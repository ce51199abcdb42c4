import Foundation
import HorgosProxyProtocol
import HorgosServer
import Logging
import Metrics
import NIOCore
import NIOPosix

extension Daemon {
    /// The GB/T 32960 listener's service (nil when `listen.gbt32960: off`): the same certificates,
    /// admission policy, region queues, store and limits as the native listener.
    func gbt32960Service(
        policy: PeerAdmissionPolicy, flows: [String: RegionFlowControl], sink: any IngestSink,
        onBound: @escaping @Sendable (SocketAddress) -> Void
    ) -> GBT32960Service? {
        let settings = configuration.gbt32960
        guard let address = settings.listen else { return nil }
        if !settings.tls {
            logger.warning(
                """
                GB/T 32960 listener runs WITHOUT TLS (gbt32960.tls: off): only the allow-listed VINs are \
                accepted; use it only on a private APN
                """,
                metadata: ["address": "\(address)", "vins": "\(settings.allowedVINs.count)", "market": "\(settings.market)"])
        }
        let limits = configuration.limits
        let environment = GBT32960Environment(
            authorize: { policy.admit($0).flatMap(\.gbt32960Peer) },
            plainPeer: settings.tls ? nil : .allowListed(settings.allowedVINs, market: settings.market),
            regions: flows, sink: sink, settings: settings,
            now: { Int64(Date().timeIntervalSince1970 * 1000) }, metrics: GBT32960Metrics(), logger: logger)
        let listener = GBT32960Listener(
            tls: settings.tls ? tlsContext : nil,
            registry: ConnectionRegistry(
                maxConnections: limits.maxConnections, maxPerAddress: limits.maxConnectionsPerAddress),
            environment: environment,
            limits: ListenerLimits(limits),
            group: MultiThreadedEventLoopGroup.singleton,
            proxyProtocol: configuration.listen.proxyProtocol,
            proxyHeaderRejected: { [logger] error in
                Counter(label: "horgos_proxy_header_rejected_total", dimensions: [("reason", error.reason)]).increment()
                logger.notice("GB/T 32960 connection without a valid PROXY v2 header closed", metadata: ["error": "\(error)"])
            })
        return GBT32960Service(
            listener: listener, address: address, drainTimeout: .seconds(configuration.shutdown.drainTimeoutSeconds),
            logger: logger, onBound: onBound)
    }
}
