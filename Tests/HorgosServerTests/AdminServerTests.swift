import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import Synchronization
import Testing

@testable import HorgosServer

/// Collects everything the server sends until it closes the connection.
final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private var received: [UInt8] = []
    let done: EventLoopPromise<String>

    init(done: EventLoopPromise<String>) { self.done = done }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += unwrapInboundIn(data).readableBytesView
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.succeed(String(decoding: received, as: UTF8.self))
    }
}

/// A raw HTTP/1.1 request over TCP; returns the whole response text.
func rawRequest(port: Int, _ request: String) async throws -> String {
    let group = MultiThreadedEventLoopGroup.singleton
    let done = group.next().makePromise(of: String.self)
    let channel = try await ClientBootstrap(group: group)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(ResponseCollector(done: done))
            }
        }
        .connect(host: "127.0.0.1", port: port).get()
    try await channel.writeAndFlush(channel.allocator.buffer(string: request))
    return try await done.futureResult.get()
}

func httpGet(_ path: String, port: Int) async throws -> (status: Int, body: String, head: String) {
    let text = try await rawRequest(port: port, "GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    let parts = text.components(separatedBy: "\r\n\r\n")
    let head = parts[0]
    let status = Int(head.split(separator: " ")[1]) ?? 0
    return (status, parts.dropFirst().joined(separator: "\r\n\r\n"), head)
}

/// A shared on/off switch for the serving state.
private final class ServingFlag: Sendable {
    private let state: Mutex<Bool>
    init(_ value: Bool) { state = Mutex(value) }
    var value: Bool {
        get { state.withLock { $0 } }
        set { state.withLock { $0 = newValue } }
    }
}

private struct TestStatus: Encodable, Sendable {
    var version: String
    var connections: Int
}

@Suite(.serialized) struct AdminServerTests {
    /// Starts an AdminServer on port 0; returns the port and the task to cancel.
    private func start(serving: ServingFlag, registry: PrometheusCollectorRegistry)
        async throws -> (Int, Task<Void, any Error>)
    {
        let (bound, continuation) = AsyncStream.makeStream(of: Int.self)
        let server = AdminServer(
            socket: .address(ListenAddress(host: "127.0.0.1", port: 0)),
            sources: .init(
                isServing: { serving.value },
                status: { TestStatus(version: "9.9.9", connections: 3) },
                registry: registry),
            logger: Logger(label: "test"),
            onBound: { continuation.yield($0.port ?? -1) })
        let task = Task { try await server.run() }
        for await port in bound { return (port, task) }
        throw CancellationError()
    }

    @Test func healthFollowsTheServingStateAndStatusIsJSON() async throws {
        let serving = ServingFlag(false)
        let (port, task) = try await start(serving: serving, registry: PrometheusCollectorRegistry())
        defer { task.cancel() }

        let starting = try await httpGet("/health", port: port)
        #expect(starting.status == 503)
        serving.value = true
        let up = try await httpGet("/health", port: port)
        #expect(up.status == 200)
        #expect(up.body == "ok\n")

        let status = try await httpGet("/status", port: port)
        #expect(status.status == 200)
        #expect(status.head.lowercased().contains("content-type: application/json"))
        #expect(status.body == "{\"connections\":3,\"version\":\"9.9.9\"}\n")

        let missing = try await httpGet("/nope", port: port)
        #expect(missing.status == 404)
        let post = try await rawRequest(
            port: port, "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        #expect(post.hasPrefix("HTTP/1.1 405"))
    }

    @Test func metricsRendersSwiftMetricsThroughPrometheus() async throws {
        let registry = PrometheusCollectorRegistry()
        let factory = PrometheusMetricsFactory(registry: registry)
        Counter(label: "horgos_frames_total", dimensions: [("region", "AE")], factory: factory).increment(by: 7)
        Gauge(label: "horgos_queue_bytes", dimensions: [("region", "MX")], factory: factory).record(1024)
        let (port, task) = try await start(serving: ServingFlag(true), registry: registry)
        defer { task.cancel() }

        let metrics = try await httpGet("/metrics", port: port)
        #expect(metrics.status == 200)
        #expect(metrics.head.contains("text/plain; version=0.0.4"))
        #expect(metrics.body.contains("horgos_frames_total{region=\"AE\"} 7"))
        #expect(metrics.body.contains("horgos_queue_bytes{region=\"MX\"} 1024"))
    }

    @Test func perRegionHealthSaysOkDegradedOrNotServedAndFleetIsJSON() async throws {
        let serving = ServingFlag(true)
        let (bound, continuation) = AsyncStream.makeStream(of: Int.self)
        let regions: [String: RegionStatus] = [
            "AE": RegionStatus(region: "AE", state: "ok", queuedBytes: 0, recordsStored: 1, recordsDuplicate: 0,
                               recordsRejected: 0, eventsStored: 0, commits: 1, failedAttempts: 0),
            "SA": RegionStatus(region: "SA", state: "degraded", fault: "disk_full", message: "SQLITE_FULL",
                               queuedBytes: 10, recordsStored: 0, recordsDuplicate: 0, recordsRejected: 0,
                               eventsStored: 0, commits: 0, failedAttempts: 3),
        ]
        let server = AdminServer(
            socket: .address(ListenAddress(host: "127.0.0.1", port: 0)),
            sources: .init(
                isServing: { serving.value }, status: { TestStatus(version: "9.9.9", connections: 0) },
                registry: PrometheusCollectorRegistry(), regionStatus: { regions[$0] },
                fleetHealth: { lowSOC, maxCellTemp in ["lowSOC": lowSOC, "maxCellTemp": maxCellTemp] }),
            logger: Logger(label: "test"), onBound: { continuation.yield($0.port ?? -1) })
        let task = Task { try await server.run() }
        defer { task.cancel() }
        var port = 0
        for await value in bound {
            port = value
            break
        }
        #expect(try await httpGet("/health/AE", port: port).status == 200)
        #expect(try await httpGet("/health/ae", port: port).status == 200)
        let degraded = try await httpGet("/health/SA", port: port)
        #expect(degraded.status == 503)
        #expect(degraded.body.contains("disk_full"))
        #expect(try await httpGet("/health/MX", port: port).status == 404)
        #expect(try await httpGet("/health", port: port).status == 200, "the process still serves")
        serving.value = false
        #expect(try await httpGet("/health/AE", port: port).status == 503)
        let fleet = try await httpGet("/fleet?low_soc=20&max_cell_temp=50", port: port)
        #expect(fleet.status == 200)
        #expect(fleet.body == "{\"lowSOC\":20,\"maxCellTemp\":50}\n")
    }

    @Test func keepAliveServesSeveralRequestsOnOneConnection() async throws {
        let (port, task) = try await start(serving: ServingFlag(true), registry: PrometheusCollectorRegistry())
        defer { task.cancel() }
        let text = try await rawRequest(
            port: port,
            "GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(text.components(separatedBy: "HTTP/1.1 200 OK").count == 3)
    }
}

@Suite struct DaemonStateTests {
    @Test func readinessCountsComponentsAndStatusReflectsListeners() {
        let state = DaemonState(regions: ["AE", "MX"])
        #expect(!state.isServing)
        #expect(state.componentReady("store") == 1)
        state.listenerBound("telemetry", address: "127.0.0.1:7443")
        #expect(state.componentReady("telemetry") == 2)
        #expect(state.componentReady("telemetry") == 2)  // reporting twice does not count twice
        state.setConnectionReporter({ 5 })
        state.isServing = true
        let status = state.snapshot()
        #expect(status.serving && status.connections == 5)
        #expect(status.listeners == ["telemetry": "127.0.0.1:7443"])
        #expect(state.statusLine() == "serving; 5 connections; 0 records/s; 2 regions")
    }
}
