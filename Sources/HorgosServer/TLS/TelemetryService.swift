import Logging
import NIOCore
import ServiceLifecycle

/// Runs a ``TelemetryListener`` as a ServiceGroup service: binds on `run()`, reports the bound address,
/// and on graceful shutdown drains it (stop accepting, sessions ACK what is committed and say BYE).
///
/// Limits: the drain waits at most `drainTimeout`; connections still open then are closed. On task
/// cancellation (a second signal, or the group's own timeout) the drain gets one second.
public struct TelemetryService: Service, CustomStringConvertible {
    private let listener: TelemetryListener
    private let socket: ListenerSocket
    private let drainTimeout: Duration
    private let logger: Logger
    private let onBound: @Sendable (SocketAddress) -> Void

    /// A service for `listener` on `socket`.
    public init(
        listener: TelemetryListener, socket: ListenerSocket, drainTimeout: Duration, logger: Logger,
        onBound: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) {
        self.listener = listener
        self.socket = socket
        self.drainTimeout = drainTimeout
        self.logger = logger
        self.onBound = onBound
    }

    /// `telemetry listener on 127.0.0.1:7443`.
    public var description: String { "telemetry listener on \(socket)" }

    /// Binds, serves until graceful shutdown, then drains.
    public func run() async throws {
        let local = try await listener.start(socket.binding)
        let text = ListenAddress(local)?.description ?? "\(local)"
        logger.notice("telemetry listener bound", metadata: ["address": "\(text)"])
        onBound(local)
        try? await gracefulShutdown()
        let timeout = Task.isCancelled ? Duration.seconds(1) : drainTimeout
        logger.notice(
            "telemetry listener draining",
            metadata: ["connections": "\(listener.registry.count)", "timeout": "\(timeout)"])
        await listener.drain(timeout: timeout)
        logger.notice("telemetry listener stopped")
    }
}
