import HorgosPKI
import HorgosWire
import Logging

/// The daemon's whole configuration: every key has a default, so `horgosd` starts with no file at all.
///
/// Read it with ``HorgosConfiguration/load(filePath:environment:)`` (YAML file plus `HORGOS_...`
/// environment overrides, see `HorgosConfiguration+Loading.swift`) or build one in code for tests.
/// The key of each property in the YAML file is given in its doc comment; the environment variable is
/// `HORGOS_` followed by the key in upper case with `.` replaced by `_` (for example
/// `limits.ack_window` -> `HORGOS_LIMITS_ACK_WINDOW`). Lists are comma separated in the environment.
///
/// | key | default | allowed |
/// |---|---|---|
/// | `state_directory` | `./horgos-state` | any non-empty path |
/// | `regions` | 41 ISO 3166-1 alpha-2 codes (``defaultRegions``) | non-empty, two letters A-Z each, no duplicates |
/// | `listen.telemetry` | `127.0.0.1:7443` | `host:port` or `[v6]:port`, port 0...65535 |
/// | `listen.admin` | `127.0.0.1:9477` | `host:port`, `[v6]:port` or `unix:/absolute/path` |
/// | `limits.admin_max_connections` | `16` | 1...1024 |
/// | `limits.admin_idle_timeout_seconds` | `30` | 1...3600 |
/// | `listen.proxy_protocol` | `off` | `off` or `v2` (a PROXY v2 header before TLS, from HAProxy) |
/// | `tls.ca_certificate` | `""` | PEM file; empty: dev PKI under `<state>/pki` |
/// | `tls.server_certificate` | `""` | PEM file; set together with `tls.ca_certificate` and `tls.server_key` |
/// | `tls.server_key` | `""` | PEM file |
/// | `tls.revocation_list` | `""` | deny-list file; empty: `<state>/pki/revoked.txt` if present |
/// | `tls.crl` | `[]` | X.509 CRL files (PEM or DER) signed by the fleet CA |
/// | `tls.development` | `false` | `true` allows a development PKI on a non-loopback listener |
/// | `tls.key_exchange_groups` | `x25519_mlkem768,x25519,secp256r1,secp384r1` | those four, in preference order |
/// | `limits.handshake_timeout_seconds` | `10` | 1...3600 |
/// | `limits.idle_timeout_seconds` | `90` | 1...86400, above the heartbeat interval |
/// | `limits.heartbeat_interval_seconds` | `30` | 1...3600 |
/// | `limits.max_payload_bytes` | `65536` | 1024...1048576 |
/// | `limits.max_connections` | `100000` | 1...10000000 |
/// | `limits.max_connections_per_address` | `2000` | 1...max_connections |
/// | `limits.ack_window` | `64` | 1...1024 |
/// | `limits.max_buffered_bytes` | `1073741824` | 1048576...1099511627776 |
/// | `queue.high_watermark_bytes` | `8388608` | 1024...17179869184 |
/// | `queue.low_watermark_bytes` | `4194304` | 0...high_watermark_bytes - 1 |
/// | `store.durability` | `disk` | `disk`, `process` or `replicated` (needs `stream.servers`) |
/// | `store.commit_interval_ms` | `20` | 0...10000; unused since the journal (kept so old files load) |
/// | `store.commit_max_rows` | `20000` | 1...10000000: rows per apply transaction |
/// | `store.apply_interval_ms` | `500` | 0...60000 |
/// | `store.appliers` | `0` (one per core) | 0...256 |
/// | `journal.segment_bytes` | `67108864` | 1048576...1073741824 |
/// | `journal.max_bytes` | `1073741824` | 2 x segment_bytes...1099511627776 |
/// | `journal.max_delay_us` | `0` | 0...100000 |
/// | `journal.reserve_bytes` | `67108864` | 0...(journal.max_bytes); 0 keeps no reserve |
/// | `store.integrity_check_interval_seconds` | `300` | 0...86400; 0 turns the periodic check off |
/// | `store.retention_days` | `90` | 1...36500 |
/// | `store.late_horizon_days` | `7` | 0...3650 |
/// | `store.future_horizon_hours` | `24` | 0...8760 |
/// | `shutdown.drain_timeout_seconds` | `20` | 0...3600 |
/// | `log.level` | `info` | trace, debug, info, notice, warning, error, critical |
/// | `nodes` | `[]` | admin URLs of every node of the fleet, for `horgosctl status` / `fleet` (the daemon ignores it) |
/// | `node.id`, `stream.*`, `follow.*` | no stream | the NATS JetStream stream, standby copies (``StreamSettings``) |
/// | `policy.<CC>.retention_days` | `store.retention_days` | 1...36500 (``RegionPolicy``) |
/// | `policy.<CC>.stream` / `policy.<CC>.backup` | `true` | `false`: the region's data never leaves the node that way |
/// | `policy.<CC>.position_decimals` | as received | 0...7 decimal places of a degree kept in stored positions |
/// | `audit.path` | `<state_directory>/audit.log` | the hash-chained audit log of operator actions (``AuditSettings``) |
public struct HorgosConfiguration: Sendable, Hashable {
    /// `state_directory`: where shards, the dev PKI and other daemon state live. Default `./horgos-state`.
    public var stateDirectory: String
    /// `regions`: the ISO 3166-1 alpha-2 markets this node serves; a certificate naming another is refused.
    public var regions: [String]
    /// `listen.*`: the sockets the daemon binds.
    public var listen: Listen
    /// `tls.*`: certificate files; all empty means a development PKI in the state directory.
    public var tls: TLS
    /// `limits.*`: per-connection and global limits.
    public var limits: Limits
    /// `queue.*`: per-region ingest queue watermarks (backpressure).
    public var queue: Queue
    /// `store.*`: shard writer behaviour.
    public var store: Store
    /// `shutdown.*`: graceful stop behaviour.
    public var shutdown: Shutdown
    /// `log.*`: logging.
    public var log: Log
    /// `listen.gbt32960` and `gbt32960.*`: the GB/T 32960 listener (``GBT32960Settings`` lists the keys).
    public var gbt32960 = GBT32960Settings()
    /// `node.id`, `stream.*` and `follow.*`: the NATS JetStream stream (issue 20; ``StreamSettings``).
    public var stream = StreamSettings()
    /// `nodes`: the admin endpoints (`http://host:port` or `unix:/path`) of every node of the fleet;
    /// `horgosctl status` and `fleet` merge their answers. Read by `horgosctl` only. Default empty.
    public var nodes: [String] = []
    /// `policy.<CC>.*`: the keys each served region sets (``RegionPolicy``); read them through
    /// ``policy(for:)``, which fills in the defaults. Regions without a key have no entry.
    public var policies: [String: RegionPolicyOverride] = [:]
    /// `audit.*`: the audit log (``AuditSettings``, ``effectiveAuditPath``).
    public var audit = AuditSettings()

    /// The 41 markets served by default (the Gulf, Africa, Central Asia, South-East Asia, Oceania,
    /// Latin America and Europe). Configuration, not code: override with `regions`.
    public static let defaultRegions: [String] = Region.defaultCodes

    /// A configuration with every key at its default.
    public init(
        stateDirectory: String = "./horgos-state",
        regions: [String] = HorgosConfiguration.defaultRegions,
        listen: Listen = Listen(),
        tls: TLS = TLS(),
        limits: Limits = Limits(),
        queue: Queue = Queue(),
        store: Store = Store(),
        shutdown: Shutdown = Shutdown(),
        log: Log = Log()
    ) {
        self.stateDirectory = stateDirectory
        self.regions = regions
        self.listen = listen
        self.tls = tls
        self.limits = limits
        self.queue = queue
        self.store = store
        self.shutdown = shutdown
        self.log = log
    }

    /// The `listen.*` keys: where the daemon accepts connections.
    public struct Listen: Sendable, Hashable {
        /// `listen.telemetry`: the mutual-TLS listener for vehicles and gateways. Default `127.0.0.1:7443`.
        public var telemetry: ListenAddress
        /// `listen.admin`: the plain-HTTP admin endpoint (`/health`, `/status`, `/metrics`); keep it on
        /// loopback or a management network. Default `127.0.0.1:9477`.
        public var admin: ListenAddress
        /// `listen.proxy_protocol`: `v2` when the telemetry listener sits behind a load balancer that
        /// sends PROXY protocol v2 (HAProxy `send-proxy-v2`); limits, logs and `/status` then use the
        /// client address from the header. Default `off`.
        public var proxyProtocol: ProxyProtocolMode = .off

        /// Loopback defaults.
        public init(
            telemetry: ListenAddress = ListenAddress(host: "127.0.0.1", port: 7443),
            admin: ListenAddress = ListenAddress(host: "127.0.0.1", port: 9477)
        ) {
            self.telemetry = telemetry
            self.admin = admin
        }
    }

    /// The `tls.*` keys: PEM files of the fleet CA and the server's certificate and key.
    public struct TLS: Sendable, Hashable {
        /// `tls.ca_certificate`: the fleet CA that signs vehicle and gateway certificates. Empty: dev PKI.
        public var caCertificate: String
        /// `tls.server_certificate`: the server's certificate chain (PEM). Empty: dev PKI.
        public var serverCertificate: String
        /// `tls.server_key`: the server's private key (PEM). Empty: dev PKI.
        public var serverKey: String
        /// `tls.revocation_list`: deny list of serials and VINs (see ``RevocationList``). Empty:
        /// `<state>/pki/revoked.txt` when that file exists, otherwise nothing is revoked.
        public var revocationList: String

        /// `tls.crl`: X.509 CRL files (PEM or DER, as `openssl ca -gencrl`, step-ca or Vault write them),
        /// each signature-checked against the fleet CA at start and on every reload. Default none.
        public var crlFiles: [String] = []
        /// `tls.development`: allow the development PKI although a listener is not on loopback.
        /// Default false: without `tls.*` files and off loopback, `horgosd` refuses to start.
        public var development: Bool = false
        /// `tls.key_exchange_groups`: (EC)DHE groups offered, in preference order. The hybrid
        /// post-quantum `x25519_mlkem768` costs more handshake CPU (see the RUNBOOK's TLS policy).
        public var keyExchangeGroups: [KeyExchangeGroup] = KeyExchangeGroup.defaultOrder

        /// All empty: a development PKI is created in the state directory.
        public init(
            caCertificate: String = "", serverCertificate: String = "", serverKey: String = "",
            revocationList: String = ""
        ) {
            self.caCertificate = caCertificate
            self.serverCertificate = serverCertificate
            self.serverKey = serverKey
            self.revocationList = revocationList
        }

        /// True when no certificate file is configured and the daemon should use its development PKI.
        public var usesDevelopmentPKI: Bool {
            caCertificate.isEmpty && serverCertificate.isEmpty && serverKey.isEmpty
        }
    }

    /// The `limits.*` keys: safe defaults against slow, stuck, large or too many clients.
    public struct Limits: Sendable, Hashable {
        /// `limits.handshake_timeout_seconds`: a TLS handshake must finish within this. Default 10.
        public var handshakeTimeoutSeconds: Int
        /// `limits.idle_timeout_seconds`: a session with no frame and no ping for this long is closed.
        /// Default 90; must exceed the heartbeat interval.
        public var idleTimeoutSeconds: Int
        /// `limits.heartbeat_interval_seconds`: the ping interval announced in WELCOME. Default 30.
        public var heartbeatIntervalSeconds: Int
        /// `limits.max_payload_bytes`: the largest frame payload accepted, checked before buffering it.
        /// Default 65536, allowed 1024...1048576.
        public var maxPayloadBytes: Int
        /// `limits.max_connections`: total concurrent connections. Default 100000.
        public var maxConnections: Int
        /// `limits.max_connections_per_address`: per source IP; generous because vehicles sit behind
        /// carrier NAT. Default 2000.
        public var maxConnectionsPerAddress: Int
        /// `limits.ack_window`: frames in flight (unacknowledged) per connection. Default 64, allowed 1...1024.
        public var ackWindow: Int
        /// `limits.admin_max_connections`: open admin-endpoint connections at most; more are closed at
        /// accept. Default 16.
        public var adminMaxConnections: Int = 16
        /// `limits.admin_idle_timeout_seconds`: an admin connection with no request for this long is
        /// closed. Default 30.
        public var adminIdleTimeoutSeconds: Int = 30
        /// `limits.max_buffered_bytes`: all connections' partial frames plus queued frames (the whole
        /// receive buffers they pin) together; above it the daemon stops reading. Default 1 GiB (about
        /// 10 KiB for each of 100,000 connections).
        public var maxBufferedBytes: Int = 1 << 30

        /// The defaults stated on each property.
        public init(
            handshakeTimeoutSeconds: Int = 10, idleTimeoutSeconds: Int = 90,
            heartbeatIntervalSeconds: Int = 30, maxPayloadBytes: Int = 65536,
            maxConnections: Int = 100_000, maxConnectionsPerAddress: Int = 2000, ackWindow: Int = 64
        ) {
            self.handshakeTimeoutSeconds = handshakeTimeoutSeconds
            self.idleTimeoutSeconds = idleTimeoutSeconds
            self.heartbeatIntervalSeconds = heartbeatIntervalSeconds
            self.maxPayloadBytes = maxPayloadBytes
            self.maxConnections = maxConnections
            self.maxConnectionsPerAddress = maxConnectionsPerAddress
            self.ackWindow = ackWindow
        }
    }

    /// The `queue.*` keys: each region's ingest queue is bounded in bytes.
    public struct Queue: Sendable, Hashable {
        /// `queue.high_watermark_bytes`: above this, connections feeding the region stop reading.
        /// Default 8388608 (8 MiB).
        public var highWatermarkBytes: Int
        /// `queue.low_watermark_bytes`: below this, they resume. Default 4194304; must be below the high mark.
        public var lowWatermarkBytes: Int

        /// The defaults stated on each property.
        public init(highWatermarkBytes: Int = 8_388_608, lowWatermarkBytes: Int = 4_194_304) {
            self.highWatermarkBytes = highWatermarkBytes
            self.lowWatermarkBytes = lowWatermarkBytes
        }
    }

    /// How far a commit must reach before an ACK is sent.
    public enum Durability: String, Sendable, Hashable, CaseIterable {
        /// ACK after the journal round's fdatasync: acked data survives power loss.
        case disk
        /// ACK after the journal round's write: acked data survives a daemon crash, not a power cut.
        case process
        /// ACK after the journal round's fdatasync and JetStream's acknowledgement of the entry (a quorum
        /// of the stream's replicas has it): acked data survives the loss of this node's disk.
        case replicated
    }

    /// The `store.*` keys: the per-region group-commit writers and retention.
    public struct Store: Sendable, Hashable {
        /// `store.durability`: `disk` (default), `process` or `replicated` (with `stream.servers`).
        public var durability: Durability
        /// `store.commit_interval_ms`: a group commit at least this often while rows wait. Default 20.
        public var commitIntervalMilliseconds: Int
        /// `store.commit_max_rows`: or as soon as this many rows wait. Default 20000.
        public var commitMaxRows: Int
        /// `store.retention_days`: day partitions older than this are deleted. Default 90.
        public var retentionDays: Int
        /// `store.late_horizon_days`: records older than this (relative to now) are refused. Default 7.
        public var lateHorizonDays: Int
        /// `store.future_horizon_hours`: records further ahead than this are refused. Default 24.
        public var futureHorizonHours: Int
        /// `store.apply_interval_ms`: acknowledged journal entries are applied to the shards after at
        /// most this long (or `commit_max_rows` rows); data is visible to readers then. Default 500.
        public var applyIntervalMilliseconds: Int = 500
        /// `store.appliers`: applier threads; 0 (default) means one per core.
        public var appliers: Int = 0
        /// `journal.segment_bytes`: the journal starts a new segment file at this size. Default 64 MiB.
        public var journalSegmentBytes: Int = 64 << 20
        /// `journal.max_bytes`: the journal's bound on disk; at it, frames wait (backpressure). Default 1 GiB.
        public var journalMaxBytes: Int = 1 << 30
        /// `journal.max_delay_us`: optional extra wait of a journal round for more frames. Default 0.
        public var journalMaxDelayMicroseconds: Int = 0
        /// `journal.reserve_bytes`: space kept allocated (`<state>/journal/reserve`) so that a node on a
        /// full disk can still start, open its shards and checkpoint them; released when the disk
        /// fills, taken back (and writing resumed) once twice this is free. 0: none. Default 64 MiB.
        public var journalReserveBytes: Int = 64 << 20
        /// `store.integrity_check_interval_seconds`: each region's current day file and registry get a
        /// `PRAGMA quick_check` this often; damage found is quarantined at once. 0: off. Default 300.
        public var integrityCheckIntervalSeconds: Int = 300

        /// The defaults stated on each property.
        public init(
            durability: Durability = .disk, commitIntervalMilliseconds: Int = 20, commitMaxRows: Int = 20000,
            retentionDays: Int = 90, lateHorizonDays: Int = 7, futureHorizonHours: Int = 24
        ) {
            self.durability = durability
            self.commitIntervalMilliseconds = commitIntervalMilliseconds
            self.commitMaxRows = commitMaxRows
            self.retentionDays = retentionDays
            self.lateHorizonDays = lateHorizonDays
            self.futureHorizonHours = futureHorizonHours
        }
    }

    /// The `shutdown.*` keys.
    public struct Shutdown: Sendable, Hashable {
        /// `shutdown.drain_timeout_seconds`: on SIGTERM, time allowed to commit, ack and say BYE. Default 20.
        public var drainTimeoutSeconds: Int

        /// The default stated on the property.
        public init(drainTimeoutSeconds: Int = 20) {
            self.drainTimeoutSeconds = drainTimeoutSeconds
        }
    }

    /// The `log.*` keys.
    public struct Log: Sendable, Hashable {
        /// `log.level`: the lowest level written. Default `info`.
        public var level: Logger.Level

        /// The default stated on the property.
        public init(level: Logger.Level = .info) {
            self.level = level
        }
    }
}

extension HorgosConfiguration {
    /// The TLS files the daemon should use, with empty keys resolved against the development PKI.
    public var effectiveTLSFiles: (ca: String, certificate: String, key: String) {
        if tls.usesDevelopmentPKI {
            let pki = DevelopmentPKIPaths(directory: developmentPKIDirectory)
            return (pki.caCertificate, pki.serverCertificate, pki.serverKey)
        }
        return (tls.caCertificate, tls.serverCertificate, tls.serverKey)
    }

    /// `<state>/pki`, where the development PKI lives.
    public var developmentPKIDirectory: String {
        stateDirectory.hasSuffix("/") ? stateDirectory + "pki" : stateDirectory + "/pki"
    }

    /// Where revocations come from: the deny list and the CRLs, checked against the effective fleet CA.
    public var revocationSources: RevocationSources {
        RevocationSources(
            denyListPath: effectiveRevocationListPath, denyListRequired: !tls.revocationList.isEmpty,
            crlPaths: tls.crlFiles, caCertificatePath: effectiveTLSFiles.ca)
    }

    /// The revocation list path: the configured one, or `<state>/pki/revoked.txt` (used only if present).
    public var effectiveRevocationListPath: String {
        tls.revocationList.isEmpty ? developmentPKIDirectory + "/revoked.txt" : tls.revocationList
    }
}

/// A key-exchange group the TLS listener may offer (`tls.key_exchange_groups`).
public enum KeyExchangeGroup: String, Sendable, Hashable, CaseIterable {
    /// Hybrid X25519 + ML-KEM-768 (post-quantum), TLS 1.3 only.
    case x25519MLKEM768 = "x25519_mlkem768"
    /// X25519.
    case x25519
    /// NIST P-256.
    case secp256r1
    /// NIST P-384.
    case secp384r1

    /// The default: the hybrid group first, then the classical ones old units speak.
    public static let defaultOrder: [KeyExchangeGroup] = [.x25519MLKEM768, .x25519, .secp256r1, .secp384r1]

    /// The IANA TLS supported-groups code point.
    public var codePoint: UInt16 {
        switch self {
        case .x25519MLKEM768: 0x11EC
        case .x25519: 0x1D
        case .secp256r1: 0x17
        case .secp384r1: 0x18
        }
    }
}

/// A `host:port` socket address from the configuration; the host is an IP literal or a name.
///
/// IPv6 literals are written in brackets (`[::1]:7443`). Port 0 asks the kernel for a free port (tests).
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// IP literal or host name, without brackets.
    public var host: String
    /// TCP port, 0...65535.
    public var port: Int
    /// A Unix domain socket's path instead of host and port (`unix:/run/horgos/admin.sock`; the admin
    /// endpoint only).
    public var unixSocketPath: String?

    /// An address from its parts.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
        self.unixSocketPath = nil
    }

    /// A Unix domain socket.
    public init(unixSocketPath: String) {
        self.host = ""
        self.port = 0
        self.unixSocketPath = unixSocketPath
    }

    /// Parses `host:port`, `[v6]:port` or `unix:/absolute/path`; nil when malformed.
    public init?(parsing text: String) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst("unix:".count))
            guard path.hasPrefix("/"), path.utf8.count < 108, !path.contains(" ") else { return nil }
            self.host = ""
            self.port = 0
            self.unixSocketPath = path
            return
        }
        self.unixSocketPath = nil
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { return nil }  // an IPv6 literal needs brackets
        }
        guard !host.isEmpty, !host.contains(where: { $0 == " " }),
            let port = Int(portText), (0...65535).contains(port)
        else { return nil }
        self.host = String(host)
        self.port = port
    }

    /// `host:port`, with brackets around IPv6 literals, or `unix:/path`.
    public var description: String {
        if let unixSocketPath { return "unix:" + unixSocketPath }
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
