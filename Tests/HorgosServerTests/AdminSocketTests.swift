import Foundation
import HorgosAudit
import Logging
import NIOCore
import NIOPosix
import Prometheus
import Synchronization
import Testing

@testable import HorgosServer

#if canImport(Glibc)
    import Glibc
#endif

@Suite(.serialized) struct AdminSocketTests {
    private func start(_ socket: ListenAddress, limits: AdminServer.Limits) async throws -> (AdminServer, Task<Void, any Error>) {
        let (bound, continuation) = AsyncStream.makeStream(of: Bool.self)
        let server = AdminServer(
            socket: .address(socket),
            sources: .init(
                isServing: { true }, status: { ["ok": true] }, registry: PrometheusCollectorRegistry(),
                reloadVerdict: {
                    ReloadVerdict(generation: 2, succeeded: false, error: "tls.crl: bad", finishedAt: Date(), revokedSessions: 0)
                }),
            limits: limits, logger: Logger(label: "test"), onBound: { _ in continuation.yield(true) })
        let task = Task { try await server.run() }
        for await _ in bound { return (server, task) }
        throw CancellationError()
    }

    private func connect(unix path: String, done: EventLoopPromise<String>) async throws -> any Channel {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(done: done))
                }
            }
            .connect(unixDomainSocketPath: path).get()
    }

    @Test func adminEndpointServesOnAUnixSocketIncludingTheReloadVerdict() async throws {
        let path = try makeTemporaryDirectory() + "/admin.sock"
        let (_, task) = try await start(ListenAddress(unixSocketPath: path), limits: .init())
        defer { task.cancel() }
        let done = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: String.self)
        let channel = try await connect(unix: path, done: done)
        try await channel.writeAndFlush(
            channel.allocator.buffer(string: "GET /reload HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"))
        let text = try await done.futureResult.get()
        #expect(text.hasPrefix("HTTP/1.1 200"))
        #expect(text.contains("\"succeeded\":false") && text.contains("\"generation\":2"))
    }

    @Test func connectionsOverTheCapAreClosedAndIdleOnesTimeOut() async throws {
        let path = try makeTemporaryDirectory() + "/admin.sock"
        let (server, task) = try await start(
            ListenAddress(unixSocketPath: path), limits: .init(maxConnections: 2, idleTimeout: .seconds(1)))
        defer { task.cancel() }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let first = try await connect(unix: path, done: loop.makePromise(of: String.self))
        let second = try await connect(unix: path, done: loop.makePromise(of: String.self))
        let third = try await connect(unix: path, done: loop.makePromise(of: String.self))
        #expect(try await expectClosed(third, within: .seconds(5)))  // over the cap of 2
        #expect(server.openConnections <= 2)
        // Both idle ones are closed by the 1 s idle timeout.
        #expect(try await expectClosed(first, within: .seconds(10)))
        #expect(try await expectClosed(second, within: .seconds(10)))
    }
}

/// POST to the admin endpoint (the daemon's actions): the handler gets the body and the peer the kernel
/// names (`SO_PEERCRED` on the Unix socket, the address over TCP); a connection waiting for a slow answer
/// is not closed as idle; an oversized body is refused.
@Suite(.serialized) struct AdminPostTests {
    final class Seen: Sendable {
        let requests = Mutex<[AdminPostRequest]>([])
    }

    private func start(_ socket: ListenAddress, seen: Seen, delay: Duration) async throws
        -> (Int, Task<Void, any Error>)
    {
        let (bound, continuation) = AsyncStream.makeStream(of: Int.self)
        let server = AdminServer(
            socket: .address(socket),
            sources: .init(
                isServing: { true }, status: { ["ok": true] }, registry: PrometheusCollectorRegistry(),
                post: { request in
                    seen.requests.withLock { $0.append(request) }
                    try? await Task.sleep(for: delay)
                    return .json(201, ["path": request.path, "body": String(decoding: request.body, as: UTF8.self)])
                }),
            limits: .init(maxConnections: 4, idleTimeout: .seconds(1)), logger: Logger(label: "test"),
            onBound: { continuation.yield($0.port ?? 0) })
        let task = Task { try await server.run() }
        for await port in bound { return (port, task) }
        throw CancellationError()
    }

    @Test func aPostOnTheUnixSocketCarriesThePeersUidAndPidAndOutlivesTheIdleTimeout() async throws {
        let path = try makeTemporaryDirectory() + "/admin.sock"
        let seen = Seen()
        // The answer takes 2.5 s, longer than the 1 s idle timeout.
        let (_, task) = try await start(ListenAddress(unixSocketPath: path), seen: seen, delay: .milliseconds(2500))
        defer { task.cancel() }
        let done = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: String.self)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(done: done))
                }
            }
            .connect(unixDomainSocketPath: path).get()
        let body = "{\"vin\":\"LSVAU2180N2183294\"}"
        try await channel.writeAndFlush(
            channel.allocator.buffer(
                string: "POST /erase HTTP/1.1\r\nHost: localhost\r\nX-Horgos-Operator: alice\r\n"
                    + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"))
        let text = try await done.futureResult.get()
        #expect(text.hasPrefix("HTTP/1.1 201"), "\(text)")
        #expect(text.contains("\"path\":\"\\/erase\"") || text.contains("\"path\":\"/erase\""))
        let request = try #require(seen.requests.withLock { $0.first })
        #expect(request.peer.transport == "unix-socket")
        #expect(request.peer.uid == getuid() && request.peer.pid == getpid())
        #expect(request.claimedUser == "alice" && String(decoding: request.body, as: UTF8.self) == body)
        let actor = request.peer.auditOperator(claimedUser: request.claimedUser)
        #expect(actor.via == "unix-socket" && actor.uid == getuid() && actor.claimedUser == "alice")
    }

    @Test func aPostOverTCPNamesThePeersAddressAndAnOversizedBodyIsRefused() async throws {
        let seen = Seen()
        let (port, task) = try await start(ListenAddress(host: "127.0.0.1", port: 0), seen: seen, delay: .zero)
        defer { task.cancel() }
        let answer = try await rawRequest(
            port: port, "POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        #expect(answer.hasPrefix("HTTP/1.1 201"), "\(answer)")
        let request = try #require(seen.requests.withLock { $0.first })
        #expect(request.peer.transport == "tcp" && request.peer.uid == nil)
        #expect(request.peer.address?.hasPrefix("127.0.0.1:") == true)
        let big = String(repeating: "x", count: 70_000)
        let refused = try await rawRequest(
            port: port, "POST /erase HTTP/1.1\r\nHost: x\r\nContent-Length: \(big.utf8.count)\r\nConnection: close\r\n\r\n\(big)")
        #expect(refused.hasPrefix("HTTP/1.1 413"), "\(refused.prefix(200))")
        #expect(seen.requests.withLock { $0.count } == 1)
    }
}
