import HorgosAdminAPI
import NIOCore
import Synchronization

/// The live connections, with the total and per-source-address limits.
///
/// Vehicles sit behind carrier-grade NAT, so the per-address limit is generous by default; the total
/// bounds file descriptors and memory. A connection over a limit is closed at accept, before any
/// TLS work is spent on it, and counted.
public final class ConnectionRegistry: Sendable {
    /// Why a connection was not admitted.
    public enum Refusal: String, Sendable {
        case totalLimit = "total_limit"
        case addressLimit = "address_limit"
    }

    struct State {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var perAddress: [String: Int] = [:]
        var maxConnections: Int
        var maxPerAddress: Int
    }

    private let state: Mutex<State>

    public init(maxConnections: Int, maxPerAddress: Int) {
        self.state = Mutex(State(maxConnections: maxConnections, maxPerAddress: maxPerAddress))
    }

    /// Live connections.
    public var count: Int { state.withLock { $0.channels.count } }

    /// Changes the limits (SIGHUP); live connections above a lowered limit are kept.
    public func setLimits(maxConnections: Int, maxPerAddress: Int) {
        state.withLock {
            $0.maxConnections = maxConnections
            $0.maxPerAddress = maxPerAddress
        }
    }

    /// Admits `channel` or says why not. An admitted channel leaves the registry when it closes.
    public func admit(_ channel: any Channel) -> Refusal? {
        admit(channel, address: channel.remoteAddress?.ipAddress ?? "unknown")
    }

    /// Admits `channel` counted under `address` (the client's address from a PROXY header, when the
    /// listener sits behind a load balancer), or says why not.
    public func admit(_ channel: any Channel, address: String) -> Refusal? {
        let id = ObjectIdentifier(channel)
        let refusal: Refusal? = state.withLock { state in
            if state.channels.count >= state.maxConnections { return .totalLimit }
            if state.perAddress[address, default: 0] >= state.maxPerAddress { return .addressLimit }
            state.channels[id] = channel
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

    /// Every live connection (for draining at shutdown).
    public var channels: [any Channel] { state.withLock { Array($0.channels.values) } }
}
