import Foundation
import Synchronization

/// No loopback port in the tests' range was free.
public struct LoopbackPortError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Loopback TCP ports for tests: a free one, and whether one accepts connections.
public enum LoopbackPort {
    /// The ports handed out lie below the kernel's ephemeral range (`ip_local_port_range`, 32768-60999 on
    /// Linux): a port bind(0) returns comes from that range, which is also where every outgoing connection
    /// takes its local port, and the tests open thousands of connections, so such a port could be taken
    /// between the pick and the daemon's bind. Each process starts at a random point of 20000-31999 and
    /// walks on, so two picks of one process never return the same port.
    private static let firstPort = 20_000
    private static let portCount = 12_000
    private static let start = Int.random(in: 0..<portCount)
    private static let taken = Atomic<Int>(0)

    /// A TCP port on 127.0.0.1, outside the ephemeral range, that was free a moment ago.
    public static func free() throws -> Int {
        for _ in 0..<portCount {
            let step = taken.wrappingAdd(1, ordering: .relaxed).oldValue
            let port = firstPort + (start + step) % portCount
            if canBind(port) { return port }
        }
        throw LoopbackPortError("no free port in \(firstPort)..<\(firstPort + portCount)")
    }

    /// Whether 127.0.0.1:`port` can be bound now.
    static func canBind(_ port: Int) -> Bool { withSocket(on: port) { bind($0, $1, $2) == 0 } }

    /// Whether something accepts TCP connections on 127.0.0.1:`port`.
    public static func accepts(_ port: Int) -> Bool { withSocket(on: port) { connect($0, $1, $2) == 0 } }

    /// Calls `body` with a new TCP socket and the address 127.0.0.1:`port`, then closes the socket.
    private static func withSocket(
        on port: Int, _ body: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Bool
    ) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                body(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }
}
