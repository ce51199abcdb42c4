import HorgosAudit
import NIOCore
import NIOHTTP1
import NIOPosix

/// An HTTP/1.1 client for the daemon's admin endpoint (GET, and POST for its actions), on SwiftNIO's
/// HTTP/1 client handlers.
///
/// One request per connection (`Connection: close`). The transport is the address's: TCP
/// (`http://host:port`) or a Unix domain socket (`unix:/run/horgos/admin.sock`). Limits: no TLS, no
/// redirects, responses up to 16 MiB, `timeoutSeconds` for the connection and again for the answer.
enum AdminClient {
    /// A response's status code and body.
    struct Response: Sendable {
        var status: Int
        var body: [UInt8]
    }

    /// The largest body accepted.
    static let maxBodyBytes = 16 << 20

    /// Fetches `path` from `address`; throws exit-3 errors for everything that means "not reachable".
    static func get(_ address: AdminAddress, path: String, timeoutSeconds: Int = 5) async throws(CtlError)
        -> Response
    {
        try await send(address, method: .GET, path: path, body: nil, timeoutSeconds: timeoutSeconds)
    }

    /// Posts `body` (JSON) to `path`, naming the invoking user in `X-Horgos-Operator` (the daemon records
    /// it, unverified, beside the peer credentials it gets from the kernel).
    static func post(_ address: AdminAddress, path: String, body: [UInt8], timeoutSeconds: Int) async throws(CtlError)
        -> Response
    {
        try await send(address, method: .POST, path: path, body: body, timeoutSeconds: timeoutSeconds)
    }

    private static func send(
        _ address: AdminAddress, method: HTTPMethod, path: String, body: [UInt8]?, timeoutSeconds: Int
    ) async throws(CtlError) -> Response {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let answer = loop.makePromise(of: Response.self)
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.seconds(Int64(timeoutSeconds)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(AdminResponseCollector(answer: answer))
                }
            }
        let channel: any Channel
        do {
            if let path = address.unixSocketPath {
                channel = try await bootstrap.connect(unixDomainSocketPath: path).get()
            } else {
                channel = try await bootstrap.connect(host: address.host, port: address.port).get()
            }
        } catch {
            answer.fail(error)
            throw unreachable(address, "cannot connect: \(error)")
        }
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: address.hostHeader)
        headers.add(name: "Accept", value: "application/json")
        headers.add(name: "Connection", value: "close")
        if let body {
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: String(body.count))
            if let user = AuditOperator.claimedName() { headers.add(name: "X-Horgos-Operator", value: user) }
        }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(channel.allocator.buffer(bytes: body))), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        let timeout = loop.scheduleTask(in: .seconds(Int64(timeoutSeconds))) {
            answer.fail(AdminClientTimeout())
            channel.close(promise: nil)
        }
        defer {
            timeout.cancel()
            channel.close(promise: nil)
        }
        do {
            return try await answer.futureResult.get()
        } catch is AdminClientTimeout {
            throw unreachable(address, "no answer within \(timeoutSeconds) s")
        } catch {
            throw unreachable(address, "reading the answer failed: \(error)")
        }
    }

    static func unreachable(_ address: AdminAddress, _ why: String) -> CtlError {
        CtlError(
            .daemonUnreachable, "the daemon's admin endpoint \(address) did not answer: \(why)",
            remedy: "check that horgosd runs (systemctl status horgosd) and that --admin, or listen.admin in the "
                + "configuration, is its admin address")
    }
}

/// No complete answer arrived in time.
private struct AdminClientTimeout: Error {}

/// The connection ended before the response did, or the body passed the size limit.
private struct AdminClientIncomplete: Error, CustomStringConvertible {
    var description: String
}

/// Collects one response (head, body parts, end) into the promise. Event-loop bound.
private final class AdminResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let answer: EventLoopPromise<AdminClient.Response>
    private var status = 0
    private var body: [UInt8] = []

    init(answer: EventLoopPromise<AdminClient.Response>) { self.answer = answer }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
        case .body(let part):
            body += part.readableBytesView
            if body.count > AdminClient.maxBodyBytes {
                answer.fail(AdminClientIncomplete(description: "the answer is larger than 16 MiB"))
                context.close(promise: nil)
            }
        case .end:
            answer.succeed(AdminClient.Response(status: status, body: body))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        answer.fail(AdminClientIncomplete(description: "the connection closed before the answer was complete"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        answer.fail(error)
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension AdminResponseCollector: Sendable {}
