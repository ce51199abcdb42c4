import HorgosWire
import NIOSSL

/// Who may open a session after the TLS handshake: a certificate naming a valid identity, not on the deny
/// list, whose market is a configured region. Plugs into ``PipelineEnvironment/admit``, for every listener.
///
/// Refusals map to the protocol's ERROR codes: no or unreadable identity -> IDENTITY_INVALID, deny-listed
/// serial or VIN -> CERTIFICATE_REVOKED, market not served -> UNKNOWN_MARKET. The revocation holder is
/// shared, so a SIGHUP reload applies to the next handshake; sessions already open are ended by the reload's
/// sweep (``ConnectionRegistry/endRevokedSessions(_:)``).
public struct PeerAdmissionPolicy: Sendable {
    /// Markets (subject C) this node serves.
    public var regions: Set<String>
    /// The deny list, shared and reloadable.
    public var revocations: RevocationListHolder

    /// A policy from its parts.
    public init(regions: Set<String>, revocations: RevocationListHolder) {
        self.regions = regions
        self.revocations = revocations
    }

    /// The peer's identity, or the refusal to send as ERROR before closing.
    public func admit(_ certificate: NIOSSLCertificate?) -> Result<PeerIdentity, SessionRefusal> {
        guard let certificate else {
            return .failure(SessionRefusal(code: .identityInvalid, reason: "the peer presented no certificate"))
        }
        let identity: PeerIdentity
        do {
            identity = try PeerIdentity(derEncoded: try certificate.toDERBytes())
        } catch let error as PeerIdentityError {
            return .failure(SessionRefusal(code: .identityInvalid, reason: error.description))
        } catch {
            return .failure(SessionRefusal(code: .identityInvalid, reason: "certificate cannot be read: \(error)"))
        }
        if revocations.isRevoked(identity) {
            return .failure(SessionRefusal(code: .certificateRevoked, reason: "\(identity) is revoked"))
        }
        if !regions.contains(identity.market) {
            return .failure(
                SessionRefusal(code: .unknownMarket, reason: "market \(identity.market) is not a region of this server")
            )
        }
        return .success(identity)
    }
}

/// Where a listener gets its socket: bind an address, or adopt one inherited from systemd.
public enum ListenerSocket: Sendable, Hashable, CustomStringConvertible {
    /// Bind this address (port 0: any free port).
    case address(ListenAddress)
    /// Adopt an already bound and listening socket (systemd socket activation, see ``SystemdListeners``).
    case inherited(fileDescriptor: CInt)

    /// The address or `fd N`.
    public var description: String {
        switch self {
        case .address(let address): address.description
        case .inherited(let fd): "inherited fd \(fd)"
        }
    }

}
