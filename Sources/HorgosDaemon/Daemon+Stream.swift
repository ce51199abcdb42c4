import Foundation
import HorgosNATS
import HorgosServer
import HorgosStore
import HorgosStream
import HorgosWire
import Logging
import NIOCore
import NIOSSL

/// Issue 20's wiring: the stream side of the node (publisher, follower, `replicated` gate), its
/// `/status`, `/health/CC` and `/metrics` figures. Nothing here runs without `stream.servers`.
extension Daemon {
    /// The stream side of the node, made before the store (its hooks go into the store's configuration);
    /// nil without `stream.servers`. A TLS file that cannot be read is a configuration error (exit 78).
    static func makeStreamNode(
        _ configuration: HorgosConfiguration, logger: Logger
    ) throws(DaemonStartupError) -> StreamNode? {
        let s = configuration.stream
        guard s.isEnabled else { return nil }
        let servers = s.servers.compactMap(NATSServerAddress.init(parsing:))
        var tls: TLSConfiguration?
        if !s.tlsCACertificate.isEmpty || !s.tlsCertificate.isEmpty || servers.contains(where: \.tls) {
            var t = TLSConfiguration.makeClientConfiguration()
            if !s.tlsCACertificate.isEmpty { t.trustRoots = .file(s.tlsCACertificate) }
            if !s.tlsCertificate.isEmpty {
                do {
                    t.certificateChain = try NIOSSLCertificate.fromPEMFile(s.tlsCertificate).map { .certificate($0) }
                } catch {
                    throw DaemonStartupError(message: "stream.tls_certificate: \(error)", exitCode: 78)
                }
                do {
                    t.privateKey = .privateKey(try NIOSSLPrivateKey(file: s.tlsKey, format: .pem))
                } catch {
                    throw DaemonStartupError(message: "stream.tls_key: \(error)", exitCode: 78)
                }
            }
            tls = t
        }
        let store = configuration.store
        let regions = configuration.regions.compactMap(HorgosWire.Region.init)
        let settings = StreamNodeSettings(
            servers: servers, tls: tls, node: s.nodeID, subjectPrefix: s.subjectPrefix,
            definition: StreamDefinition(
                name: s.name, subjects: ["\(s.subjectPrefix).>"], replicas: s.replicas,
                maxAgeSeconds: s.maxAgeDays * 86_400, maxBytes: s.maxBytes == 0 ? -1 : s.maxBytes,
                duplicateWindowSeconds: s.duplicateWindowSeconds),
            maxLagBytes: s.maxLagBytes, maxOutstanding: s.maxOutstanding,
            ackTimeout: .milliseconds(Int64(s.ackTimeoutMilliseconds)), replicated: store.durability == .replicated,
            stateDirectory: configuration.stateDirectory, regions: regions,
            followRegions: s.followRegions.compactMap(HorgosWire.Region.init),
            catchUpTimeout: s.catchUpTimeoutSeconds == 0 ? nil : .seconds(Int64(s.catchUpTimeoutSeconds)),
            horizon: TimeHorizon(
                pastMs: Int64(store.lateHorizonDays) * 86_400_000, futureMs: Int64(store.futureHorizonHours) * 3_600_000
            ),
            // Issue 22's policy: a region with `policy.<CC>.stream: false` never leaves the node (its
            // entries are skipped, and in `replicated` mode its ACKs do not wait for the stream).
            streams: { [configuration] region in configuration.policy(for: region.code).stream })
        do {
            return try StreamNode(settings: settings, logger: logger)
        } catch {
            throw DaemonStartupError(message: "stream: \(error)", exitCode: 78)
        }
    }

    /// Wires the stream's figures into `/status` (the `stream` object and each region's lag columns) and
    /// `/health/CC` (a followed region answers 503 until it caught up).
    static func reportStream(
        _ node: StreamNode, into report: inout RegionReport, state: DaemonState,
        durability: HorgosConfiguration.Durability
    ) {
        report.streamStatus = { code in
            guard let region = HorgosWire.Region(code) else { return nil }
            let lag = node.publisher.snapshot.regions[region] ?? RegionPublishLag()
            let follow = node.follower?.status[region]
            return RegionStreamStatus(
                publishedLSN: lag.publishedLSN, publishLagEntries: lag.entries, publishLagBytes: lag.bytes,
                publishLagSeconds: lag.seconds, publishHeld: lag.heldBack, followState: follow?.state,
                followLagEntries: follow?.lagEntries, caughtUp: follow?.caughtUp ?? true)
        }
        state.setStreamReporter {
            let s = node.publisher.snapshot
            return StreamStatus(
                state: s.connection.state.rawValue, server: s.connection.server,
                serverVersion: s.connection.serverVersion,
                streamName: node.settings.definition.name, node: node.settings.node, durability: durability.rawValue,
                publishedLsn: s.publishedLSN, published: s.published, duplicates: s.duplicates, resends: s.resends,
                outstanding: s.outstanding, heldAcks: s.heldAcknowledgements,
                followedRegions: node.settings.followRegions.map(\.code),
                lastError: s.lastError ?? s.connection.lastError)
        }
    }

    /// The stream's metric families in Prometheus text. Without a stream only their HELP and TYPE lines
    /// (so dashboards and alert rules name families every node exports).
    static func streamMetricsText(_ node: StreamNode?) -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ samples: [(String, String)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (labels, value) in samples { out += "\(name)\(labels) \(value)\n" }
        }
        let s = node?.publisher.snapshot
        let follow = node?.follower?.status ?? [:]
        let regions = (s?.regions ?? [:]).sorted { $0.key < $1.key }
        func perRegion(_ read: (RegionPublishLag) -> String) -> [(String, String)] {
            regions.map { ("{region=\"\($0.key.code)\"}", read($0.value)) }
        }
        func single(_ value: String?) -> [(String, String)] { value.map { [("", $0)] } ?? [] }
        family(
            "horgos_stream_connected", "gauge", "1 while connected to a NATS server (stream.servers).",
            single(s.map { $0.connection.state == .connected ? "1" : "0" }))
        family(
            "horgos_stream_published_lsn", "gauge", "Every journal entry at or below this LSN is on the stream.",
            single(s.map { "\($0.publishedLSN)" }))
        family(
            "horgos_stream_published_total", "counter", "Journal entries acknowledged by JetStream.",
            single(s.map { "\($0.published)" }))
        family(
            "horgos_stream_duplicates_total", "counter", "Publishes JetStream already had (its duplicate window).",
            single(s.map { "\($0.duplicates)" }))
        family(
            "horgos_stream_resends_total", "counter", "Publishes sent again after a timeout, an error or a reconnect.",
            single(s.map { "\($0.resends)" }))
        family(
            "horgos_stream_publish_errors_total", "counter", "Publishes JetStream answered with an error.",
            (s?.errors ?? [:]).sorted { $0.key < $1.key }.map { ("{reason=\"\($0.key)\"}", "\($0.value)") })
        family(
            "horgos_stream_outstanding", "gauge", "Publishes awaiting JetStream's ack.",
            single(s.map { "\($0.outstanding)" }))
        family(
            "horgos_stream_held_acks", "gauge", "store.durability replicated: ACKs to units waiting for the stream.",
            single(s.map { "\($0.heldAcknowledgements)" }))
        family(
            "horgos_stream_publish_lag_entries", "gauge", "Journal entries of the region not yet on the stream.",
            perRegion { "\($0.entries)" })
        family(
            "horgos_stream_publish_lag_bytes", "gauge", "Journal bytes of the region not yet on the stream.",
            perRegion { "\($0.bytes)" })
        family(
            "horgos_stream_publish_lag_seconds", "gauge", "Age of the region's oldest entry not yet on the stream.",
            perRegion { "\($0.seconds)" })
        family(
            "horgos_stream_publish_held", "gauge",
            "1 while the region's frames wait: its unpublished bytes reached stream.max_lag_bytes.",
            perRegion { $0.heldBack ? "1" : "0" })
        out += "# HELP horgos_stream_ack_latency_seconds From an entry being durable to JetStream's ack.\n"
        out += "# TYPE horgos_stream_ack_latency_seconds histogram\n"
        if let s {
            PrometheusHistogramText.appendSeries(
                "horgos_stream_ack_latency_seconds", labels: "",
                upperBounds: StreamPublisherSnapshot.ackLatencyBucketsUs, counts: s.ackLatencyCounts, sum: s.ackLatencySumUs, unitsPerSecond: 1e6, to: &out)
        }
        let followed = follow.sorted { $0.key < $1.key }
        func perFollowed(_ read: (RegionFollowStatus) -> String) -> [(String, String)] {
            followed.map { ("{region=\"\($0.key.code)\"}", read($0.value)) }
        }
        family(
            "horgos_follow_lag_entries", "gauge", "Entries the stream holds for this follower not yet in its journal.",
            perFollowed { "\($0.lagEntries)" })
        family(
            "horgos_follow_lag_seconds", "gauge", "Age of the newest followed entry applied, while entries wait.",
            perFollowed { "\($0.lagSeconds)" })
        family(
            "horgos_follow_caught_up", "gauge", "1 once the followed region caught up with the stream.",
            perFollowed { $0.caughtUp ? "1" : "0" })
        family(
            "horgos_follow_applied_total", "counter", "Entries of other nodes copied into this node's journal.",
            perFollowed { "\($0.applied)" })
        family(
            "horgos_follow_invalid_total", "counter", "Stream messages the follower could not apply (skipped).",
            perFollowed { "\($0.invalid)" })
        return out
    }
}
