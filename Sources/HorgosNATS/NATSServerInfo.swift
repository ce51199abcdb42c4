import Foundation

/// The fields of the server's `INFO` the client uses.
public struct NATSServerInfo: Sendable, Hashable, Decodable {
    public var serverID: String
    public var serverName: String?
    public var version: String
    /// Whether the server understands headers (`HPUB`/`HMSG`); JetStream needs them.
    public var headers: Bool
    /// The largest payload (headers included) the server accepts.
    public var maxPayload: Int
    /// The server wants TLS before `CONNECT`.
    public var tlsRequired: Bool
    /// `host:port` of the other servers of the cluster, for reconnecting elsewhere (cluster discovery).
    public var connectURLs: [String]
    /// Whether JetStream is enabled on this server.
    public var jetStream: Bool

    enum CodingKeys: String, CodingKey {
        case serverID = "server_id"
        case serverName = "server_name"
        case version
        case headers
        case maxPayload = "max_payload"
        case tlsRequired = "tls_required"
        case connectURLs = "connect_urls"
        case jetStream = "jetstream"
    }

    public init(
        serverID: String = "", serverName: String? = nil, version: String = "", headers: Bool = true,
        maxPayload: Int = 1 << 20, tlsRequired: Bool = false, connectURLs: [String] = [], jetStream: Bool = true
    ) {
        self.serverID = serverID
        self.serverName = serverName
        self.version = version
        self.headers = headers
        self.maxPayload = maxPayload
        self.tlsRequired = tlsRequired
        self.connectURLs = connectURLs
        self.jetStream = jetStream
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        serverID = try c.decodeIfPresent(String.self, forKey: .serverID) ?? ""
        serverName = try c.decodeIfPresent(String.self, forKey: .serverName)
        version = try c.decodeIfPresent(String.self, forKey: .version) ?? ""
        headers = try c.decodeIfPresent(Bool.self, forKey: .headers) ?? false
        maxPayload = try c.decodeIfPresent(Int.self, forKey: .maxPayload) ?? (1 << 20)
        tlsRequired = try c.decodeIfPresent(Bool.self, forKey: .tlsRequired) ?? false
        connectURLs = try c.decodeIfPresent([String].self, forKey: .connectURLs) ?? []
        jetStream = try c.decodeIfPresent(Bool.self, forKey: .jetStream) ?? false
    }

    /// Decodes the JSON of an `INFO` line.
    public init(json: [UInt8]) throws {
        self = try JSONDecoder().decode(NATSServerInfo.self, from: Data(json))
    }
}

/// One server to connect to: `nats://[user:password@]host:port` or `tls://...` (TLS required), as in
/// `stream.servers`. A bare `host:port` means `nats://`. The default port is 4222.
public struct NATSServerAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// `tls://`: TLS is used even if the server does not require it.
    public var tls: Bool
    public var user: String?
    public var password: String?
    /// `nats://token@host`: a token instead of user and password.
    public var token: String?
    /// Learned from a server's `connect_urls`, not configured.
    public var discovered: Bool = false

    public init(host: String, port: Int = 4222, tls: Bool = false, discovered: Bool = false) {
        self.host = host
        self.port = port
        self.tls = tls
        self.discovered = discovered
    }

    /// Parses a URL as described above; nil when malformed.
    public init?(parsing text: String) {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        tls = false
        if let range = rest.range(of: "://") {
            let scheme = rest[..<range.lowerBound].lowercased()
            switch scheme {
            case "nats": tls = false
            case "tls": tls = true
            default: return nil
            }
            rest = rest[range.upperBound...]
        }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                user = String(credentials[..<colon]).removingPercentEncoding
                password = String(credentials[credentials.index(after: colon)...]).removingPercentEncoding
            } else {
                token = String(credentials).removingPercentEncoding
            }
        }
        var hostPart = rest
        var port = 4222
        if hostPart.hasPrefix("[") {
            guard let close = hostPart.firstIndex(of: "]") else { return nil }
            let after = hostPart[hostPart.index(after: close)...]
            hostPart = hostPart[hostPart.index(after: hostPart.startIndex)..<close]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()) else { return nil }
                port = p
            } else if !after.isEmpty {
                return nil
            }
        } else if let colon = hostPart.lastIndex(of: ":") {
            guard let p = Int(hostPart[hostPart.index(after: colon)...]) else { return nil }
            port = p
            hostPart = hostPart[..<colon]
        }
        guard !hostPart.isEmpty, !hostPart.contains(" "), !hostPart.contains("/"), (1...65535).contains(port) else {
            return nil
        }
        host = String(hostPart)
        self.port = port
    }

    /// The URL without credentials (for logs and `/status`).
    public var description: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return "\(tls ? "tls" : "nats")://\(h):\(port)"
    }
}
