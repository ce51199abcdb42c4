import Logging
import NIOCore
import ServiceLifecycle

/// Runs a ``Listener`` as a ServiceGroup service: binds on `run()`, reports the bound address, and on
/// graceful shutdown drains it (stop accepting; sessions answer what is committed, say the protocol's
/// goodbye and close).
///
/// A bind failure is fatal: it is logged (critical) and thrown, so the daemon stops (exit 1) and never sends
/// READY=1 half configured. Limits: the drain waits at most `drainTimeout`; connections still open then are
/// closed. On task cancellation (a second signal, or the group's own timeout) the drain gets one second.
public struct ListenerService<P: IngestProtocol>: Service, CustomStringConvertible {
    /// The listener it runs.
    public let listener: Listener<P>
    private let drainTimeout: Duration
    private let logger: Logger
    private let onBound: @Sendable (SocketAddress) -> Void

    /// A service for `listener`.
    public init(
        listener: Listener<P>, drainTimeout: Duration, logger: Logger,
        onBound: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) {
        self.listener = listener
        self.drainTimeout = drainTimeout
        self.logger = logger
        self.onBound = onBound
    }

    /// `telemetry listener on 127.0.0.1:7443`.
    public var description: String { "\(listener.title) on \(listener.socket)" }

    /// Binds, serves until graceful shutdown, then drains.
    public func run() async throws {
        let local: SocketAddress
        do {
            local = try await listener.start()
        } catch {
            logger.critical(
                "\(listener.title) NOT bound; the daemon stops (free the port or change listen.\(listener.name))",
                metadata: ["address": "\(listener.socket)", "error": "\(error)"])
            throw error
        }
        logger.notice(
            "\(listener.title) bound",
            metadata: [
                "address": "\(ListenAddress(local)?.description ?? "\(local)")", "protocol": "\(P.name)",
                "tls": "\(listener.tls != nil ? "on" : "off")", "socket": "\(listener.socket)",
            ])
        onBound(local)
        try? await gracefulShutdown()
        let timeout = Task.isCancelled ? Duration.seconds(1) : drainTimeout
        logger.notice(
            "\(listener.title) draining",
            metadata: [
                "connections": "\(listener.registry.countsByProtocol[P.name] ?? 0)", "timeout": "\(timeout)",
            ])
        await listener.drain(timeout: timeout)
        logger.notice("\(listener.title) stopped")
    }
}
