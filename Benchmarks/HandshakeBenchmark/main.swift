// horgos-bench-handshake: CPU of the telemetry listener's mutual-TLS handshake per key-exchange group.
//
// The server side is the daemon's TLS context (TelemetryTLS: policy, fleet CA, client certificate
// required) on its own one-thread event loop; clients run on another loop. The server loop's thread CPU
// time (CLOCK_THREAD_CPUTIME_ID, read on that thread) is divided by the handshakes done, so the figure
// is the server's share only. Usage: horgos-bench-handshake [handshakes per group, default 300].
import Foundation
import HorgosPKI
import HorgosServer
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

#if canImport(Glibc)
    import Glibc
#endif

/// Closes the connection once the TLS handshake completed (both sides).
final class CloseOnHandshake: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let done: EventLoopPromise<Void>?
    init(done: EventLoopPromise<Void>?) { self.done = done }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls {
            done?.succeed(())
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        done?.fail(error)
        context.close(promise: nil)
    }
}

func threadCPUNanoseconds(on loop: any EventLoop) throws -> UInt64 {
    try loop.submit { () -> UInt64 in
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }.wait()
}

let count = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 300 : 300
let authority = try FleetPKI.createCertificateAuthority(commonName: "Handshake Bench CA")
let server = try authority.issueServerCertificate()
let vehicle = try authority.issueVehicleCertificate(vin: "LSVAU2180N2183294", market: "AE")
let serverGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let serverLoop = serverGroup.next()

let groups: [(String, NIOTLSCurve)] = [
    ("x25519", .x25519), ("secp256r1", .secp256r1), ("x25519_mlkem768", .x25519_MLKEM768),
]
print("group             handshakes  server CPU per handshake (µs)  (TLS 1.3, ECDSA P-256 certificates)")
for (name, curve) in groups {
    let context = try TelemetryTLS.makeServerContext(
        caCertificatePEM: try authority.caCertificatePEM, certificateChainPEM: try server.certificatePEM,
        privateKeyPEM: server.privateKeyPEM)
    let listener = try ServerBootstrap(group: serverGroup)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                try channel.pipeline.syncOperations.addHandler(CloseOnHandshake(done: nil))
            }
        }
        .bind(host: "127.0.0.1", port: 0).wait()
    var client = TLSConfiguration.makeClientConfiguration()
    client.trustRoots = .certificates([
        try NIOSSLCertificate(bytes: Array(try authority.caCertificatePEM.utf8), format: .pem)
    ])
    client.certificateVerification = .noHostnameVerification
    client.certificateChain = [
        .certificate(try NIOSSLCertificate(bytes: Array(try vehicle.certificatePEM.utf8), format: .pem))
    ]
    client.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(vehicle.privateKeyPEM.utf8), format: .pem))
    client.curves = [curve]
    client.minimumTLSVersion = .tlsv13
    let clientContext = try NIOSSLContext(configuration: client)
    let port = listener.localAddress!.port!
    func handshake() throws {
        let promise = clientGroup.next().makePromise(of: Void.self)
        let channel = try ClientBootstrap(group: clientGroup)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        NIOSSLClientHandler(context: clientContext, serverHostname: "localhost"))
                    try channel.pipeline.syncOperations.addHandler(CloseOnHandshake(done: promise))
                }
            }
            .connect(host: "127.0.0.1", port: port).wait()
        try promise.futureResult.wait()
        try channel.closeFuture.wait()
    }
    for _ in 0..<20 { try handshake() }  // warm-up
    Thread.sleep(forTimeInterval: 0.2)
    let before = try threadCPUNanoseconds(on: serverLoop)
    for _ in 0..<count { try handshake() }
    Thread.sleep(forTimeInterval: 0.2)  // let the server finish closing
    let after = try threadCPUNanoseconds(on: serverLoop)
    let perHandshake = Double(after - before) / Double(count) / 1000
    let columns = name.padding(toLength: 18, withPad: " ", startingAt: 0)
        + String(count).padding(toLength: 12, withPad: " ", startingAt: 0)
    print(columns + String(format: "%.0f", perHandshake))
    try listener.close().wait()
}
try serverGroup.syncShutdownGracefully()
try clientGroup.syncShutdownGracefully()
