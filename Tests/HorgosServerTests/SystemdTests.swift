import Foundation
import Testing

@testable import HorgosServer

#if canImport(Glibc)
    import Glibc
#endif

/// A real AF_UNIX datagram socket standing in for systemd's notify socket.
final class NotifyReceiver {
    let fd: CInt
    let name: String  // as NOTIFY_SOCKET would give it

    /// Binds a filesystem path (`abstract == false`) or an abstract name (`@...`).
    init(abstract: Bool) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        precondition(fd >= 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let unique = "horgos-notify-\(UUID().uuidString.prefix(8))"
        var bytes: [UInt8]
        if abstract {
            name = "@" + unique
            bytes = [0] + Array(unique.utf8)
        } else {
            name = NSTemporaryDirectory() + unique + ".sock"
            bytes = Array(name.utf8) + [0]
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard result == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EINVAL) }
    }

    /// The next datagram as text, or nil after 5 s.
    func receive() -> String? {
        receive(timeoutSeconds: 5)
    }

    /// The next datagram as text, or nil after `timeoutSeconds`.
    func receive(timeoutSeconds: Int) -> String? {
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n < 0 ? nil : String(decoding: buffer[..<n], as: UTF8.self)
    }

    deinit {
        close(fd)
        if !name.hasPrefix("@") { unlink(name) }
    }
}

@Suite struct SystemdNotifierTests {
    @Test(arguments: [false, true])
    func notificationsArriveAtPathAndAbstractSockets(abstract: Bool) throws {
        let receiver = try NotifyReceiver(abstract: abstract)
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": receiver.name])
        #expect(notifier.isEnabled)

        #expect(notifier.ready(status: "serving 0 connections"))
        #expect(receiver.receive() == "READY=1\nSTATUS=serving 0 connections")
        #expect(notifier.watchdog())
        #expect(receiver.receive() == "WATCHDOG=1")
        #expect(notifier.status("line one\nline two"))
        #expect(receiver.receive() == "STATUS=line one line two")
        #expect(notifier.stopping())
        #expect(receiver.receive() == "STOPPING=1")
    }

    @Test func reloadingCarriesMonotonicTimestamp() throws {
        let receiver = try NotifyReceiver(abstract: true)
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": receiver.name])
        let before = SystemdNotifier.monotonicMicroseconds()
        #expect(notifier.reloading())
        let message = try #require(receiver.receive())
        let lines = message.split(separator: "\n")
        #expect(lines.first == "RELOADING=1")
        let stamp = try #require(lines.first { $0.hasPrefix("MONOTONIC_USEC=") })
        let value = try #require(UInt64(stamp.dropFirst("MONOTONIC_USEC=".count)))
        #expect(value >= before && value <= SystemdNotifier.monotonicMicroseconds())
    }

    @Test func withoutNotifySocketEverythingIsANoOp() {
        let notifier = SystemdNotifier(environment: [:])
        #expect(!notifier.isEnabled)
        #expect(!notifier.ready())
        #expect(!SystemdNotifier(environment: ["NOTIFY_SOCKET": "relative/path"]).isEnabled)
    }

    @Test func sendToAMissingSocketReportsFailure() {
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": "/nonexistent/notify.sock"])
        #expect(notifier.isEnabled)
        #expect(!notifier.watchdog())
    }

    @Test func watchdogIntervalIsHalfTheTimeoutForThisProcess() {
        let watchdog = SystemdWatchdog(environment: ["WATCHDOG_USEC": "30000000"], pid: 42)
        #expect(watchdog?.timeout == .seconds(30))
        #expect(watchdog?.pingInterval == .seconds(15))
        #expect(SystemdWatchdog(environment: ["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"], pid: 42) != nil)
        #expect(SystemdWatchdog(environment: ["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "43"], pid: 42) == nil)
        #expect(SystemdWatchdog(environment: ["WATCHDOG_USEC": "0"], pid: 42) == nil)
        #expect(SystemdWatchdog(environment: ["WATCHDOG_USEC": "soon"], pid: 42) == nil)
        #expect(SystemdWatchdog(environment: [:], pid: 42) == nil)
    }

    @Test func socketActivationNamesDescriptorsFromThree() {
        let listeners = SystemdListeners(
            environment: ["LISTEN_PID": "77", "LISTEN_FDS": "3", "LISTEN_FDNAMES": "telemetry:admin"], pid: 77)
        #expect(listeners.listeners.map(\.fileDescriptor) == [3, 4, 5])
        #expect(listeners.listeners.map(\.name) == ["telemetry", "admin", "unknown"])
        #expect(listeners.fileDescriptor(named: "admin") == 4)
        #expect(listeners.fileDescriptor(named: "metrics") == nil)
    }

    @Test func socketActivationForAnotherProcessIsIgnored() {
        #expect(SystemdListeners(environment: ["LISTEN_PID": "78", "LISTEN_FDS": "2"], pid: 77).listeners.isEmpty)
        #expect(SystemdListeners(environment: ["LISTEN_FDS": "2"], pid: 77).listeners.isEmpty)
        #expect(SystemdListeners(environment: ["LISTEN_PID": "77", "LISTEN_FDS": "x"], pid: 77).listeners.isEmpty)
    }
}
