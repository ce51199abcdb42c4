import Foundation
import HorgosAdminAPI
import Logging
import Metrics
import NIOSSL
import Synchronization

/// Everything a reload installs, read and checked in full before anything is swapped.
public struct TrustMaterial: Sendable {
    /// The new server TLS context (certificates, CA, policy).
    public var tlsContext: NIOSSLContext
    /// The new deny list and CRLs.
    public var revocations: Revocations
    /// The new `limits.*` (applied to connections accepted from now on, and to the connection limits).
    public var limits: HorgosConfiguration.Limits

    /// Material from its parts.
    public init(tlsContext: NIOSSLContext, revocations: Revocations, limits: HorgosConfiguration.Limits) {
        self.tlsContext = tlsContext
        self.revocations = revocations
        self.limits = limits
    }
}

/// Reloads certificates, CRLs, the deny list and `limits.*`, failing closed.
///
/// A reload first reads and checks everything (`load`); only when every part is good is it installed
/// (TLS context, revocation state, limits) and are the open sessions the new state revokes ended, on every
/// listener, the protocol's way (native: ERROR CERTIFICATE_REVOKED; GB/T 32960: closed). When any part fails, nothing changes: the previous state keeps working, the
/// error is logged and counted (`horgos_reload_failures_total`), and the verdict says so.
public final class TrustReloader: Sendable {
    /// Reads and checks the new material; throws to refuse the reload (the message names what is wrong).
    public typealias Loader = @Sendable () async throws -> TrustMaterial

    private let load: Loader
    private let tls: ReloadableTLSContext
    private let revocations: RevocationListHolder
    private let connections: ConnectionRegistry?
    private let applyLimits: @Sendable (HorgosConfiguration.Limits) -> Void
    private let logger: Logger
    private let verdict = Mutex(ReloadVerdict(generation: 0, succeeded: true, error: nil, finishedAt: Date(),
                                              revokedSessions: 0))
    private let serial = Mutex(false)

    /// A reloader over the daemon's shared holders.
    public init(
        load: @escaping Loader, tls: ReloadableTLSContext, revocations: RevocationListHolder,
        connections: ConnectionRegistry?, applyLimits: @escaping @Sendable (HorgosConfiguration.Limits) -> Void,
        logger: Logger
    ) {
        self.load = load
        self.tls = tls
        self.revocations = revocations
        self.connections = connections
        self.applyLimits = applyLimits
        self.logger = logger
    }

    /// The latest verdict.
    public var latest: ReloadVerdict { verdict.withLock { $0 } }

    /// Runs one reload (SIGHUP); concurrent calls run one after the other.
    @discardableResult
    public func reload() async -> ReloadVerdict {
        while serial.withLock({ busy in
            if busy { return true }
            busy = true
            return false
        }) {
            try? await Task.sleep(for: .milliseconds(10))
        }
        defer { serial.withLock { $0 = false } }
        let generation = latest.generation + 1
        let material: TrustMaterial
        do {
            material = try await load()
        } catch {
            let message = "\(error)"
            logger.error(
                "reload failed; the previous certificates, revocations and limits stay in force",
                metadata: ["error": "\(message)"])
            Counter(label: "horgos_reload_failures_total").increment()
            let failed = ReloadVerdict(
                generation: generation, succeeded: false, error: message, finishedAt: Date(), revokedSessions: 0)
            verdict.withLock { $0 = failed }
            return failed
        }
        tls.replace(with: material.tlsContext)
        revocations.install(material.revocations)
        applyLimits(material.limits)
        Self.report(material.revocations, logger: logger)
        var ended = 0
        if let connections {
            let state = material.revocations
            ended = await connections.endRevokedSessions { state.isRevoked(serialNumber: $0.serialNumber, vin: $0.vin) }
        }
        Counter(label: "horgos_reloads_total").increment()
        logger.notice(
            "reloaded certificates, revocations and limits",
            metadata: [
                "deny_list_entries": "\(material.revocations.denyList.count)",
                "crls": "\(material.revocations.crls.count)",
                "crl_serials": "\(material.revocations.crlSerialNumbers.count)",
                "revoked_sessions": "\(ended)",
            ])
        let done = ReloadVerdict(
            generation: generation, succeeded: true, error: nil, finishedAt: Date(), revokedSessions: ended)
        verdict.withLock { $0 = done }
        return done
    }

    /// Logs and exports the CRLs' freshness: `horgos_crl_next_update_timestamp_seconds` per file and
    /// `horgos_crl_stale` (1 while some CRL is past its nextUpdate at load time).
    public static func report(_ revocations: Revocations, logger: Logger, now: Date = Date()) {
        for crl in revocations.crls {
            if let next = crl.nextUpdate {
                Gauge(label: "horgos_crl_next_update_timestamp_seconds", dimensions: [("file", crl.path)])
                    .record(Double(next))
            }
        }
        let stale = revocations.staleCRLs(now: now)
        Gauge(label: "horgos_crl_stale").record(stale.isEmpty ? 0 : 1)
        for crl in stale {
            logger.warning(
                "CRL is past its nextUpdate; it stays in force, publish a fresh one and reload",
                metadata: [
                    "file": "\(crl.path)", "issuer": "\(crl.issuer)",
                    "next_update": "\(Date(timeIntervalSince1970: TimeInterval(crl.nextUpdate ?? 0)))",
                ])
        }
    }
}
