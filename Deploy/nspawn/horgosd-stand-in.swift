// horgosd-stand-in: plays horgosd's part towards systemd until the real daemon exists.
//
// Built by Deploy/systemd-nspawn-test.sh (`swiftc -static-stdlib`) and run by the *shipped*
// horgosd.service, full hardening included, inside a systemd container. It does two jobs:
//
// 1. Hardening probe: at start it exercises what the real daemon's stack needs (the Swift runtime and
//    Foundation, threads, epoll/eventfd/timerfd/pipe2/accept4/sendmsg as NIO uses them, files in the
//    state directory, LimitNOFILE) and checks that the hardening is really in force (no W+X memory,
//    setpriority filtered, no netlink sockets, no privileged bind, read-only /usr). Any surprise: exit 1.
// 2. The lifecycle protocol of DESIGN.md "Operations": listeners from LISTEN_FDS (names from
//    LISTEN_FDNAMES) or bound itself; READY=1 after them; WATCHDOG=1 at half WATCHDOG_USEC unless
//    "wedged" (SIGUSR1, standing in for a wedged region writer); RELOADING=1 + MONOTONIC_USEC then
//    READY=1 on SIGHUP; STOPPING=1 on SIGTERM, a short drain, exit 0. Each accepted connection gets
//    one line, "horgosd-stand-in <listener name>", and is closed.
//
// Environment: STANDIN_LISTEN (host:port when not socket-activated, default 127.0.0.1:17443),
// STANDIN_READY_DELAY_MS (default 0), STANDIN_RELOAD_MS (default 0), STANDIN_DRAIN_MS (default 200),
// STANDIN_READ_FILES / STANDIN_MUST_NOT_READ (colon-separated paths that must / must not be readable;
// the --config argument is always in the first list).
// Not part of the product; no Swift package target builds it.

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

// Linux calls the Glibc module does not export (they need _GNU_SOURCE); NIO reaches them through its
// own C shim.
@_silgen_name("epoll_create1") func epollCreate1(_ flags: Int32) -> Int32
@_silgen_name("epoll_ctl") func epollCtl(_ epfd: Int32, _ op: Int32, _ fd: Int32, _ event: UnsafeMutableRawPointer)
    -> Int32
@_silgen_name("eventfd") func eventFD(_ initial: UInt32, _ flags: Int32) -> Int32
@_silgen_name("timerfd_create") func timerFDCreate(_ clock: Int32, _ flags: Int32) -> Int32
@_silgen_name("pipe2") func pipe2(_ fds: UnsafeMutablePointer<Int32>, _ flags: Int32) -> Int32
@_silgen_name("accept4")
func accept4(_ fd: Int32, _ address: UnsafeMutableRawPointer?, _ length: UnsafeMutableRawPointer?, _ flags: Int32)
    -> Int32

setvbuf(stdout, nil, _IOLBF, 0)

func log(_ line: String) { print("horgosd-stand-in: \(line)") }

func fail(_ line: String) -> Never {
    log("FAIL: \(line)")
    exit(1)
}

func env(_ name: String) -> String? { ProcessInfo.processInfo.environment[name] }

func envInt(_ name: String, _ fallback: Int) -> Int { env(name).flatMap(Int.init) ?? fallback }

// MARK: - sd_notify

/// Sends one datagram to $NOTIFY_SOCKET (path or @abstract), as sd_notify(3) does.
func notify(_ message: String) {
    guard var path = env("NOTIFY_SOCKET"), !path.isEmpty else { return }
    let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { fail("socket(AF_UNIX) for NOTIFY_SOCKET: errno \(errno)") }
    defer { close(fd) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let abstract = path.hasPrefix("@")
    if abstract { path.removeFirst() }
    var bytes = Array(path.utf8)
    if abstract { bytes.insert(0, at: 0) }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (index, byte) in bytes.prefix(raw.count).enumerated() { raw[index] = byte }
    }
    let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
    let sent = message.withCString { text in
        withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, text, strlen(text), 0, $0, length)
            }
        }
    }
    if sent < 0 { fail("sendto(NOTIFY_SOCKET) '\(message)': errno \(errno)") }
}

func monotonicMicroseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
}

// MARK: - Hardening probe

func probe() {
    // Swift runtime + Foundation.
    let info = ProcessInfo.processInfo
    log(
        "probe: cpus \(info.activeProcessorCount)/\(info.processorCount), memory \(info.physicalMemory >> 20) MiB, "
            + "host \(info.hostName), \(info.operatingSystemVersionString), tz \(TimeZone.current.identifier), "
            + "uid \(getuid()) euid \(geteuid())"
    )
    if geteuid() == 0 { fail("running as root") }
    let encoded = try? JSONEncoder().encode(["at": Date().timeIntervalSince1970])
    if encoded == nil { fail("JSONEncoder") }

    // Files: the state directory is writable, /usr is not.
    let state = env("STATE_DIRECTORY") ?? FileManager.default.currentDirectoryPath
    let probeFile = URL(fileURLWithPath: state).appendingPathComponent("stand-in-probe")
    do {
        try Data("probe\n".utf8).write(to: probeFile)
        try FileManager.default.removeItem(at: probeFile)
    } catch {
        fail("cannot write in state directory \(state): \(error)")
    }
    if open("/usr/horgos-probe", O_CREAT | O_WRONLY, 0o600) >= 0 { fail("/usr is writable") }

    // Files the daemon must read (its --config, the PKI in /etc/horgos/pki), through the user namespace
    // (PrivateUsers=) and group permissions; and the fleet CA key in /root, which it must not see.
    let arguments = CommandLine.arguments
    var mustRead = (env("STANDIN_READ_FILES") ?? "").split(separator: ":").map(String.init)
    if let index = arguments.firstIndex(of: "--config"), index + 1 < arguments.count {
        mustRead.insert(arguments[index + 1], at: 0)
    }
    for path in mustRead {
        guard let contents = FileManager.default.contents(atPath: path) else {
            fail("cannot read \(path) (errno \(errno))")
        }
        log("probe: read \(path) (\(contents.count) bytes)")
    }
    for path in (env("STANDIN_MUST_NOT_READ") ?? "").split(separator: ":").map(String.init) {
        if FileManager.default.contents(atPath: path) != nil { fail("can read \(path), which must stay hidden") }
    }

    // Threads and a semaphore (futex, clone3).
    let done = DispatchSemaphore(value: 0)
    let thread = Thread { done.signal() }
    thread.start()
    if done.wait(timeout: .now() + 5) == .timedOut { fail("thread did not run") }

    // What NIO's event loop and sockets use.
    let epoll = epollCreate1(O_CLOEXEC)
    if epoll < 0 { fail("epoll_create1: errno \(errno)") }
    let event = eventFD(0, O_CLOEXEC | O_NONBLOCK)
    if event < 0 { fail("eventfd: errno \(errno)") }
    let timer = timerFDCreate(Int32(CLOCK_MONOTONIC), O_CLOEXEC | O_NONBLOCK)
    if timer < 0 { fail("timerfd_create: errno \(errno)") }
    var register = [UInt8](repeating: 0, count: 16)  // struct epoll_event, events = EPOLLIN (1)
    register[0] = 1
    if epollCtl(epoll, 1 /* EPOLL_CTL_ADD */, event, &register) != 0 { fail("epoll_ctl: errno \(errno)") }
    var pipeFDs: [Int32] = [0, 0]
    if pipe2(&pipeFDs, O_CLOEXEC | O_NONBLOCK) != 0 { fail("pipe2: errno \(errno)") }
    var pair: [Int32] = [0, 0]
    if socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) != 0 { fail("socketpair: errno \(errno)") }
    var byte: UInt8 = 42
    withUnsafeMutableBytes(of: &byte) { buffer in
        var vector = iovec(iov_base: buffer.baseAddress, iov_len: 1)
        withUnsafeMutablePointer(to: &vector) { iov in
            var message = msghdr()
            message.msg_iov = iov
            message.msg_iovlen = 1
            if sendmsg(pair[0], &message, 0) != 1 { fail("sendmsg: errno \(errno)") }
            buffer[0] = 0
            if recvmsg(pair[1], &message, 0) != 1 || buffer[0] != 42 { fail("recvmsg: errno \(errno)") }
        }
    }
    for fd in [epoll, event, timer, pipeFDs[0], pipeFDs[1], pair[0], pair[1]] { close(fd) }
    let listener = makeListener(host: "127.0.0.1", port: 0)
    if accept4(listener, nil, nil, Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)) >= 0
        || errno != EAGAIN
    {
        fail("accept4 on an idle non-blocking listener: errno \(errno)")
    }
    close(listener)
    let v6 = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
    if v6 < 0 { fail("socket(AF_INET6): errno \(errno)") }
    close(v6)

    // LimitNOFILE=1048576 sets soft = hard. systemd clamps it to the hard limit its own PID 1 may grant
    // (the harness compares with that), so only soft = hard is required here.
    var limit = rlimit()
    if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) != 0 { fail("getrlimit: errno \(errno)") }
    log("probe: RLIMIT_NOFILE \(limit.rlim_cur)/\(limit.rlim_max)")
    if limit.rlim_cur != limit.rlim_max { fail("RLIMIT_NOFILE soft \(limit.rlim_cur) != hard \(limit.rlim_max)") }

    // The hardening is in force (each of these must fail).
    let wx = mmap(nil, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    if wx != MAP_FAILED { fail("W+X mapping allowed: MemoryDenyWriteExecute= not in force") }
    // (glibc's setrlimit() is the prlimit64 syscall, which @resources does not contain: probe with
    // setpriority, which it does.)
    if setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 0) == 0 || errno != EPERM {
        fail("setpriority was not filtered (errno \(errno)): SystemCallFilter=~@resources not in force")
    }
    let netlink = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue), 0)
    if netlink >= 0 || errno != EAFNOSUPPORT { fail("AF_NETLINK socket allowed: RestrictAddressFamilies=") }
    let privileged = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var low = sockaddr_in()
    low.sin_family = sa_family_t(AF_INET)
    low.sin_port = in_port_t(81).bigEndian
    let lowBind = withUnsafePointer(to: &low) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(privileged, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    if lowBind == 0 { fail("bound port 81 with no capability") }
    close(privileged)
    log(
        "probe: OK (runtime, Foundation, NIO syscalls, config + PKI readable, CA key hidden, state directory; W+X, setpriority, netlink, port 81 refused)"
    )
}

func makeListener(host: String, port: UInt16) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    if fd < 0 { fail("socket(AF_INET): errno \(errno)") }
    var yes: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    inet_pton(AF_INET, host, &address.sin_addr)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    if bound != 0 { fail("bind \(host):\(port): errno \(errno)") }
    if listen(fd, 128) != 0 { fail("listen: errno \(errno)") }
    if port == 0 { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
    return fd
}

// MARK: - Main

// Signals are taken with sigwait on the main thread: block them before any other thread starts.
var signals = sigset_t()
sigemptyset(&signals)
for signal in [SIGHUP, SIGTERM, SIGINT, SIGUSR1] { sigaddset(&signals, signal) }
pthread_sigmask(SIG_BLOCK, &signals, nil)

log("starting, pid \(getpid())")
probe()

// Listeners: socket activation (sd_listen_fds semantics) or bind.
var listeners: [(name: String, fd: Int32)] = []
if let pid = env("LISTEN_PID").flatMap(Int32.init), pid == getpid(),
    let count = env("LISTEN_FDS").flatMap(Int32.init), count > 0
{
    let names = (env("LISTEN_FDNAMES") ?? "").split(separator: ":").map(String.init)
    for index in 0..<count {
        let name = Int(index) < names.count ? names[Int(index)] : "unknown"
        listeners.append((name, 3 + index))
        log("listener \(name): fd \(3 + index) from systemd (socket activation)")
    }
    unsetenv("LISTEN_PID")
    unsetenv("LISTEN_FDS")
    unsetenv("LISTEN_FDNAMES")
} else {
    let spec = env("STANDIN_LISTEN") ?? "127.0.0.1:17443"
    let parts = spec.split(separator: ":")
    guard parts.count == 2, let port = UInt16(parts[1]) else { fail("STANDIN_LISTEN=\(spec): want host:port") }
    listeners.append(("telemetry", makeListener(host: String(parts[0]), port: port)))
    log("listener telemetry: bound \(spec) itself")
}
for listener in listeners {
    let thread = Thread {
        while true {
            let connection = accept4(listener.fd, nil, nil, Int32(SOCK_CLOEXEC.rawValue))
            if connection < 0 { continue }
            let line = "horgosd-stand-in \(listener.name)\n"
            _ = line.withCString { write(connection, $0, strlen($0)) }
            close(connection)
        }
    }
    thread.start()
}

usleep(useconds_t(envInt("STANDIN_READY_DELAY_MS", 0) * 1000))
notify("READY=1\nSTATUS=stand-in serving on \(listeners.map(\.name).joined(separator: ","))")
log("READY=1 sent")

// Watchdog pings at half WATCHDOG_USEC, while not wedged.
final class Wedge: @unchecked Sendable {
    private let lock = NSLock()
    private var wedged = false
    var isWedged: Bool { lock.withLock { wedged } }
    func wedge() { lock.withLock { wedged = true } }
}
let wedge = Wedge()
if let usec = env("WATCHDOG_USEC").flatMap(UInt64.init), usec > 0,
    env("WATCHDOG_PID").flatMap(Int32.init).map({ $0 == getpid() }) ?? true
{
    log("watchdog: \(usec) µs, pinging every \(usec / 2) µs")
    let pinger = Thread {
        while true {
            usleep(useconds_t(usec / 2))
            if !wedge.isWedged { notify("WATCHDOG=1") }
        }
    }
    pinger.start()
}

while true {
    var received: Int32 = 0
    sigwait(&signals, &received)
    switch received {
    case SIGHUP:
        notify("RELOADING=1\nMONOTONIC_USEC=\(monotonicMicroseconds())")
        log("SIGHUP: reloading")
        usleep(useconds_t(envInt("STANDIN_RELOAD_MS", 0) * 1000))
        notify("READY=1\nSTATUS=stand-in reloaded")
        log("reloaded")
    case SIGUSR1:
        log("SIGUSR1: wedged (no more WATCHDOG=1), as a stuck region writer would be")
        wedge.wedge()
    default:
        notify("STOPPING=1")
        log("signal \(received): STOPPING=1, draining")
        usleep(useconds_t(envInt("STANDIN_DRAIN_MS", 200) * 1000))
        log("drained, exit 0")
        exit(0)
    }
}
