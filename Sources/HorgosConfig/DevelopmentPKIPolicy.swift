/// When the daemon may create and use its development PKI (a CA whose key sits in the state directory).
///
/// Only when every listener (telemetry, GB/T 32960, admin) is on loopback, or when `tls.development: true`
/// says so explicitly; otherwise `horgosd` refuses to start (exit 78) and names the keys to set.
public enum DevelopmentPKIPolicy {
    /// True for `127.0.0.0/8`, `::1` and `localhost`.
    public static func isLoopback(_ host: String) -> Bool {
        let lower = host.lowercased()
        if lower == "localhost" || lower == "::1" || lower == "0:0:0:0:0:0:0:1" { return true }
        let parts = lower.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    /// Why this configuration may not use the development PKI, or nil when it may (or does not use it).
    public static func refusal(_ configuration: HorgosConfiguration) -> String? {
        guard configuration.tls.usesDevelopmentPKI, !configuration.tls.development else { return nil }
        var exposed: [String] = []
        if !isLoopback(configuration.listen.telemetry.host) {
            exposed.append("listen.telemetry \(configuration.listen.telemetry)")
        }
        // Every listener, whatever it speaks: a GB/T 32960 listener on a public address is production even
        // with `gbt32960.tls: off` (the daemon beside it must not mint its own CA).
        if let gbt32960 = configuration.gbt32960.listen, !isLoopback(gbt32960.host) {
            exposed.append("listen.gbt32960 \(gbt32960)")
        }
        if configuration.listen.admin.unixSocketPath == nil && !isLoopback(configuration.listen.admin.host) {
            exposed.append("listen.admin \(configuration.listen.admin)")
        }
        guard !exposed.isEmpty else { return nil }
        return "no tls.* certificate files are configured and \(exposed.joined(separator: ", ")) is not on loopback; "
            + "set tls.ca_certificate, tls.server_certificate and tls.server_key (see the RUNBOOK), or set "
            + "tls.development: true to serve the development PKI off loopback (never in production)"
    }
}
