import HorgosWire

extension PeerIdentity {
    /// The identity as a GB/T 32960 peer: a vehicle certificate is its VIN, a gateway certificate a
    /// platform of its market. A vehicle certificate without a readable VIN is refused.
    public var gbt32960Peer: Result<GBT32960Peer, SessionRefusal> {
        if role == .gateway { return .success(.platform(market: market)) }
        guard let text = vin, let vin = VIN(text) else {
            return .failure(SessionRefusal(code: .identityInvalid, reason: "vehicle certificate without a VIN"))
        }
        return .success(.vehicle(vin, market: market))
    }
}
