import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Reads one vector's bytes from Proto/vectors (the contract files).
enum VectorFile {
    static func bytes(of name: String) throws -> [UInt8] {
        let directory = DaemonProcess.repositoryRoot.appendingPathComponent("Proto/vectors")
        for file in try FileManager.default.contentsOfDirectory(atPath: directory.path) where file.hasSuffix(".txt") {
            let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            var inBlock = false
            var bytes: [UInt8] = []
            for raw in text.split(separator: "\n") {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line == "vector \(name)" {
                    inBlock = true
                } else if inBlock && line.hasPrefix("hex:") {
                    for pair in line.dropFirst(4).split(separator: " ") { bytes.append(UInt8(pair, radix: 16)!) }
                } else if inBlock && line == "end" {
                    return bytes
                }
            }
        }
        throw HarnessError("no vector \(name)")
    }
}

/// Plain TCP sockets for clients that misbehave below TLS.
enum RawSocket {
    /// A socket bound to 127.0.0.1:`port` and listening: holds the port so a daemon cannot bind it.
    static func listen(port: Int) throws -> Int32 {
        try loopbackSocket(port: port, "cannot hold port \(port)") {
            Glibc.bind($0, $1, $2) == 0 && Glibc.listen($0, 8) == 0
        }
    }

    static func connect(port: Int) throws -> Int32 {
        try loopbackSocket(port: port, "connect failed") { Glibc.connect($0, $1, $2) == 0 }
    }

    /// A TCP socket on which `operation` (bind, connect) succeeded for 127.0.0.1:`port`; closed on failure.
    private static func loopbackSocket(
        port: Int, _ failure: String, _ operation: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Bool
    ) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let succeeded = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                operation(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard succeeded else {
            close(fd)
            throw HarnessError("\(failure): errno \(errno)")
        }
        return fd
    }

    static func send(_ fd: Int32, _ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// True when the peer has closed: a read returns 0 (EOF) or an error other than "would block".
    static func isClosedByPeer(_ fd: Int32) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 { continue }  // TLS alerts or whatever the server sent before closing
            if n == 0 { return true }
            return errno != EAGAIN && errno != EWOULDBLOCK
        }
    }
}

/// Plays systemd's part of the notify protocol: a datagram socket that collects sd_notify messages.
final class NotifyReceiver: @unchecked Sendable {
    let path: String
    let fd: Int32

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("horgos-notify-\(UUID().uuidString)").path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() where index < raw.count - 1 { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0 else { throw HarnessError("cannot bind notify socket") }
    }

    /// Messages received during `duration`.
    func collect(for duration: Duration) async throws -> [String] {
        var messages: [String] = []
        let clock = ContinuousClock()
        let deadline = clock.now + duration
        var buffer = [UInt8](repeating: 0, count: 4096)
        while clock.now < deadline {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 {
                messages.append(String(decoding: buffer[0..<n], as: UTF8.self))
            } else {
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        return messages
    }

    func close() {
        Glibc.close(fd)
        unlink(path)
    }
}

