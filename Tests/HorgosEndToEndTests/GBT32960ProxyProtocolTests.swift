import Foundation
import NIOCore
import NIOPosix
import Testing

/// `listen.proxy_protocol: v2` covers the GB/T 32960 listener too (issue 14 item 1): behind HAProxy
/// a connection must start with a PROXY v2 header, and one that does not never reaches TLS.
@Suite struct GBT32960ProxyProtocolTests {
    @Test func aGBT32960ConnectionWithoutAProxyHeaderIsClosedAndCountedBeforeTLS() async throws {
        let daemon = try DaemonProcess(environment: ["HORGOS_LISTEN_PROXY_PROTOCOL": "v2"])
        try await daemon.start()
        defer { daemon.removeState() }
        let before = Self.rejectedHeaders(try await daemon.httpGet("/metrics").body)

        // A GB/T 32960 unit speaking straight to the node: its first bytes are a TLS ClientHello
        // record header, not the PROXY v2 signature.
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: daemon.gbt32960Port).get()
        var bytes = channel.allocator.buffer(capacity: 16)
        bytes.writeBytes([0x16, 0x03, 0x01, 0x00, 0xC8, 0x01, 0x00, 0x00, 0xC4, 0x03, 0x03, 0, 0, 0, 0, 0])
        try await channel.writeAndFlush(bytes)
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(30)
        while channel.isActive && clock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!channel.isActive, "the listener closed the connection without a PROXY header")

        var metrics = ""
        while clock.now < deadline && Self.rejectedHeaders(metrics) <= before {
            metrics = try await daemon.httpGet("/metrics").body
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(Self.rejectedHeaders(metrics) == before + 1, "one connection without a header counted")
        // Nothing reached TLS: no handshake failure was counted for it.
        #expect(metrics.contains("horgos_refusals_total{protocol=\"gbt32960\",code=\"TLS_HANDSHAKE_FAILED\"} 0"))
        #expect(daemon.log.contains("GB/T 32960 connection without a valid PROXY v2 header closed"))
        #expect(try await daemon.stop() == 0)
    }

    /// The sum of `horgos_proxy_header_rejected_total` over its reasons (the series start at 0).
    static func rejectedHeaders(_ metrics: String) -> Double {
        metrics.split(separator: "\n")
            .filter { $0.hasPrefix("horgos_proxy_header_rejected_total{") }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }
            .reduce(0, +)
    }
}
