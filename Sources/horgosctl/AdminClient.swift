#if canImport(Glibc)
    import Glibc
#endif

/// A minimal HTTP/1.1 GET over a blocking POSIX socket (Unix domain or TCP), for the daemon's admin
/// endpoint. The one place horgosctl chooses its admin transport (``connect(_:timeoutSeconds:)``).
///
/// One request per connection (`Connection: close`), body read to the end; chunked and
/// `Content-Length` bodies are both understood. Limits: no TLS, no redirects, responses up to 16 MiB,
/// `timeoutSeconds` for connect and for each read.
enum AdminClient {
    /// A response's status code and body.
    struct Response {
        var status: Int
        var body: [UInt8]
    }

    /// Fetches `path` from `address`; throws exit-3 errors for everything that means "not reachable".
    static func get(_ address: AdminAddress, path: String, timeoutSeconds: Int = 5) throws(CtlError) -> Response {
        let fd = try connect(address, timeoutSeconds: timeoutSeconds)
        defer { close(fd) }
        let host =
            address.unixSocketPath != nil
            ? "localhost" : (address.host.contains(":") ? "[\(address.host)]" : address.host) + ":\(address.port)"
        let head =
            "GET \(path) HTTP/1.1\r\nHost: \(host)\r\n"
            + "Accept: application/json\r\nConnection: close\r\n\r\n"
        let request = Array(head.utf8)
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw unreachable(address, "sending the request failed: \(errnoText())") }
            sent += n
        }
        var raw: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw unreachable(address, "reading the answer failed: \(errnoText())") }
            if n == 0 { break }
            raw += chunk[0..<n]
            if raw.count > 16 << 20 { throw unreachable(address, "the answer is larger than 16 MiB") }
        }
        return try parse(raw, address: address)
    }

    private static func connect(_ address: AdminAddress, timeoutSeconds: Int) throws(CtlError) -> Int32 {
        if let path = address.unixSocketPath { return try connectUnix(path, address: address, timeoutSeconds: timeoutSeconds) }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(address.host, String(address.port), &hints, &list)
        guard rc == 0, let first = list else {
            throw unreachable(address, "cannot resolve \(address.host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(
                info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue),
                info.pointee.ai_protocol)
            if fd < 0 {
                lastError = errnoText()
                continue
            }
            var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return fd }
            lastError = errnoText()
            close(fd)
        }
        throw unreachable(address, lastError)
    }

    private static func connectUnix(_ path: String, address: AdminAddress, timeoutSeconds: Int) throws(CtlError)
        -> Int32
    {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw unreachable(address, errnoText()) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var socketAddress = sockaddr_un()
        socketAddress.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: socketAddress.sun_path) else {
            close(fd)
            throw unreachable(address, "the socket path is too long")
        }
        withUnsafeMutableBytes(of: &socketAddress.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0 else {
            let why = errnoText()
            close(fd)
            throw unreachable(address, why)
        }
        return fd
    }

    private static func parse(_ raw: [UInt8], address: AdminAddress) throws(CtlError) -> Response {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = raw.firstRange(of: separator) else {
            throw unreachable(address, "the answer is not HTTP (\(raw.count) bytes without a header end)")
        }
        let head = String(decoding: raw[..<end.lowerBound], as: UTF8.self)
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        let statusLine = lines.isEmpty ? "" : lines.removeFirst()
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw unreachable(address, "the answer is not HTTP: \(statusLine.prefix(80))")
        }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: " ")
        }
        var body = Array(raw[end.upperBound...])
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            body = try dechunk(body, address: address)
        } else if let lengthText = headers["content-length"], let length = Int(lengthText), length <= body.count {
            body = Array(body[..<length])
        }
        return Response(status: status, body: body)
    }

    private static func dechunk(_ data: [UInt8], address: AdminAddress) throws(CtlError) -> [UInt8] {
        var result: [UInt8] = []
        var index = 0
        while index < data.count {
            guard let lineEnd = data[index...].firstRange(of: [13, 10]) else { break }
            let sizeText = String(decoding: data[index..<lineEnd.lowerBound], as: UTF8.self)
            guard let size = Int(sizeText.split(separator: ";").first ?? "", radix: 16) else {
                throw unreachable(address, "malformed chunked body")
            }
            if size == 0 { break }
            let start = lineEnd.upperBound
            guard start + size <= data.count else { throw unreachable(address, "truncated chunked body") }
            result += data[start..<(start + size)]
            index = start + size + 2
        }
        return result
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }

    static func unreachable(_ address: AdminAddress, _ why: String) -> CtlError {
        CtlError(
            .daemonUnreachable, "the daemon's admin endpoint \(address) did not answer: \(why)",
            remedy: "check that horgosd runs (systemctl status horgosd) and that --admin, or listen.admin in the "
                + "configuration, is its admin address")
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var text = self
        while let first = text.first, set.contains(first) { text = text.dropFirst() }
        while let last = text.last, set.contains(last) { text = text.dropLast() }
        return String(text)
    }
}
