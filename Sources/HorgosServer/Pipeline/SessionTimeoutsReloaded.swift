import HorgosConfig
import NIOCore

/// The handshake and idle timeouts after a reload of `limits.*`, sent down every open connection's
/// pipeline (every listener, through the ``ConnectionRegistry``) as an inbound user event.
///
/// ``HandshakeTimeoutHandler`` (a connection still in its TLS handshake or before HELLO) re-arms to the
/// new handshake timeout counted from when the connection was accepted; ``FrameIdleTimeoutHandler``
/// re-arms to the new idle timeout counted from the last complete frame. A shorter value can so end a
/// session at once. Nothing is read per frame for this: the reload pushes the values to each connection
/// on its own event loop.
public struct SessionTimeoutsReloaded: Sendable, Hashable {
    /// `limits.handshake_timeout_seconds`.
    public var handshakeTimeout: TimeAmount
    /// `limits.idle_timeout_seconds`.
    public var idleTimeout: TimeAmount

    /// The event from its parts.
    public init(handshakeTimeout: TimeAmount, idleTimeout: TimeAmount) {
        self.handshakeTimeout = handshakeTimeout
        self.idleTimeout = idleTimeout
    }
}

extension ListenerLimits {
    /// The listener's limits from `limits.*`.
    public init(_ limits: HorgosConfiguration.Limits) {
        self.init(
            handshakeTimeout: .seconds(Int64(limits.handshakeTimeoutSeconds)),
            idleTimeout: .seconds(Int64(limits.idleTimeoutSeconds)), maxPayload: limits.maxPayloadBytes)
    }
}
