import Foundation
import HorgosPKI
import HorgosSimulator
import HorgosStore
import HorgosWire
import NIOCore
import NIOSSL
import HorgosTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// End-to-end tests against the real `horgosd` process (issue 4, item 7).
@Suite(.serialized) struct DaemonEndToEndTests {
    static let vin = VIN("LSVAU2180N2183294")!

    static func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// A started daemon plus a vehicle client context for `vin` in `market`.
    func started(_ environment: [String: String] = [:]) async throws -> DaemonProcess {
        let daemon = try DaemonProcess(environment: environment)
        try await daemon.start()
        return daemon
    }

    func vehicleContext(_ daemon: DaemonProcess, vin: VIN = Self.vin, market: String = "AE",
                        validity: CertificateValidity = .leafDefault()) throws -> NIOSSLContext {
        let authority = try daemon.authority()
        return try WireClient.context(
            issued: try authority.issueVehicleCertificate(vin: vin.description, market: market, validity: validity),
            caPEM: try authority.caCertificatePEM)
    }

    /// Rows stored per region, read from the shards with the store's read API.
    func storedRows(_ daemon: DaemonProcess) throws -> [String: Int] {
        var rows: [String: Int] = [:]
        for entry in try FileManager.default.contentsOfDirectory(atPath: daemon.stateDirectory) where entry.count == 2 {
            guard let region = Region(entry) else { continue }
            let count = try ShardReader(stateDirectory: daemon.stateDirectory, region: region).inventory()
                .filter { $0.kind == "telemetry" }.reduce(0) { $0 + $1.rows }
            if count > 0 { rows[entry] = count }
        }
        return rows
    }

    @Test func vehiclesAndAGatewayStreamThousandsOfFramesAndEveryAckedRecordIsInItsRegionShard() async throws {
        let daemon = try await started()
        defer { daemon.removeState() }
        let credentials = try PKIFleetCredentials(authority: try daemon.authority())
        let vehicleRegions = ["AE", "MX", "TH"].compactMap(SimulatedRegion.named)
        let vehicles = try await FleetRunner(
            plan: FleetPlan(mode: .vehicles, vehicleCount: 12, regions: vehicleRegions, seed: 21),
            settings: FleetSettings(port: daemon.telemetryPort, reportIntervalMs: 0, recordsPerFrame: 1),
            credentials: credentials, threads: 1
        ).run(duration: .seconds(3))
        let gateway = try await FleetRunner(
            plan: FleetPlan(mode: .gateways(1), vehicleCount: 20, regions: [SimulatedRegion.named("NO")!], seed: 22),
            settings: FleetSettings(port: daemon.telemetryPort, reportIntervalMs: 0, recordsPerFrame: 20),
            credentials: credentials, threads: 1
        ).run(duration: .seconds(2))
        // The server-side ACK-latency histogram counts every acknowledged data frame of its region.
        let metrics = try await daemon.httpGet("/metrics").body
        #expect(metrics.contains("horgos_ack_latency_seconds_count{region=\"NO\",protocol=\"native\"} \(gateway.totals.framesAcked)\n"))
        #expect(metrics.contains("# TYPE horgos_ack_latency_seconds histogram"))
        #expect(try await daemon.stop() == 0)
        #expect(vehicles.totals.errors.isEmpty && gateway.totals.errors.isEmpty)
        #expect(vehicles.outstandingFrames == 0 && gateway.outstandingFrames == 0)
        #expect(vehicles.totals.framesAcked > 1000, "thousands of frames: \(vehicles.totals.framesAcked)")
        let rows = try storedRows(daemon)
        #expect(Set(rows.keys) == ["AE", "MX", "TH", "NO"])
        #expect(rows["NO"] == gateway.totals.recordsAcked)
        #expect(rows["AE", default: 0] + rows["MX", default: 0] + rows["TH", default: 0] == vehicles.totals.recordsAcked)
        for region in ["AE", "MX", "TH"] {
            let health = try ShardReader(stateDirectory: daemon.stateDirectory, region: Region(region)!).fleetHealth()
            #expect(health.vehiclesTotal == vehicles.vehiclesByRegion[region])
        }
    }

    @Test func opensslSClientWithAVehicleCertificateGetsTheExpectedAckBytes() async throws {
        let daemon = try await started()
        defer { daemon.removeState() }
        let authority = try daemon.authority()
        let issued = try authority.issueVehicleCertificate(vin: Self.vin.description, market: "AE")
        let dir = daemon.stateDirectory
        try issued.write(certificatePath: dir + "/v.pem", privateKeyPath: dir + "/v-key.pem")
        // HELLO, then the TELEMETRY frame of the worked example, byte for byte from the vector file.
        let vector = try VectorFile.bytes(of: "telemetry_one_record")
        try Data(WireClient.hello() + vector).write(to: URL(fileURLWithPath: dir + "/in.bin"))
        let script = """
            (cat in.bin; sleep 3) | openssl s_client -quiet -connect 127.0.0.1:\(daemon.telemetryPort) \
            -cert v.pem -key v-key.pem -CAfile pki/ca.crt -verify_return_error > out.bin 2> s_client.err
            """
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", script]
        shell.currentDirectoryURL = URL(fileURLWithPath: dir)
        try shell.run()
        try await offThePool { shell.waitUntilExit() }
        let out = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/out.bin")))
        // The reply stream: WELCOME (server sequence 1) then ACK 1 (server sequence 2). The vector's
        // record is from 2023, outside the 7-day horizon, so the ACK reports it as rejected.
        var expectedAck: [UInt8] = []
        FrameEncoder.appendAck(Ack(sequence: 1, rejectedRecords: 1), sequence: 2, to: &expectedAck)
        #expect(out.count >= 40 + expectedAck.count, "s_client output: \(out.count) bytes")
        #expect(Array(out[40..<min(out.count, 40 + expectedAck.count)]) == expectedAck)
        #expect(out.prefix(4) == [0x48, 0x47, 0x01, 0x02], "WELCOME first")
        try await daemon.stop()
    }

    @Test func theTLSPolicyMatrixRefusesEveryBadPeer() async throws {
        let daemon = try await started()
        defer { daemon.removeState() }
        let authority = try daemon.authority()
        let caPEM = try authority.caCertificatePEM
        let port = daemon.telemetryPort

        // No client certificate: the handshake fails.
        let anonymous = try await WireClient.connect(port: port, context: try WireClient.context(issued: nil, caPEM: caPEM))
        try await anonymous.send(WireClient.hello())
        #expect(try await anonymous.waitClosed())
        #expect(anonymous.replies.isEmpty)

        // A certificate from another CA: refused in the handshake.
        let foreign = try FleetPKI.createCertificateAuthority(commonName: "someone else")
        let stranger = try await WireClient.connect(port: port, context: try WireClient.context(
            issued: try foreign.issueVehicleCertificate(vin: Self.vin.description, market: "AE"), caPEM: caPEM))
        try? await stranger.send(WireClient.hello())
        #expect(try await stranger.waitClosed())
        #expect(stranger.replies.isEmpty)

        // Expired: refused in the handshake.
        let past = CertificateValidity(notValidBefore: Date(timeIntervalSinceNow: -86_400 * 10),
                                       notValidAfter: Date(timeIntervalSinceNow: -86_400))
        let expired = try await WireClient.connect(port: port, context: try vehicleContext(daemon, validity: past))
        try? await expired.send(WireClient.hello())
        #expect(try await expired.waitClosed())
        #expect(expired.replies.isEmpty)

        // TLS 1.1: refused (TLS 1.2 is the minimum).
        let old = try await WireClient.connect(port: port, context: try WireClient.context(
            issued: try authority.issueVehicleCertificate(vin: Self.vin.description, market: "AE"), caPEM: caPEM,
            minimumTLS: .tlsv1, maximumTLS: .tlsv11))
        try? await old.send(WireClient.hello())
        #expect(try await old.waitClosed())
        #expect(old.replies.isEmpty)

        // A market that is not configured: ERROR UNKNOWN_MARKET after the handshake.
        let foreignMarket = try await WireClient.connect(port: port, context: try vehicleContext(daemon, market: "US"))
        let unknown = try await foreignMarket.waitFor { !$0.isEmpty }
        #expect(unknown == [.error(.unknownMarket)])
        #expect(try await foreignMarket.waitClosed())

        // A frame for another VIN than the certificate's: ERROR VIN_NOT_ALLOWED.
        let vehicle = try await WireClient.connect(port: port, context: try vehicleContext(daemon))
        try await vehicle.send(WireClient.hello())
        try await vehicle.send(WireClient.telemetry(vin: VIN("LGXC16DF4M0123456")!, sequence: 1, startMs: Self.nowMs()))
        let wrongVIN = try await vehicle.waitFor { $0.count >= 2 }
        #expect(wrongVIN.last == .error(.vinNotAllowed))
        #expect(try await vehicle.waitClosed())

        // Revoked (deny list by VIN, reloaded on SIGHUP): ERROR CERTIFICATE_REVOKED.
        let revokedVIN = VIN("LGXC16DF4M0999999")!
        try "vin:\(revokedVIN)\n".write(toFile: daemon.pkiDirectory + "/revoked.txt", atomically: true, encoding: .utf8)
        kill(daemon.pid, SIGHUP)
        try await Task.sleep(for: .milliseconds(500))
        let revoked = try await WireClient.connect(port: port, context: try vehicleContext(daemon, vin: revokedVIN))
        let revokedReplies = try await revoked.waitFor { !$0.isEmpty }
        #expect(revokedReplies == [.error(.certificateRevoked)])

        // The daemon is still serving good clients.
        let good = try await WireClient.connect(port: port, context: try vehicleContext(daemon))
        try await good.send(WireClient.hello() + WireClient.telemetry(vin: Self.vin, sequence: 1, startMs: Self.nowMs()))
        let served = try await good.waitFor { $0.contains { $0.ack != nil } }
        #expect(served.contains(.ack(Ack(sequence: 1))))
        #expect(daemon.log.contains("CERTIFICATE_REVOKED"), "refusals are logged with the reason")
        try await daemon.stop()
    }

    @Test func malformedInputGetsErrorsOrIsClosedAndValidClientsKeepBeingServed() async throws {
        let daemon = try await started()
        defer { daemon.removeState() }
        let context = try vehicleContext(daemon)
        let port = daemon.telemetryPort
        var badCRC = WireClient.telemetry(vin: Self.vin, sequence: 1, startMs: Self.nowMs())
        badCRC[badCRC.count - 1] ^= 0xFF
        var oversize = WireClient.telemetry(vin: Self.vin, sequence: 1, startMs: Self.nowMs())
        oversize.replaceSubrange(8..<12, with: [0x00, 0x00, 0x10, 0x00])  // 1 MiB payload length
        let truncated = Array(WireClient.telemetry(vin: Self.vin, sequence: 1, startMs: Self.nowMs()).prefix(30))
        var random = SimRandom(seed: 99)
        let cases: [(String, [UInt8], ErrorCode?)] = [
            ("bad CRC", badCRC, .badChecksum),
            ("oversize", oversize, .frameTooLarge),
            ("random bytes", (0..<200).map { _ in UInt8(truncatingIfNeeded: random.next()) }, .badMagic),
            ("truncated", truncated, nil),
        ]
        for round in 0..<5 {
            for (name, bytes, expected) in cases {
                let client = try await WireClient.connect(port: port, context: context)
                try await client.send(WireClient.hello() + bytes)
                if let expected {
                    let replies = try await client.waitFor { $0.count >= 2 }
                    #expect(replies.last == .error(expected), "\(name), round \(round)")
                    #expect(try await client.waitClosed(), "\(name) closes")
                } else {
                    await client.close()
                }
            }
        }
        let good = try await WireClient.connect(port: port, context: context)
        try await good.send(WireClient.hello() + WireClient.telemetry(vin: Self.vin, sequence: 1, startMs: Self.nowMs()))
        #expect(try await good.waitFor { $0.contains { $0.ack != nil } }.contains(.ack(Ack(sequence: 1))))
        #expect(try await daemon.stop() == 0)
    }

    @Test func silentStalledAndHalfFrameClientsAreClosedByTimeoutsWhileValidClientsAreServed() async throws {
        let daemon = try await started([
            "HORGOS_LIMITS_HANDSHAKE_TIMEOUT_SECONDS": "1", "HORGOS_LIMITS_IDLE_TIMEOUT_SECONDS": "2",
            "HORGOS_LIMITS_HEARTBEAT_INTERVAL_SECONDS": "1",
        ])
        defer { daemon.removeState() }
        let port = daemon.telemetryPort
        let context = try vehicleContext(daemon)
        // Land one record first so the region's database files are open before the baseline is taken.
        let first = try await WireClient.connect(port: port, context: context)
        try await first.send(WireClient.hello() + WireClient.telemetry(vin: Self.vin, sequence: 1, startMs: Self.nowMs()))
        _ = try await first.waitFor { $0.contains { $0.ack != nil } }
        await first.close()
        // The ACK comes from the journal; the applier opens the day's file within the apply interval.
        let reader = ShardReader(stateDirectory: daemon.stateDirectory, region: Region("AE")!)
        for _ in 0..<100 where (try? reader.track(Self.vin, fromMs: 0, toMs: .max).count) ?? 0 == 0 {
            try await Task.sleep(for: .milliseconds(50))
        }
        try await Task.sleep(for: .milliseconds(300))
        let baseline = daemon.openDescriptors()
        // 150 TCP connections that never speak, 100 that stop inside the TLS handshake.
        var silent: [Int32] = []
        for _ in 0..<150 { silent.append(try RawSocket.connect(port: port)) }
        var stalled: [Int32] = []
        for _ in 0..<100 {
            let fd = try RawSocket.connect(port: port)
            RawSocket.send(fd, [0x16, 0x03, 0x01, 0x00, 0xF0, 0x01])  // the start of a ClientHello, then nothing
            stalled.append(fd)
        }
        // 50 sessions that stop in the middle of a frame.
        var halfFrames: [WireClient] = []
        for _ in 0..<50 {
            let client = try await WireClient.connect(port: port, context: context)
            try await client.send(WireClient.hello() + Array(WireClient.telemetry(
                vin: Self.vin, sequence: 1, startMs: Self.nowMs()).prefix(20)))
            halfFrames.append(client)
        }
        // A valid client is served at once meanwhile.
        let good = try await WireClient.connect(port: port, context: context)
        try await good.send(WireClient.hello() + WireClient.telemetry(
            vin: Self.vin, sequence: 1, startMs: Self.nowMs() + 1000))
        #expect(try await good.waitFor(timeout: .seconds(2)) { $0.contains { $0.ack != nil } }
            .contains(.ack(Ack(sequence: 1))))
        await good.close()
        // After the timeouts every one of them is closed and the descriptors are back to the baseline.
        for client in halfFrames { #expect(try await client.waitClosed(timeout: .seconds(10))) }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(15)
        while daemon.openDescriptors() > baseline + 2 && clock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        #expect(daemon.openDescriptors() <= baseline + 2, "descriptors: \(daemon.openDescriptors()) vs \(baseline)")
        for fd in silent + stalled {
            #expect(RawSocket.isClosedByPeer(fd))
            close(fd)
        }
        #expect(try await daemon.stop() == 0)
    }

    @Test func killNineUnderLoadLosesNothingAckedAndResentRecordsAreNotDuplicated() async throws {
        let daemon = try await started()
        defer { daemon.removeState() }
        let context = try vehicleContext(daemon)
        let start = Self.nowMs() - 3_600_000
        let client = try await WireClient.connect(port: daemon.telemetryPort, context: context)
        try await client.send(WireClient.hello())
        _ = try await client.waitFor { !$0.isEmpty }
        // Stream 400 frames of 10 records, then kill -9 while more are in flight.
        for sequence in UInt32(1)...400 {
            try await client.sendWithinWindow(WireClient.telemetry(
                vin: Self.vin, sequence: sequence, startMs: start + Int64(sequence) * 10_000, records: 10),
                sequence: sequence, window: 64)
        }
        try await daemon.stop(signal: SIGKILL)
        let acked = client.replies.compactMap(\.ack).map(\.sequence).max() ?? 0
        #expect(acked > 0)
        // Restart: the journal replays; every acknowledged record is in the shard within the apply interval.
        try await daemon.start()
        var afterCrash = 0
        for _ in 0..<100 where afterCrash < Int(acked) * 10 {
            afterCrash = try ShardReader(stateDirectory: daemon.stateDirectory, region: Region("AE")!)
                .track(Self.vin, fromMs: start, toMs: start + 401 * 10_000 + 10_000).count
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(afterCrash >= Int(acked) * 10, "acked \(acked) frames, stored \(afterCrash) records")
        // The client resends everything (all 400 frames): duplicates are ignored and acked.
        let again = try await WireClient.connect(port: daemon.telemetryPort, context: context)
        try await again.send(WireClient.hello())
        _ = try await again.waitFor { !$0.isEmpty }
        for sequence in UInt32(1)...400 {
            try await again.sendWithinWindow(WireClient.telemetry(
                vin: Self.vin, sequence: sequence, startMs: start + Int64(sequence) * 10_000, records: 10),
                sequence: sequence, window: 64)
        }
        let final = try await again.waitFor(timeout: .seconds(10)) { $0.contains { $0.ack?.sequence == 400 } }
        #expect(final.contains { $0.ack?.sequence == 400 })
        #expect(try await daemon.stop() == 0)
        let stored = try ShardReader(stateDirectory: daemon.stateDirectory, region: Region("AE")!)
            .track(Self.vin, fromMs: start, toMs: start + 401 * 10_000 + 10_000)
        #expect(stored.count == 4000, "every record exactly once")
        #expect(Set(stored.map(\.timestampMs)).count == 4000)
    }

    /// Vehicle-mode load (one connection per vehicle, one record per frame), the daemon killed with
    /// SIGKILL 20 times at random moments: after the last restart every acknowledged record is stored
    /// exactly once (the journal replayed, nothing twice).
    @Test(.timeLimit(.minutes(10)))
    func killNineTwentyTimesUnderVehicleLoadKeepsEveryAckedRecordExactlyOnce() async throws {
        let daemon = try await started(["HORGOS_STORE_APPLY_INTERVAL_MS": "200"])
        defer { daemon.removeState() }
        let vins = (0..<4).map { VIN("LSVKXLL0000000" + String(format: "%03d", $0))! }
        let contexts = try vins.map { try vehicleContext(daemon, vin: $0) }
        // Run r's frame k is at start + (r * 3,000 + k) s: all 20 runs within the time horizon.
        let start = Self.nowMs() - 20 * 3_600_000
        // Per vehicle: (run, frames acknowledged in it); frames are 1 record, 1 s apart.
        var checkedRuns: [Int: [(Int, Int)]] = [:]
        var kills = 0
        for run in 0..<20 {
            if run > 0 { try await daemon.start() }
            // Clients that got their WELCOME: the kill comes only once every one of them streams (on a loaded
            // machine a fixed delay could kill the daemon before a client's HELLO, which tests nothing).
            let welcomed = SharedCounter()
            let clients = try await withThrowingTaskGroup(of: (Int, UInt32).self) { group in
                for (index, vin) in vins.enumerated() {
                    let context = contexts[index]
                    let port = daemon.telemetryPort
                    group.addTask {
                        let client = try await WireClient.connect(port: port, context: context)
                        try await client.send(WireClient.hello())
                        _ = try await client.waitFor { !$0.isEmpty }
                        welcomed.increment()
                        // Each run streams its own frames (a unit resends after a reconnect; here the
                        // resend is left to the second test above).
                        let first = UInt32(run * 3_000)
                        do {
                            for k in UInt32(1)...2_000 {
                                // Within the ack window, as firmware must; stop once the daemon is gone.
                                while k > 32 && !client.isClosed
                                    && (client.replies.compactMap(\.ack).map(\.sequence).max() ?? 0) < k - 32
                                {
                                    try await Task.sleep(for: .milliseconds(2))
                                }
                                if client.isClosed { break }
                                try await client.send(
                                    WireClient.telemetry(
                                        vin: vin, sequence: k, startMs: start + Int64(first + k) * 1000, records: 1))
                            }
                        } catch {}  // the daemon was killed under it
                        _ = try await client.waitClosed(timeout: .seconds(5))
                        let acked = client.replies.compactMap(\.ack).map(\.sequence).max() ?? 0
                        return (index, acked)
                    }
                }
                #expect(await eventually(seconds: 60) { welcomed.value == vins.count })
                try await Task.sleep(for: .milliseconds(Int.random(in: 300...900)))
                try await daemon.stop(signal: SIGKILL)
                kills += 1
                var results: [(Int, UInt32)] = []
                for try await result in group { results.append(result) }
                return results
            }
            for (index, acked) in clients {
                checkedRuns[index, default: []].append((run, Int(acked)))
            }
        }
        try await daemon.start()
        #expect(try await daemon.stop() == 0)
        #expect(kills == 20)
        let reader = ShardReader(stateDirectory: daemon.stateDirectory, region: Region("AE")!)
        var totalAcked = 0
        for (index, vin) in vins.enumerated() {
            let track = try reader.track(vin, fromMs: 0, toMs: .max)
            let stored = Set(track.map(\.timestampMs))
            #expect(stored.count == track.count, "\(vin): duplicate rows stored")
            for (run, acked) in checkedRuns[index, default: []] where acked > 0 {
                let missing = (1...acked).filter { !stored.contains(start + Int64(run * 3_000 + $0) * 1000) }
                #expect(missing.isEmpty, "\(vin) run \(run): \(missing.count) of \(acked) acked records missing")
                totalAcked += acked
            }
        }
        print("kill -9 test: \(kills) kills, \(totalAcked) acknowledged records verified, 0 duplicates")
        #expect(totalAcked > 100, "acknowledged records over 20 runs: \(totalAcked)")
    }

    @Test func sigtermUnderLoadExitsZeroAndEverythingAckedIsStored() async throws {
        let daemon = try await started()
        defer { daemon.removeState() }
        let credentials = try PKIFleetCredentials(authority: try daemon.authority())
        let runner = FleetRunner(
            plan: FleetPlan(mode: .gateways(2), vehicleCount: 40, regions: [SimulatedRegion.named("AE")!], seed: 8),
            settings: FleetSettings(port: daemon.telemetryPort, reportIntervalMs: 0, recordsPerFrame: 25),
            credentials: credentials, threads: 1)
        async let report = runner.run(duration: .seconds(4), drainTimeout: .seconds(3))
        try await Task.sleep(for: .seconds(2))
        let status = try await daemon.stop(signal: SIGTERM, timeout: .seconds(30))
        #expect(status == 0)
        let result = try await report
        let rows = try storedRows(daemon)["AE", default: 0]
        #expect(result.totals.recordsAcked > 0)
        #expect(rows >= result.totals.recordsAcked, "acked \(result.totals.recordsAcked), stored \(rows)")
        #expect(daemon.log.contains("STOPPING") || daemon.log.lowercased().contains("stopp"))
    }

    @Test func notifySocketSeesReadyAfterThePortAcceptsThenWatchdogThenStopping() async throws {
        let receiver = try NotifyReceiver()
        defer { receiver.close() }
        let daemon = try DaemonProcess(environment: ["NOTIFY_SOCKET": receiver.path, "WATCHDOG_USEC": "400000"])
        defer { daemon.removeState() }
        try await daemon.start()
        var messages = try await receiver.collect(for: .seconds(1.5))
        let readyIndex = messages.firstIndex { $0.split(separator: "\n").contains("READY=1") }
        #expect(readyIndex != nil, "READY=1 in \(messages)")
        // READY=1 came only once the telemetry and GB/T 32960 ports accept connections.
        #expect(try RawSocket.connect(port: daemon.telemetryPort) >= 0)
        #expect(try RawSocket.connect(port: daemon.gbt32960Port) >= 0)
        #expect(messages.filter { $0.contains("WATCHDOG=1") }.count >= 2, "watchdog pings at half of WATCHDOG_USEC")
        #expect(messages.contains { $0.contains("STATUS=") })
        kill(daemon.pid, SIGTERM)
        messages = try await receiver.collect(for: .seconds(1))
        #expect(messages.contains { $0.contains("STOPPING=1") })
        #expect(try await daemon.stop() == 0)
    }

    /// A configured listener that cannot bind is fatal: with the GB/T 32960 port already taken the daemon
    /// never sends READY=1 and exits non-zero, naming the listener (no half-configured daemon).
    @Test func aTakenGBT32960PortStopsTheDaemonBeforeReady() async throws {
        let receiver = try NotifyReceiver()
        defer { receiver.close() }
        let daemon = try DaemonProcess(environment: ["NOTIFY_SOCKET": receiver.path])
        defer { daemon.removeState() }
        let holder = try RawSocket.listen(port: daemon.gbt32960Port)
        defer { close(holder) }
        await #expect(throws: HarnessError.self) { try await daemon.start(timeout: .seconds(60)) }
        let status = try await daemon.stop(timeout: .seconds(30))
        #expect(status != 0, "exit status \(status)")
        // The pipe's reader may hand over the last lines a moment after the exit.
        for _ in 0..<100 where !daemon.log.contains("GB/T 32960 listener NOT bound") {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(daemon.log.contains("GB/T 32960 listener NOT bound"), "\(daemon.log)")
        let messages = try await receiver.collect(for: .milliseconds(300))
        #expect(!messages.contains { $0.split(separator: "\n").contains("READY=1") }, "\(messages)")
    }
}
