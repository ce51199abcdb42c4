import HorgosProxyProtocol
import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import HorgosServer

/// Stands in for the TLS handler behind the PROXY handler: records every byte that reaches it.
private final class ByteRecorder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var bytes: [UInt8] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bytes += unwrapInboundIn(data).readableBytesView
    }
}

/// What the handler's callbacks reported, in order.
private final class SeenEvents: Sendable {
    let events = Mutex<[String]>([])
    var all: [String] { events.withLock { $0 } }
}

/// The NIO side of PROXY v2: what reaches the handlers behind it, and when the connection closes.
@Suite struct ProxyProtocolHandlerTests {
    static let tcp4Header = ProxyHeader(
        command: .proxy, transport: .stream, source: .inet(address: [203, 0, 113, 7], port: 40001),
        destination: .inet(address: [10, 0, 0, 1], port: 7443), length: 0
    ).encoded()

    /// A channel with [PROXY handler, recorder]; returns the channel, the recorder and what was seen.
    private func makeChannel(timeout: TimeAmount = .seconds(5), refuseHeader: Bool = false) throws -> (
        EmbeddedChannel, ByteRecorder, SeenEvents
    ) {
        let channel = EmbeddedChannel()
        let recorder = ByteRecorder()
        let seen = SeenEvents()
        let handler = ProxyProtocolHandler(
            timeout: timeout,
            onHeader: { _, header in
                seen.events.withLock { $0.append("header \(header.clientIPAddress ?? "-")") }
                if refuseHeader { throw ProxyAdmissionRefused(refusal: .addressLimit) }
            },
            onRejected: { error in seen.events.withLock { $0.append("rejected \(error.reason)") } })
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.pipeline.syncOperations.addHandler(recorder)
        channel.connect(to: try SocketAddress(ipAddress: "127.0.0.2", port: 5000), promise: nil)
        return (channel, recorder, seen)
    }

    private func buffer(_ channel: EmbeddedChannel, _ bytes: [UInt8]) -> ByteBuffer {
        channel.allocator.buffer(bytes: bytes)
    }

    @Test func bytesAfterTheHeaderPassOnUnchangedAndTheHandlerLeaves() throws {
        let (channel, recorder, seen) = try makeChannel()
        let tls: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0x05]
        try channel.writeInbound(buffer(channel, Self.tcp4Header + tls))
        try channel.writeInbound(buffer(channel, [0xAA]))
        #expect(recorder.bytes == tls + [0xAA])
        #expect(seen.all == ["header 203.0.113.7"])
        #expect(channel.isActive)
        #expect(throws: (any Error).self) {
            try channel.pipeline.syncOperations.handler(type: ProxyProtocolHandler.self)
        }
    }

    @Test func aHeaderSplitOverManyReadsIsAssembled() throws {
        let (channel, recorder, seen) = try makeChannel()
        let stream = Self.tcp4Header + [0x16, 0x03]
        for byte in stream { try channel.writeInbound(buffer(channel, [byte])) }
        #expect(recorder.bytes == [0x16, 0x03])
        #expect(seen.all == ["header 203.0.113.7"])
    }

    @Test func aForgedHeaderNeverReachesTLSAndClosesTheConnection() throws {
        let (channel, recorder, seen) = try makeChannel()
        var forged = Self.tcp4Header + [0x16, 0x03, 0x01]
        forged[12] = 0x31  // version 3
        _ = try? channel.writeInbound(buffer(channel, forged))
        #expect(recorder.bytes.isEmpty)
        #expect(!channel.isActive)
        #expect(seen.all == ["rejected unsupported_version"])
    }

    @Test func aDirectTLSClientWithoutHeaderNeverReachesTLS() throws {
        let (channel, recorder, seen) = try makeChannel()
        _ = try? channel.writeInbound(buffer(channel, [0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))
        #expect(recorder.bytes.isEmpty)
        #expect(!channel.isActive)
        #expect(seen.all == ["rejected bad_signature"])
    }

    @Test func aTruncatedHeaderThenCloseNeverReachesTLS() throws {
        let (channel, recorder, seen) = try makeChannel()
        try channel.writeInbound(buffer(channel, Array(Self.tcp4Header.prefix(20))))
        #expect(channel.isActive)
        channel.close(promise: nil)
        #expect(recorder.bytes.isEmpty)
        #expect(seen.all == ["rejected truncated"])
    }

    @Test func aHeaderThatDoesNotArriveInTimeClosesTheConnection() throws {
        let (channel, recorder, seen) = try makeChannel(timeout: .seconds(3))
        try channel.writeInbound(buffer(channel, Array(Self.tcp4Header.prefix(10))))
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive)
        #expect(recorder.bytes.isEmpty)
        #expect(seen.all == ["rejected truncated"])
    }

    @Test func aRefusedClientAddressClosesBeforeTLS() throws {
        let (channel, recorder, seen) = try makeChannel(refuseHeader: true)
        _ = try? channel.writeInbound(buffer(channel, Self.tcp4Header + [0x16]))
        #expect(recorder.bytes.isEmpty)
        #expect(!channel.isActive)
        #expect(seen.all == ["header 203.0.113.7"])
    }

    @Test func perAddressLimitCountsTheHeaderAddress() throws {
        let registry = ConnectionRegistry(maxConnections: 10, maxPerAddress: 1)
        let first = EmbeddedChannel()
        let second = EmbeddedChannel()
        // Both TCP peers are the balancer; the header names the vehicles.
        #expect(registry.admit(first, address: "203.0.113.7") == nil)
        #expect(registry.admit(second, address: "203.0.113.8") == nil)
        #expect(registry.admit(EmbeddedChannel(), address: "203.0.113.7") == .addressLimit)
        #expect(registry.connectionsByAddress().map(\.address) == ["203.0.113.7", "203.0.113.8"])
    }
}
