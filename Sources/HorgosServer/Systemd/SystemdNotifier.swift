import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Sends systemd's notify-protocol datagrams (`READY=1`, `WATCHDOG=1`, ...) to `$NOTIFY_SOCKET`.
///
/// Supports the path (`/run/systemd/notify`) and abstract (`@name`) socket forms over AF_UNIX SOCK_DGRAM.
/// Without `NOTIFY_SOCKET` (not run by systemd, or `Type=simple`) every call is a no-op that returns false.
/// Thread-safe: each message opens, sends on and closes its own socket (a few messages a minute).
/// Limits: no file-descriptor passing (FDSTORE) and no `vsock:` addresses.
public struct SystemdNotifier: Sendable {
    /// The socket address from `NOTIFY_SOCKET`, or nil when notifications are off.
    public let socketPath: String?

    /// A notifier for `NOTIFY_SOCKET` in `environment` (defaults to the process environment).
    public init(environment: [String: String] = ProcessEnvironment.current) {
        let path = environment["NOTIFY_SOCKET"] ?? ""
        self.socketPath = (path.hasPrefix("/") || path.hasPrefix("@")) ? path : nil
    }

    /// True when a notify socket is configured.
    public var isEnabled: Bool { socketPath != nil }

    /// `READY=1`: listeners are bound and the daemon serves; optionally with a status line.
    @discardableResult
    public func ready(status: String? = nil) -> Bool {
        send(["READY=1"] + statusField(status))
    }

    /// `RELOADING=1` with the `MONOTONIC_USEC=` systemd requires (Type=notify-reload), before a reload.
    @discardableResult
    public func reloading(status: String? = nil) -> Bool {
        send(["RELOADING=1", "MONOTONIC_USEC=\(Self.monotonicMicroseconds())"] + statusField(status))
    }

    /// `STOPPING=1`: the daemon begins its graceful shutdown.
    @discardableResult
    public func stopping(status: String? = nil) -> Bool {
        send(["STOPPING=1"] + statusField(status))
    }

    /// `WATCHDOG=1`: the daemon is alive and making progress.
    @discardableResult
    public func watchdog() -> Bool {
        send(["WATCHDOG=1"])
    }

    /// `STATUS=...`: one line shown by `systemctl status` (newlines are replaced by spaces).
    @discardableResult
    public func status(_ text: String) -> Bool {
        send(statusField(text))
    }

    /// Sends the fields joined by newlines as one datagram; false when disabled or the send failed.
    @discardableResult
    public func send(_ fields: [String]) -> Bool {
        guard let socketPath, !fields.isEmpty else { return false }
        return Self.sendDatagram(Array(fields.joined(separator: "\n").utf8), to: socketPath)
    }

    private func statusField(_ status: String?) -> [String] {
        guard let status else { return [] }
        return ["STATUS=" + status.map { $0.isNewline ? " " : String($0) }.joined()]
    }

    /// CLOCK_MONOTONIC in microseconds, the clock systemd compares `MONOTONIC_USEC` against.
    public static func monotonicMicroseconds() -> UInt64 { PosixClock.monotonicMicroseconds() }

    static func sendDatagram(_ payload: [UInt8], to path: String) -> Bool {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var pathBytes = Array(path.utf8)
        let abstract = pathBytes.first == UInt8(ascii: "@")
        if abstract { pathBytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard pathBytes.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
        }
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
        // An abstract name is exactly its bytes; a path includes its terminating NUL.
        let length = socklen_t(pathOffset + pathBytes.count + (abstract ? 0 : 1))

        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                payload.withUnsafeBytes { bytes in
                    sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), socketAddress, length)
                }
            }
        }
        return sent == payload.count
    }
}

/// The systemd watchdog settings from `WATCHDOG_USEC` / `WATCHDOG_PID`.
///
/// systemd kills the service if no `WATCHDOG=1` arrives within `WATCHDOG_USEC`; ping at half of it.
public struct SystemdWatchdog: Sendable, Hashable {
    /// The timeout systemd enforces.
    public var timeout: Duration

    /// The recommended ping interval: half the timeout.
    public var pingInterval: Duration { timeout / 2 }

    /// The watchdog for this process, or nil when it is off, malformed, or meant for another PID.
    public init?(environment: [String: String] = ProcessEnvironment.current, pid: Int32 = getpid()) {
        guard let text = environment["WATCHDOG_USEC"], let micros = UInt64(text), micros > 0 else { return nil }
        if let pidText = environment["WATCHDOG_PID"] {
            guard let target = Int32(pidText), target == pid else { return nil }
        }
        self.timeout = .microseconds(Int64(clamping: micros))
    }
}

/// Sockets passed by systemd socket activation (`LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`).
///
/// File descriptors start at 3 (`SD_LISTEN_FDS_START`). Names come from `FileDescriptorName=` in the
/// .socket unit (default "unknown"). Wrap one with `ServerBootstrap.withBoundSocket` (see ``ListenerSocket``).
public struct SystemdListeners: Sendable, Hashable {
    /// One inherited socket.
    public struct Listener: Sendable, Hashable {
        /// Its `FileDescriptorName=` (or "unknown").
        public var name: String
        /// The file descriptor number.
        public var fileDescriptor: CInt
    }

    /// The inherited sockets in order.
    public var listeners: [Listener]

    /// The first file descriptor systemd passes.
    public static let firstFileDescriptor: CInt = 3

    /// Parses the activation variables; empty when they are absent or addressed to another PID.
    public init(environment: [String: String] = ProcessEnvironment.current, pid: Int32 = getpid()) {
        guard let pidText = environment["LISTEN_PID"], Int32(pidText) == pid,
            let count = environment["LISTEN_FDS"].flatMap({ Int($0) }), count > 0, count < 4096
        else {
            listeners = []
            return
        }
        let names =
            environment["LISTEN_FDNAMES"]?.split(separator: ":", omittingEmptySubsequences: false)
            .map(String.init) ?? []
        listeners = (0..<count).map { index in
            Listener(
                name: index < names.count && !names[index].isEmpty ? names[index] : "unknown",
                fileDescriptor: Self.firstFileDescriptor + CInt(index))
        }
    }

    /// The descriptor named `name`, if systemd passed one.
    public func fileDescriptor(named name: String) -> CInt? {
        listeners.first { $0.name == name }?.fileDescriptor
    }

    /// Removes the activation variables from the process environment so children do not inherit them.
    public static func unsetEnvironment() {
        unsetenv("LISTEN_PID")
        unsetenv("LISTEN_FDS")
        unsetenv("LISTEN_FDNAMES")
    }
}

/// The process environment as a dictionary, without Foundation.
public enum ProcessEnvironment {
    /// A snapshot of `environ`.
    public static var current: [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }
}
