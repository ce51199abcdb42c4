import HorgosAudit
import HorgosServer
import HorgosStore
import HorgosWire
import Logging
import ServiceLifecycle
import UnixSignals

extension Daemon {
    /// The reloader: re-reads the configuration file, builds the TLS context and loads every revocation
    /// source from it, applies `limits.*` to every listener, the connection registry and the byte budget,
    /// and ends the open sessions (of every listener) the new revocations cover.
    func makeTrustReloader(_ pipeline: DaemonPipeline) -> TrustReloader {
        let file = configurationFile
        let started = configuration
        let logger = self.logger
        return TrustReloader(
            load: {
                let fresh = try await HorgosConfiguration.load(filePath: file) { logger.warning("\($0)") }
                if fresh.regions != started.regions || fresh.listen != started.listen || fresh.store != started.store
                    || fresh.gbt32960 != started.gbt32960
                {
                    logger.warning(
                        "regions, listen.*, gbt32960.* and store.* changes need a restart; they are not applied")
                }
                if fresh.tls.usesDevelopmentPKI != started.tls.usesDevelopmentPKI {
                    throw DaemonStartupError(
                        message: "switching between the development PKI and tls.* files needs a restart", exitCode: 78)
                }
                let context = try Daemon.makeTLSContext(fresh)
                let revocations = try Revocations.load(fresh.revocationSources)
                return TrustMaterial(tlsContext: context, revocations: revocations, limits: fresh.limits)
            },
            tls: tlsContext, revocations: revocations, connections: pipeline.connections,
            applyLimits: { limits in
                pipeline.budget.limit = limits.maxBufferedBytes
                pipeline.connections.setLimits(
                    maxConnections: limits.maxConnections, maxPerAddress: limits.maxConnectionsPerAddress)
                var native = pipeline.native.wireProtocol
                native.limits = Daemon.sessionLimits(limits, store: started.store)
                pipeline.native.apply(ListenerLimits(limits), wireProtocol: native)
                pipeline.gbt32960?.apply(ListenerLimits(limits))
                pipeline.connections.reloadTimeouts(
                    SessionTimeoutsReloaded(
                        handshakeTimeout: .seconds(Int64(limits.handshakeTimeoutSeconds)),
                        idleTimeout: .seconds(Int64(limits.idleTimeoutSeconds))))
            },
            logger: logger)
    }

    /// The native session limits from `limits.*`, and the time horizon of `store.*` that WELCOME 1.1 announces.
    static func sessionLimits(_ limits: HorgosConfiguration.Limits, store: HorgosConfiguration.Store) -> SessionLimits {
        SessionLimits(
            ackWindow: limits.ackWindow, maxPayload: limits.maxPayloadBytes,
            heartbeatSeconds: limits.heartbeatIntervalSeconds, idleTimeoutSeconds: limits.idleTimeoutSeconds,
            horizon: AnnouncedHorizon(
                pastSeconds: UInt32(store.lateHorizonDays * 86_400),
                futureSeconds: UInt32(store.futureHorizonHours * 3_600)))
    }
}

/// Runs a ``ReloadAction`` on each SIGHUP (bracketed by RELOADING=1 / READY=1, recorded in the audit log
/// as `via signal`: the sender is not known). The verdict is on the admin endpoint's `/reload`;
/// `horgosctl reload` (the unit's ExecReload) asks with `POST /reload` instead, which records its peer
/// and answers the verdict, so a failed reload makes `systemctl reload horgosd` fail. Regions,
/// listeners and store keys need a restart.
struct ReloadService: Service, CustomStringConvertible {
    let reload: ReloadAction

    var description: String { "SIGHUP reloader" }

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            _ = await reload.run(actor: AuditOperator(via: "signal"))
        }
    }
}
