/// Outbound user events the session handler sends towards the head of its pipeline, for the handlers
/// in front of it (timers) that must know where the session is.
public enum SessionEvent: Sendable, Hashable {
    /// HELLO was accepted and WELCOME sent: the handshake-and-HELLO deadline is met.
    case helloAccepted
}
