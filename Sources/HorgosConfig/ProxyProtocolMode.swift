/// `listen.proxy_protocol`: whether the telemetry listener expects a PROXY protocol header first.
public enum ProxyProtocolMode: String, Sendable, Hashable {
    /// Connections start with TLS (vehicles connect directly). The default.
    case off
    /// Every connection starts with a PROXY v2 header (HAProxy `send-proxy-v2`); one without a
    /// valid header is closed and counted, and never reaches TLS.
    case v2
}
