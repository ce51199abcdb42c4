import NIOCore

extension TelemetryListener {
    /// Ends every open session whose peer `isRevoked` now says is revoked, with ERROR CERTIFICATE_REVOKED,
    /// on each connection's own event loop; returns how many were ended.
    public func endRevokedSessions(_ isRevoked: @escaping @Sendable (SessionPeer) -> Bool) async -> Int {
        var ended = 0
        for channel in registry.channels {
            let future = channel.eventLoop.submit { () -> Bool in
                guard let session = try? channel.pipeline.syncOperations.handler(type: SessionHandler.self) else {
                    return false
                }
                return session.endIfRevoked(isRevoked)
            }
            if (try? await future.get()) == true { ended += 1 }
        }
        return ended
    }
}

extension Revocations {
    /// True when this state revokes the session's certificate (serial in a CRL or the deny list) or,
    /// for a vehicle, its VIN.
    public func revokes(_ peer: SessionPeer) -> Bool {
        isRevoked(serialNumber: peer.serialNumber ?? "", vin: peer.vin?.description)
    }
}
