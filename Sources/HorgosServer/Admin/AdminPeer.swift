import Foundation
import HorgosAudit
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Who is on the other end of an admin connection, as the kernel says: on a Unix socket the peer
/// process's uid and pid (`SO_PEERCRED`, taken when the request arrives), over TCP only its address.
///
/// The uid is in the daemon's user namespace: under the shipped unit (`PrivateUsers=yes`) only root and
/// the daemon's own user are mapped, every other uid reads 65534 (see ``AuditOperator``).
public struct AdminPeer: Sendable, Hashable {
    /// `unix-socket` or `tcp`.
    public var transport: String
    /// The peer's uid (Unix socket only).
    public var uid: UInt32?
    /// The peer's process id (Unix socket only).
    public var pid: Int32?
    /// The peer's address (TCP only).
    public var address: String?

    /// A peer from its parts.
    public init(transport: String, uid: UInt32? = nil, pid: Int32? = nil, address: String? = nil) {
        self.transport = transport
        self.uid = uid
        self.pid = pid
        self.address = address
    }

    /// The audit log's operator for this peer, with what the client claims to be.
    public func auditOperator(claimedUser: String?) -> AuditOperator {
        AuditOperator(
            uid: uid, user: uid.flatMap(AuditOperator.userName), pid: pid, via: transport,
            claimedUser: claimedUser, address: address)
    }

    /// The `struct ucred` that `getsockopt(SO_PEERCRED)` fills (pid, uid, gid), declared here because
    /// Glibc's Swift module hides it behind `_GNU_SOURCE`.
    struct Credentials: Sendable {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    #if os(Linux)
        static let peerCredentialsOption = SocketOptionName(17)  // SO_PEERCRED
    #endif

    /// The peer of `channel` (on its event loop).
    static func of(_ channel: any Channel) -> EventLoopFuture<AdminPeer> {
        if case .unixDomainSocket = channel.localAddress {
            #if os(Linux)
                if let provider = channel as? any SocketOptionProvider {
                    let future: EventLoopFuture<Credentials> = provider.unsafeGetSocketOption(
                        level: SocketOptionLevel(SOL_SOCKET), name: peerCredentialsOption)
                    return future.map { AdminPeer(transport: "unix-socket", uid: $0.uid, pid: $0.pid) }
                        .recover { _ in AdminPeer(transport: "unix-socket") }
                }
            #endif
            return channel.eventLoop.makeSucceededFuture(AdminPeer(transport: "unix-socket"))
        }
        let address = channel.remoteAddress.map { ListenAddress($0)?.description ?? "\($0)" }
        return channel.eventLoop.makeSucceededFuture(AdminPeer(transport: "tcp", address: address))
    }
}

/// A `POST` to the admin endpoint: its path, body and who sent it.
public struct AdminPostRequest: Sendable {
    /// The header a client names its user in (unverified; recorded as the claimed user).
    public static let claimedUserHeader = "X-Horgos-Operator"

    /// The path without the query (`/erase`).
    public var path: String
    /// The request body (at most 64 KiB).
    public var body: [UInt8]
    /// Who sent it.
    public var peer: AdminPeer
    /// The user the client says it runs for (`X-Horgos-Operator`).
    public var claimedUser: String?

    /// A request from its parts.
    public init(path: String, body: [UInt8], peer: AdminPeer, claimedUser: String?) {
        self.path = path
        self.body = body
        self.peer = peer
        self.claimedUser = claimedUser
    }
}

/// The answer to an admin `POST`.
public struct AdminPostReply: Sendable {
    /// The HTTP status code.
    public var status: Int
    /// `application/json` unless said otherwise.
    public var contentType: String
    /// The body.
    public var body: [UInt8]

    /// A reply from its parts.
    public init(status: Int, contentType: String = "application/json", body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }

    /// A JSON reply of `value` (sorted keys, ISO 8601 dates, a final newline).
    public static func json(_ status: Int, _ value: some Encodable) -> AdminPostReply {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        guard var data = try? encoder.encode(value) else {
            return AdminPostReply(status: 500, contentType: "text/plain; charset=utf-8", body: Array("cannot encode\n".utf8))
        }
        data.append(UInt8(ascii: "\n"))
        return AdminPostReply(status: status, body: Array(data))
    }
}
