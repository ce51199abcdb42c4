import Foundation

/// The stream's configuration keys (issue 20: `node.id`, `stream.*`, `follow.*`); every key has a default,
/// and without `stream.servers` the node runs with no NATS at all.
///
/// | key | default | allowed |
/// |---|---|---|
/// | `node.id` | the host name (letters, digits, `-`, `_`) | 1...32 of `A-Z a-z 0-9 - _`; unique and stable per node |
/// | `stream.servers` | empty: no stream | `nats://[user:pass@]host:port` or `tls://...`, comma separated |
/// | `stream.subject_prefix` | `horgos` | NATS subject tokens (`a.b`), no wildcards or spaces |
/// | `stream.name` | `HORGOS` | 1...64 of `A-Z a-z 0-9 - _` |
/// | `stream.replicas` | `3` | 1...5: replicas of the stream when Horgos creates it |
/// | `stream.max_age_days` | `7` | 0...3650 (0: no limit): the stream keeps messages this long when Horgos creates it |
/// | `stream.max_bytes` | `0` | 0...2^50 (0: no limit): the stream's size bound when Horgos creates it |
/// | `stream.duplicate_window_seconds` | `120` | 1...86400: JetStream's de-duplication window (at creation) |
/// | `stream.max_lag_bytes` | `268435456` | 1048576...`journal.max_bytes`: unpublished bytes before frames wait |
/// | `stream.max_outstanding` | `1024` | 1...65536: publishes awaiting JetStream's ack |
/// | `stream.ack_timeout_ms` | `5000` | 100...600000: a publish without an ack this long is sent again |
/// | `stream.tls_ca_certificate` | empty | PEM file the NATS servers' certificates chain to (empty: system roots) |
/// | `stream.tls_certificate`, `stream.tls_key` | empty | a client certificate and key (servers that verify clients) |
/// | `follow.regions` | empty | configured regions this node keeps a copy of from the stream |
/// | `follow.catch_up_timeout_seconds` | `300` | 0...86400 (0: never): a followed region is healthy after it anyway |
public struct StreamSettings: Sendable, Hashable {
    /// `node.id`: this node's name on the stream (`Nats-Msg-Id: <node.id>:<LSN>`, consumer names).
    public var nodeID: String
    /// `stream.servers`: the NATS cluster's URLs; empty: no stream.
    public var servers: [String] = []
    /// `stream.subject_prefix`: entries go to `<prefix>.<CC>.<kind>`.
    public var subjectPrefix = "horgos"
    /// `stream.name`: the JetStream stream (created with `<prefix>.>` when missing).
    public var name = "HORGOS"
    /// `stream.replicas`: the stream's replicas when Horgos creates it.
    public var replicas = 3
    /// `stream.max_age_days`: when Horgos creates the stream; 0 keeps messages until `max_bytes`.
    public var maxAgeDays = 7
    /// `stream.max_bytes`: when Horgos creates the stream; 0: unlimited.
    public var maxBytes: Int64 = 0
    /// `stream.duplicate_window_seconds`: when Horgos creates the stream.
    public var duplicateWindowSeconds = 120
    /// `stream.max_lag_bytes`: a region whose unpublished journal bytes reach this gets backpressure.
    public var maxLagBytes = 256 << 20
    /// `stream.max_outstanding`: publishes in flight.
    public var maxOutstanding = 1024
    /// `stream.ack_timeout_ms`: a publish not acknowledged this long is sent again (with those after it).
    public var ackTimeoutMilliseconds = 5000
    /// `stream.tls_ca_certificate`, `stream.tls_certificate`, `stream.tls_key`.
    public var tlsCACertificate = ""
    public var tlsCertificate = ""
    public var tlsKey = ""
    /// `follow.regions`: regions this node follows from the stream (a standby, or an owner catching up).
    public var followRegions: [String] = []
    /// `follow.catch_up_timeout_seconds`: 0 waits forever.
    public var catchUpTimeoutSeconds = 300

    /// Whether a stream is configured.
    public var isEnabled: Bool { !servers.isEmpty }

    /// Defaults, with `nodeID` from the host name.
    public init(nodeID: String = StreamSettings.defaultNodeID) {
        self.nodeID = nodeID
    }

    /// The host name reduced to `node.id`'s characters (`node` when nothing is left).
    public static var defaultNodeID: String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? ""
        let cleaned = String(host.unicodeScalars.filter { isIDCharacter($0) }.prefix(32))
        return cleaned.isEmpty ? "node" : cleaned
    }

    static func isIDCharacter(_ scalar: Unicode.Scalar) -> Bool {
        (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z") || (scalar >= "0" && scalar <= "9")
            || scalar == "-" || scalar == "_"
    }

    static func isIdentifier(_ text: String, maxLength: Int) -> Bool {
        !text.isEmpty && text.unicodeScalars.count <= maxLength && text.unicodeScalars.allSatisfy(isIDCharacter)
    }

    /// Reads and checks the keys.
    init(keys: KeyReader, regions: [String], journalMaxBytes: Int) throws(HorgosConfigurationError) {
        self.init()
        nodeID = try keys.string("node.id", default: Self.defaultNodeID)
        guard Self.isIdentifier(nodeID, maxLength: 32) else {
            throw .invalid("node.id", nodeID, "use 1 to 32 letters, digits, - or _ (unique and stable per node)")
        }
        servers = try keys.strings("stream.servers").filter { !$0.isEmpty }
        for server in servers where !Self.isServerURL(server) {
            throw .invalid(
                "stream.servers", server, "use nats://host:port or tls://host:port (optionally user:password@host)")
        }
        subjectPrefix = try keys.string("stream.subject_prefix", default: subjectPrefix)
        let tokens = subjectPrefix.split(separator: ".", omittingEmptySubsequences: false)
        guard !subjectPrefix.isEmpty, subjectPrefix.utf8.count <= 128,
            tokens.allSatisfy({ !$0.isEmpty && !$0.contains(where: { " \t*>".contains($0) }) })
        else {
            throw .invalid("stream.subject_prefix", subjectPrefix, "use NATS subject tokens such as horgos or fleet.eu")
        }
        name = try keys.string("stream.name", default: name)
        guard Self.isIdentifier(name, maxLength: 64) else {
            throw .invalid("stream.name", name, "use 1 to 64 letters, digits, - or _")
        }
        replicas = try keys.int("stream.replicas", default: replicas, in: 1...5)
        maxAgeDays = try keys.int("stream.max_age_days", default: maxAgeDays, in: 0...3650)
        maxBytes = Int64(try keys.int("stream.max_bytes", default: 0, in: 0...(1 << 50)))
        duplicateWindowSeconds = try keys.int(
            "stream.duplicate_window_seconds", default: duplicateWindowSeconds, in: 1...86400)
        maxLagBytes = try keys.int(
            "stream.max_lag_bytes", default: min(maxLagBytes, journalMaxBytes),
            in: (1 << 20)...max(1 << 20, journalMaxBytes),
            allowed: "use an integer in 1048576...\(journalMaxBytes) (at most journal.max_bytes)")
        maxOutstanding = try keys.int("stream.max_outstanding", default: maxOutstanding, in: 1...65536)
        ackTimeoutMilliseconds = try keys.int(
            "stream.ack_timeout_ms", default: ackTimeoutMilliseconds, in: 100...600_000)
        tlsCACertificate = try keys.string("stream.tls_ca_certificate", default: "")
        tlsCertificate = try keys.string("stream.tls_certificate", default: "")
        tlsKey = try keys.string("stream.tls_key", default: "")
        for (key, path) in [
            ("stream.tls_ca_certificate", tlsCACertificate), ("stream.tls_certificate", tlsCertificate),
            ("stream.tls_key", tlsKey),
        ] where !path.isEmpty && !FileManager.default.isReadableFile(atPath: path) {
            throw .invalid(key, path, "give a readable PEM file")
        }
        if tlsCertificate.isEmpty != tlsKey.isEmpty {
            throw .invalid(
                tlsCertificate.isEmpty ? "stream.tls_certificate" : "stream.tls_key", "",
                "set stream.tls_certificate and stream.tls_key together")
        }
        followRegions = try keys.strings("follow.regions").filter { !$0.isEmpty }
        var seen: Set<String> = []
        for region in followRegions {
            guard regions.contains(region) else {
                throw .invalid("follow.regions", region, "list regions this node serves (the regions key)")
            }
            guard seen.insert(region).inserted else {
                throw .invalid("follow.regions", region, "list each region once")
            }
        }
        if !followRegions.isEmpty && servers.isEmpty {
            throw .invalid(
                "follow.regions", followRegions.joined(separator: ","),
                "set stream.servers too (regions are followed from it)")
        }
        catchUpTimeoutSeconds = try keys.int(
            "follow.catch_up_timeout_seconds", default: catchUpTimeoutSeconds, in: 0...86400)
    }

    /// Whether `text` parses as a NATS server URL (`nats://`, `tls://` or a bare `host:port`).
    static func isServerURL(_ text: String) -> Bool {
        var rest = Substring(text)
        if let range = rest.range(of: "://") {
            guard ["nats", "tls"].contains(rest[..<range.lowerBound].lowercased()) else { return false }
            rest = rest[range.upperBound...]
        }
        if let at = rest.lastIndex(of: "@") { rest = rest[rest.index(after: at)...] }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty, !rest.contains(" "), !rest.contains("/") else { return false }
        if rest.hasPrefix("[") { return rest.contains("]") }
        if let colon = rest.lastIndex(of: ":") {
            guard let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else { return false }
            return colon != rest.startIndex
        }
        return true
    }
}
