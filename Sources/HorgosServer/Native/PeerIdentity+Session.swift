import HorgosWire

extension PeerIdentity {
    /// The identity as the session state machine sees it (role, VIN, market).
    public var sessionPeer: SessionPeer {
        SessionPeer(
            role: role == .gateway ? .gateway : .vehicle, vin: vin.flatMap { VIN($0) }, market: market,
            serialNumber: serialNumber)
    }
}
