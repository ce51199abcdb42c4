@_exported import HorgosAdminAPI
@_exported import HorgosConfig
import NIOCore

// The configuration and the revocation list live in their own target (HorgosConfig) so that horgosctl
// reads them without linking the daemon; the daemon module re-exports it and adds what needs NIO or a
// peer's identity.

extension ListenAddress {
    /// The IP and port of a bound socket (nil for a Unix domain socket).
    public init?(_ address: SocketAddress) {
        guard let ip = address.ipAddress, let port = address.port else { return nil }
        self.init(host: ip, port: port)
    }
}

extension RevocationList {
    /// True when the identity's certificate serial or its VIN is listed.
    public func isRevoked(_ identity: PeerIdentity) -> Bool {
        isRevoked(serialNumber: identity.serialNumber, vin: identity.vin)
    }
}

extension RevocationListHolder {
    /// True when the identity is revoked by the list in force.
    public func isRevoked(_ identity: PeerIdentity) -> Bool {
        isRevoked(serialNumber: identity.serialNumber, vin: identity.vin)
    }
}
