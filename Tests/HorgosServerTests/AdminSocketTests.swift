import Foundation
import Logging
import NIOCore
import NIOPosix
import Prometheus
import Testing

@testable import HorgosServer

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
