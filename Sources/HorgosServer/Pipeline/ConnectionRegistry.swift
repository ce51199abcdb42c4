import HorgosAdminAPI
import NIOCore
import Synchronization

/// The live connections of every listener, with the total and per-source-address limits.
///
/// One registry serves the daemon: `limits.max_connections` and `limits.max_connections_per_address` hold
/// for native and GB/T 32960 connections together. Vehicles sit behind carrier-grade NAT, so the
/// per-address limit is generous by default; the total bounds file descriptors and memory. A connection
/// over a limit is closed at accept, before any TLS work is spent on it, and counted. The registry also
/// reaches every open connection for what a reload changes: the timeouts (``reloadTimeouts(_:)``) and
/// the revocation sweep (``endRevokedSessions(_:)``).
public final class ConnectionRegistry: Sendable {
    /// Why a connection was not admitted.
    public enum Refusal: String, Sendable {
        case totalLimit = "total_limit"
        case addressLimit = "address_limit"
    }

    struct Entry {
        var channel: any Channel
        var protocolName: String
    }

    struct State {
        var channels: [ObjectIdentifier: Entry] = [:]
        var perAddress: [String: Int] = [:]
        var maxConnections: Int
        var maxPerAddress: Int
    }

    private let state: Mutex<State>

    public init(maxConnections: Int, maxPerAddress: Int) {
        self.state = Mutex(State(maxConnections: maxConnections, maxPerAddress: maxPerAddress))
    }

    /// Live connections, every listener.
    public var count: Int { state.withLock { $0.channels.count } }

    /// Live connections per protocol (`native`, `gbt32960`).
    public var countsByProtocol: [String: Int] {
        state.withLock { state in state.channels.values.reduce(into: [:]) { $0[$1.protocolName, default: 0] += 1 } }
    }

    /// Changes the limits (SIGHUP); live connections above a lowered limit are kept.
    public func setLimits(maxConnections: Int, maxPerAddress: Int) {
        state.withLock {
            $0.maxConnections = maxConnections
            $0.maxPerAddress = maxPerAddress
        }
    }

    /// Admits `channel` or says why not. An admitted channel leaves the registry when it closes.
    public func admit(_ channel: any Channel, protocolName: String = "native") -> Refusal? {
        admit(channel, address: channel.remoteAddress?.ipAddress ?? "unknown", protocolName: protocolName)
    }

    /// Admits `channel` counted under `address` (the client's address from a PROXY header, when the
    /// listener sits behind a load balancer), or says why not.
    public func admit(_ channel: any Channel, address: String, protocolName: String = "native") -> Refusal? {
        let id = ObjectIdentifier(channel)
        let refusal: Refusal? = state.withLock { state in
            if state.channels.count >= state.maxConnections { return .totalLimit }
            if state.perAddress[address, default: 0] >= state.maxPerAddress { return .addressLimit }
            state.channels[id] = Entry(channel: channel, protocolName: protocolName)
            state.perAddress[address, default: 0] += 1
            return nil
        }
        guard refusal == nil else { return refusal }
        channel.closeFuture.whenComplete { [weak self] _ in
            self?.state.withLock { state in
                state.channels.removeValue(forKey: id)
                let left = state.perAddress[address, default: 1] - 1
                state.perAddress[address] = left > 0 ? left : nil
            }
        }
        return nil
    }

    /// Live connections per client address, most first, at most `limit` addresses (for `/status`).
    public func connectionsByAddress(limit: Int = 20) -> [AddressConnections] {
        let counts: [String: Int] = state.withLock { $0.perAddress }
        let entries: [AddressConnections] = counts.map { AddressConnections(address: $0.key, connections: $0.value) }
        let sorted = entries.sorted { (a: AddressConnections, b: AddressConnections) -> Bool in
            a.connections != b.connections ? a.connections > b.connections : a.address < b.address
        }
        return Array(sorted.prefix(limit))
    }

    /// Every live connection.
    public var channels: [any Channel] { state.withLock { $0.channels.values.map(\.channel) } }

    /// The live connections of one protocol (for its listener's drain).
    public func channels(protocolName: String) -> [any Channel] {
        state.withLock { $0.channels.values.filter { $0.protocolName == protocolName }.map(\.channel) }
    }

    /// Sends reloaded timeouts to every open connection (see ``SessionTimeoutsReloaded``), on its own loop.
    public func reloadTimeouts(_ timeouts: SessionTimeoutsReloaded) {
        for channel in channels { channel.pipeline.fireUserInboundEventTriggered(timeouts) }
    }

    /// Ends every open session, of every listener, whose certificate `isRevoked` now says is revoked (the
    /// protocol's refusal, then close), on each connection's own event loop; returns how many were ended.
    public func endRevokedSessions(_ isRevoked: @escaping @Sendable (PeerIdentity) -> Bool) async -> Int {
        var ended = 0
        for channel in channels {
            let future = channel.eventLoop.submit { () -> Bool in
                guard let context = try? channel.pipeline.syncOperations.context(name: "horgos.connection"),
                    let connection = context.handler as? any RevocableConnection
                else { return false }
                return connection.endIfRevoked(isRevoked)
            }
            if (try? await future.get()) == true { ended += 1 }
        }
        return ended
    }
}
