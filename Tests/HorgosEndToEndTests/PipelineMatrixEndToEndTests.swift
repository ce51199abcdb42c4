import Foundation
import HorgosGBT32960
import HorgosPKI
import HorgosWire
import NIOSSL
import Testing
import X509

#if canImport(Glibc)
    import Glibc
#endif

/// The protocols of the behaviour matrix.
enum Wire: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case native
    case gbt32960

    var testDescription: String { rawValue }
    /// The other protocol.
    var other: Wire { self == .native ? .gbt32960 : .native }
}

/// A unit of either protocol against the real daemon: opens its session (HELLO; a vehicle's or platform's
/// login), sends data frames, counts what was answered and whether the daemon closed it.
final class MatrixPeer: Sendable {
    let wire: Wire
    let native: WireClient?
    let gbt32960: GBT32960Client?
    let isGateway: Bool

    private init(wire: Wire, native: WireClient?, gbt32960: GBT32960Client?, isGateway: Bool) {
        self.wire = wire
        self.native = native
        self.gbt32960 = gbt32960
        self.isGateway = isGateway
    }

    /// Connects to `daemon`'s listener of `wire` presenting `issued` (a gateway's certificate makes a native
    /// gateway or a GB/T 32960 platform); `proxyHeader` goes out before TLS.
    static func connect(
        _ wire: Wire, _ daemon: DaemonProcess, issued: IssuedCertificate, isGateway: Bool = false,
        proxyHeader: [UInt8]? = nil
    ) async throws -> MatrixPeer {
        let context = try WireClient.context(issued: issued, caPEM: try daemon.authority().caCertificatePEM)
        return try await connect(wire, daemon, context: context, isGateway: isGateway, proxyHeader: proxyHeader)
    }

    /// Connects with a client TLS context made once (many sessions with one certificate).
    static func connect(
        _ wire: Wire, _ daemon: DaemonProcess, context: NIOSSLContext, isGateway: Bool = false,
        proxyHeader: [UInt8]? = nil
    ) async throws -> MatrixPeer {
        switch wire {
        case .native:
            let client = try await WireClient.connect(port: daemon.telemetryPort, context: context, proxyHeader: proxyHeader)
            return MatrixPeer(wire: wire, native: client, gbt32960: nil, isGateway: isGateway)
        case .gbt32960:
            let client = try await GBT32960Client.connect(
                port: daemon.gbt32960Port, context: context, proxyHeader: proxyHeader)
            return MatrixPeer(wire: wire, native: nil, gbt32960: client, isGateway: isGateway)
        }
    }

    static func nowSeconds() -> Int64 { Int64(Date().timeIntervalSince1970) }

    static func time(_ offset: Int64 = 0) -> GBT32960Time {
        GBT32960Time(epochSeconds: nowSeconds() + offset, utcOffsetSeconds: GBT32960Format.beijingUTCOffsetSeconds)
    }

    /// A GB/T 32960 frame of `command` for `vin`.
    static func gbtFrame(_ command: GBT32960Command, vin: GBT32960VINField, _ body: (inout [UInt8]) -> Void) -> [UInt8] {
        var out: [UInt8] = []
        GBT32960Encoder.appendFrame(command: command, vin: vin, to: &out, dataUnit: body)
        return out
    }

    /// A GB/T 32960 vehicle login for `vin`.
    static func vehicleLogin(_ vin: VIN) -> [UInt8] {
        gbtFrame(.vehicleLogin, vin: GBT32960VINField(vin)) {
            GBT32960Encoder.appendVehicleLogin(
                time: time(), sequence: 1, iccid: Array("89860012345678901234".utf8), subsystemCodes: [[0x31]], to: &$0)
        }
    }

    /// Sends the opening: HELLO (vehicle or gateway), or the login (a vehicle's for `vin`, a platform's).
    func sendOpening(vin: VIN?) async throws {
        if let native {
            try await native.send(WireClient.hello(isGateway ? .gateway : .vehicle))
        } else if let gbt32960 {
            if isGateway {
                try await gbt32960.send(
                    Self.gbtFrame(.platformLogin, vin: GBT32960VINField(padding: "PLATFORM")) {
                        GBT32960Encoder.appendPlatformLogin(
                            time: Self.time(), sequence: 1, username: "p", password: "p", to: &$0)
                    })
            } else if let vin {
                try await gbt32960.send(Self.vehicleLogin(vin))
            }
        }
    }

    /// Opens the session; true when the daemon accepted it (WELCOME; the login answered success).
    func open(vin: VIN?) async throws -> Bool {
        let before = answerCount
        try await sendOpening(vin: vin)
        if let native {
            let replies = try await native.waitFor(timeout: .seconds(30)) { $0.contains { if case .welcome = $0 { true } else { false } } }
            return replies.contains { if case .welcome = $0 { true } else { false } }
        }
        let answers = try await gbt32960!.waitForAnswers(before + 1, timeout: .seconds(30))
        return answers.count > before && Self.flag(answers[before]) == .success
    }

    /// A data frame for `vin`: native TELEMETRY `sequence` with `records` records; a GB/T 32960 realtime report.
    func data(vin: VIN, sequence: UInt32, records: Int = 1) -> [UInt8] {
        switch wire {
        case .native:
            return WireClient.telemetry(
                vin: vin, sequence: sequence, startMs: Int64(Date().timeIntervalSince1970 * 1000) - 60_000 + Int64(sequence) * 10,
                records: records)
        case .gbt32960:
            let values = GBT32960RealtimeValues.typical(seed: Int(sequence), time: Self.time(-600 + Int64(sequence)))
            return Self.gbtFrame(.realtime, vin: GBT32960VINField(vin)) { values.appendDataUnit(to: &$0) }
        }
    }

    func send(_ bytes: [UInt8]) async throws {
        if let native { try await native.send(bytes) } else { try await gbt32960!.send(bytes) }
    }

    /// Frames the daemon sent.
    var answerCount: Int { native?.replies.count ?? gbt32960!.answers.count }

    /// GB/T 32960 answers with their flags, in order.
    var gbtFlags: [GBT32960ResponseFlag] { gbt32960?.answers.map(Self.flag) ?? [] }

    static func flag(_ frame: [UInt8]) -> GBT32960ResponseFlag { GBT32960ResponseFlag(rawValue: frame[3]) ?? .command }

    /// The highest native ACK so far.
    var ackedThrough: UInt32 { native?.replies.compactMap(\.ack?.sequence).max() ?? 0 }

    /// GB/T 32960 realtime frames answered success so far.
    var gbtStored: Int {
        gbt32960?.answers.filter { $0[2] == GBT32960Command.realtime.rawValue && Self.flag($0) == .success }.count ?? 0
    }

    /// Waits (bounded, generous) until `condition` holds.
    func wait(timeout: Duration = .seconds(30), _ condition: () -> Bool) async throws -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while !condition() && clock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        return condition()
    }

    var isClosed: Bool { native?.isClosed ?? gbt32960!.isClosed }

    func waitClosed(timeout: Duration = .seconds(30)) async throws -> Bool {
        try await wait(timeout: timeout) { isClosed }
    }

    func close() async {
        if let native { await native.close() } else { await gbt32960!.close() }
    }
}

/// The connection pipeline's behaviour matrix, run on both protocols against the real `horgosd` in its own
/// process (issue 19): every listener feature is written once and holds for both.
@Suite(.serialized) struct PipelineMatrixEndToEndTests {
    static let vin = VIN("LSVAU2180N2183294")!
    static let otherVIN = VIN("LGXC16DF4M0123456")!

    /// A daemon with `environment`, started.
    static func daemon(_ environment: [String: String] = [:]) async throws -> DaemonProcess {
        let daemon = try DaemonProcess(environment: environment)
        try await daemon.start()
        return daemon
    }

    /// The value of one series in the daemon's `/metrics`, 0 when absent.
    static func metric(_ daemon: DaemonProcess, _ series: String) async throws -> Double {
        let body = try await daemon.httpGet("/metrics").body
        let line = body.split(separator: "\n").first { $0.hasPrefix(series + " ") }
        return line.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
    }

    /// Telemetry rows stored for `vin` in region AE (read after the daemon stopped).
    static func storedRows(_ daemon: DaemonProcess, vin: VIN) async throws -> Int {
        let directory = daemon.stateDirectory + "/AE"
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var sum = 0
        for file in files where file.hasPrefix("telemetry-") && file.hasSuffix(".sqlite") {
            let rows = try await GBT32960EndToEndTests.query(
                directory + "/" + file,
                "SELECT count(*) FROM telemetry t JOIN vehicles v ON v.id = t.vehicle_id WHERE v.vin = '\(vin)'")
            sum += Int(rows.first ?? "0") ?? 0
        }
        return sum
    }

    /// The deny list's form of a certificate's serial: lower-case hex, no leading zeros.
    static func serial(_ issued: IssuedCertificate) -> String {
        let bytes = issued.certificate.serialNumber.bytes.drop { $0 == 0 }
        let hex = bytes.map { String(format: "%02x", $0) }.joined()
        return hex.hasPrefix("0") ? String(hex.dropFirst()) : hex
    }

    @Test(arguments: Wire.allCases)
    func aReloadThatRevokesAnOpenSessionsCertificateEndsThatSession(wire: Wire) async throws {
        let list = FileManager.default.temporaryDirectory.appendingPathComponent("deny-\(UUID().uuidString).txt").path
        try "# nothing revoked\n".write(toFile: list, atomically: true, encoding: .utf8)
        let daemon = try await Self.daemon(["HORGOS_TLS_REVOCATION_LIST": list])
        defer { daemon.removeState() }
        let authority = try daemon.authority()
        let issued = try authority.issueVehicleCertificate(vin: Self.vin.description, market: "AE")
        let kept = try authority.issueVehicleCertificate(vin: Self.otherVIN.description, market: "AE")
        let peer = try await MatrixPeer.connect(wire, daemon, issued: issued)
        let bystander = try await MatrixPeer.connect(wire, daemon, issued: kept)
        #expect(try await peer.open(vin: Self.vin))
        #expect(try await bystander.open(vin: Self.otherVIN))

        try "serial:\(Self.serial(issued))\n".write(toFile: list, atomically: true, encoding: .utf8)
        kill(daemon.pid, SIGHUP)
        // The condition, waited for with a generous bound: the revoked session ends, the other one stays.
        #expect(try await peer.waitClosed(timeout: .seconds(60)))
        if wire == .native {
            #expect(peer.native!.replies.contains(.error(.certificateRevoked)))
        }
        #expect(!bystander.isClosed)
        let revoked = try await Self.metric(
            daemon, "horgos_refusals_total{protocol=\"\(wire.rawValue)\",code=\"CERTIFICATE_REVOKED\"}")
        #expect(revoked == 1)
        #expect(daemon.log.contains("revoked_sessions=1"))
        await bystander.close()
        #expect(try await daemon.stop() == 0)
    }

    @Test(arguments: Wire.allCases)
    func aDenyListedVINForwardedByAGatewayOrPlatformIsRefusedTheProtocolsWayAndNotStored(wire: Wire) async throws {
        let list = FileManager.default.temporaryDirectory.appendingPathComponent("deny-\(UUID().uuidString).txt").path
        try "vin:\(Self.vin)\n".write(toFile: list, atomically: true, encoding: .utf8)
        let daemon = try await Self.daemon(["HORGOS_TLS_REVOCATION_LIST": list])
        defer { daemon.removeState() }
        let gateway = try daemon.authority().issueGatewayCertificate(name: "ae-partner", market: "AE")
        let peer = try await MatrixPeer.connect(wire, daemon, issued: gateway, isGateway: true)
        #expect(try await peer.open(vin: nil))
        switch wire {
        case .native:
            // The revoked VIN's frame is acknowledged with all its records rejected (the gateway does not
            // resend it); the other VIN's frame is stored.
            try await peer.send(peer.data(vin: Self.vin, sequence: 1, records: 3))
            try await peer.send(peer.data(vin: Self.otherVIN, sequence: 2))
            #expect(try await peer.wait { peer.ackedThrough == 2 })
            let rejected = peer.native!.replies.compactMap(\.ack).reduce(0) { $0 + Int($1.rejectedRecords) }
            #expect(rejected == 3)
        case .gbt32960:
            // The platform's login of the revoked vehicle and its report are answered with the error flag.
            try await peer.send(MatrixPeer.vehicleLogin(Self.vin))
            try await peer.send(peer.data(vin: Self.vin, sequence: 1))
            try await peer.send(MatrixPeer.vehicleLogin(Self.otherVIN))
            try await peer.send(peer.data(vin: Self.otherVIN, sequence: 2))
            #expect(try await peer.wait { peer.gbtFlags.count == 5 })
            #expect(peer.gbtFlags == [.success, .error, .error, .success, .success])
        }
        let refusals = try await Self.metric(
            daemon, "horgos_refusals_total{protocol=\"\(wire.rawValue)\",code=\"CERTIFICATE_REVOKED\"}")
        #expect(refusals >= 1)
        await peer.close()
        #expect(try await daemon.stop() == 0)
        #expect(try await Self.storedRows(daemon, vin: Self.vin) == 0)
        #expect(try await Self.storedRows(daemon, vin: Self.otherVIN) == 1)
    }

    /// `limits.max_connections` counts every listener's connections: with a cap of 4 held by two native and
    /// two GB/T 32960 sessions, the next connection of `wire` is closed at accept.
    @Test(arguments: Wire.allCases)
    func maxConnectionsHoldsForNativeAndGBT32960ConnectionsTogether(wire: Wire) async throws {
        let daemon = try await Self.daemon([
            "HORGOS_LIMITS_MAX_CONNECTIONS": "4", "HORGOS_LIMITS_MAX_CONNECTIONS_PER_ADDRESS": "4",
        ])
        defer { daemon.removeState() }
        let authority = try daemon.authority()
        var peers: [MatrixPeer] = []
        for (index, protocolOfPeer) in [Wire.native, .gbt32960, .native, .gbt32960].enumerated() {
            let vin = VIN("LSVAU2180N218329\(index)")!
            let issued = try authority.issueVehicleCertificate(vin: vin.description, market: "AE")
            let peer = try await MatrixPeer.connect(protocolOfPeer, daemon, issued: issued)
            #expect(try await peer.open(vin: vin))
            peers.append(peer)
        }
        let status = try await daemon.httpGet("/status").body
        #expect(status.contains("\"connections\":4"))
        #expect(status.contains("\"gbt32960\":2") && status.contains("\"native\":2"))

        let extra = try authority.issueVehicleCertificate(vin: "LSVAU2180N2183299", market: "AE")
        let refused = try await MatrixPeer.connect(wire, daemon, issued: extra)
        try? await refused.sendOpening(vin: VIN("LSVAU2180N2183299")!)
        #expect(try await refused.waitClosed())
        #expect(try await Self.metric(daemon, "horgos_refusals_total{protocol=\"\(wire.rawValue)\",code=\"TOTAL_LIMIT\"}") == 1)
        #expect(peers.allSatisfy { !$0.isClosed }, "the admitted sessions are kept")
        for peer in peers { await peer.close() }
        #expect(try await daemon.stop() == 0)
    }

    /// SIGTERM while frames are in flight: every frame the daemon received is committed and answered before
    /// the connection closes (native: the final ACK, then BYE), and the daemon exits 0 within
    /// `shutdown.drain_timeout_seconds`.
    @Test(arguments: Wire.allCases)
    func sigtermUnderLoadAnswersEveryReceivedFrameBeforeClosingWithinTheDrainTimeout(wire: Wire) async throws {
        // Journal rounds wait 100 ms for more frames, so the SIGTERM finds frames received and not yet answered.
        let daemon = try await Self.daemon([
            "HORGOS_JOURNAL_MAX_DELAY_US": "100000", "HORGOS_SHUTDOWN_DRAIN_TIMEOUT_SECONDS": "15",
        ])
        defer { daemon.removeState() }
        let issued = try daemon.authority().issueVehicleCertificate(vin: Self.vin.description, market: "AE")
        let peer = try await MatrixPeer.connect(wire, daemon, issued: issued)
        #expect(try await peer.open(vin: Self.vin))
        let frames = 40
        for sequence in 1...frames { try await peer.send(peer.data(vin: Self.vin, sequence: UInt32(sequence))) }
        // Every frame received (handed to storage) before the signal.
        let received = "horgos_records_total{region=\"AE\",protocol=\"\(wire.rawValue)\"}"
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(60)
        while try await Self.metric(daemon, received) < Double(frames) && clock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(try await Self.metric(daemon, received) == Double(frames))
        let signalled = clock.now
        let status = try await daemon.stop(signal: SIGTERM, timeout: .seconds(60))
        let drained = clock.now - signalled
        #expect(status == 0)
        #expect(drained < .seconds(15), "within shutdown.drain_timeout_seconds")
        #expect(try await peer.waitClosed())
        switch wire {
        case .native:
            #expect(peer.ackedThrough == UInt32(frames))
            #expect(peer.native!.replies.last == .bye(.serverShutdown))
        case .gbt32960:
            #expect(peer.gbtStored == frames)
        }
        #expect(try await Self.storedRows(daemon, vin: Self.vin) == frames)
    }

    /// The handshake timer ends a connection that completes TLS but never opens its session (counted as
    /// HANDSHAKE_TIMEOUT); the idle timer ends a session that falls silent; a session that opened outlives
    /// the handshake timer.
    @Test(arguments: Wire.allCases)
    func theHandshakeAndIdleTimersEndSilentConnectionsOfEitherProtocol(wire: Wire) async throws {
        let daemon = try await Self.daemon([
            "HORGOS_LIMITS_HANDSHAKE_TIMEOUT_SECONDS": "2", "HORGOS_LIMITS_IDLE_TIMEOUT_SECONDS": "8",
            "HORGOS_LIMITS_HEARTBEAT_INTERVAL_SECONDS": "1",
        ])
        defer { daemon.removeState() }
        let authority = try daemon.authority()
        let opened = try await MatrixPeer.connect(
            wire, daemon, issued: try authority.issueVehicleCertificate(vin: Self.vin.description, market: "AE"))
        #expect(try await opened.open(vin: Self.vin))
        let silent = try await MatrixPeer.connect(
            wire, daemon, issued: try authority.issueVehicleCertificate(vin: Self.otherVIN.description, market: "AE"))
        #expect(try await silent.waitClosed(timeout: .seconds(60)), "TLS done, no opening: the handshake timer")
        #expect(!opened.isClosed, "the opened session outlives the handshake timer")
        let timeouts = try await Self.metric(
            daemon, "horgos_refusals_total{protocol=\"\(wire.rawValue)\",code=\"HANDSHAKE_TIMEOUT\"}")
        #expect(timeouts == 1)
        #expect(try await opened.waitClosed(timeout: .seconds(60)), "silent after opening: the idle timer")
        if wire == .native { #expect(opened.native!.replies.last == .bye(.idleTimeout)) }
        #expect(try await daemon.stop() == 0)
    }

    /// Behind a load balancer (`listen.proxy_protocol: v2`) the PROXY header's address is what the limits
    /// and `/status` see, and a connection without a header never reaches TLS.
    @Test(arguments: Wire.allCases)
    func aProxyV2HeaderNamesTheClientForTheLimitsAndAConnectionWithoutOneIsClosed(wire: Wire) async throws {
        let daemon = try await Self.daemon([
            "HORGOS_LISTEN_PROXY_PROTOCOL": "v2", "HORGOS_LIMITS_MAX_CONNECTIONS_PER_ADDRESS": "1",
        ])
        defer { daemon.removeState() }
        let authority = try daemon.authority()
        let first = try await MatrixPeer.connect(
            wire, daemon, issued: try authority.issueVehicleCertificate(vin: Self.vin.description, market: "AE"),
            proxyHeader: ProxyHeaderWriter.header(client: "203.0.113.7"))
        #expect(try await first.open(vin: Self.vin))
        #expect(try await daemon.httpGet("/status").body.contains("\"address\":\"203.0.113.7\""))
        // The same client address again: over the per-address limit, closed before TLS.
        let second = try await MatrixPeer.connect(
            wire, daemon, issued: try authority.issueVehicleCertificate(vin: Self.otherVIN.description, market: "AE"),
            proxyHeader: ProxyHeaderWriter.header(client: "203.0.113.7", port: 40_001))
        #expect(try await second.waitClosed())
        #expect(try await Self.metric(daemon, "horgos_refusals_total{protocol=\"\(wire.rawValue)\",code=\"ADDRESS_LIMIT\"}") == 1)
        // No header at all: closed and counted, nothing reached TLS.
        let rejectedBefore = try await daemon.httpGet("/metrics").body.split(separator: "\n")
            .filter { $0.hasPrefix("horgos_proxy_header_rejected_total{") }
            .reduce(0.0) { $0 + (Double($1.split(separator: " ").last ?? "") ?? 0) }
        let bare = try await MatrixPeer.connect(
            wire, daemon, issued: try authority.issueVehicleCertificate(vin: "LSVAU2180N2183296", market: "AE"))
        #expect(try await bare.waitClosed())
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(30)
        var rejected = rejectedBefore
        while rejected <= rejectedBefore && clock.now < deadline {
            rejected = try await daemon.httpGet("/metrics").body.split(separator: "\n")
                .filter { $0.hasPrefix("horgos_proxy_header_rejected_total{") }
                .reduce(0.0) { $0 + (Double($1.split(separator: " ").last ?? "") ?? 0) }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(rejected == rejectedBefore + 1)
        #expect(!first.isClosed)
        await first.close()
        #expect(try await daemon.stop() == 0)
    }
}
