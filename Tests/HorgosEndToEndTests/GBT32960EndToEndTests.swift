import Foundation
import HorgosGBT32960
import HorgosPKI
import HorgosStore
import HorgosWire
import NIOSSL
import HorgosTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// GB/T 32960 units against the real `horgosd` over mutual TLS (issue 12, acceptance 3).
@Suite(.serialized) struct GBT32960EndToEndTests {
    static let vin = VIN("LZFH25X46RD000171")!
    static let beijing = GBT32960Format.beijingUTCOffsetSeconds

    static func nowSeconds() -> Int64 { Int64(Date().timeIntervalSince1970) }

    /// Collection time `secondsAgo` before now, in Beijing time (the standard's time base).
    static func beijingTime(secondsAgo: Int64) -> GBT32960Time {
        GBT32960Time(epochSeconds: nowSeconds() - secondsAgo, utcOffsetSeconds: beijing)
    }

    func context(_ daemon: DaemonProcess, vin: VIN = Self.vin) throws -> NIOSSLContext {
        let authority = try daemon.authority()
        return try WireClient.context(
            issued: try authority.issueVehicleCertificate(vin: vin.description, market: "AE"),
            caPEM: try authority.caCertificatePEM)
    }

    static func frame(
        _ command: GBT32960Command, vin: VIN = vin, edition: GBT32960Edition = .edition2016,
        _ body: (inout [UInt8]) -> Void = { _ in }
    ) -> [UInt8] {
        var out: [UInt8] = []
        GBT32960Encoder.appendFrame(
            edition: edition, command: command, vin: GBT32960VINField(vin), to: &out, dataUnit: body)
        return out
    }

    static func login(sequence: UInt16) -> [UInt8] {
        frame(.vehicleLogin) {
            GBT32960Encoder.appendVehicleLogin(
                time: beijingTime(secondsAgo: 0), sequence: sequence, iccid: Array("89860012345678901234".utf8),
                subsystemCodes: [Array("1".utf8)], to: &$0)
        }
    }

    static func realtime(_ values: GBT32960RealtimeValues, _ command: GBT32960Command = .realtime) -> [UInt8] {
        frame(command, edition: values.edition) { values.appendDataUnit(to: &$0) }
    }

    /// The answer the standard defines: same edition, command and VIN, flag, no encryption, `data`.
    static func expectedAnswer(
        _ command: GBT32960Command, _ flag: GBT32960ResponseFlag, data: [UInt8],
        edition: GBT32960Edition = .edition2016
    ) -> [UInt8] {
        var out: [UInt8] = []
        GBT32960Encoder.appendFrame(
            edition: edition, command: command, response: flag, vin: GBT32960VINField(vin), to: &out
        ) { $0 += data }
        return out
    }

    /// The six time bytes of an answer's data unit, read as Beijing time; must be within 30 s of now.
    static func serverTime(of answer: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws -> [UInt8] {
        let time = Array(answer[24..<30])
        let parsed = try time.withUnsafeBytes { try GBT32960Time(bytes: $0) }
        let skew = abs(parsed.epochSeconds(utcOffsetSeconds: beijing) - nowSeconds())
        #expect(skew <= 30, "server time \(parsed) is \(skew) s from now", sourceLocation: sourceLocation)
        return time
    }

    @Test func loginRealtimeReissueAfterReconnectHeartbeatTimeCalibrationLogoutAnsweredByteForByte() async throws {
        let daemon = try DaemonProcess()
        try await daemon.start()
        defer { daemon.removeState() }
        let tls = try context(daemon)

        // 1. Login: the answer keeps the login's time and nothing else (GB/T 32960.3-2016 section 6.3.2).
        var unit = try await GBT32960Client.connect(port: daemon.gbt32960Port, context: tls)
        let login = Self.login(sequence: 1)
        let loginAnswer = try #require(try await unit.request(login))
        #expect(loginAnswer == Self.expectedAnswer(.vehicleLogin, .success, data: Array(login[24..<30])))

        // 2. Realtime: answered success with its collection time, once stored.
        var first = GBT32960RealtimeValues.typical(seed: 3, time: Self.beijingTime(secondsAgo: 600))
        first.vehicle?.soc = 64
        let realtimeAnswer = try #require(try await unit.request(Self.realtime(first)))
        #expect(realtimeAnswer == Self.expectedAnswer(.realtime, .success, data: first.time.bytes))
        let firstMs = first.time.epochSeconds(utcOffsetSeconds: Self.beijing) * 1000

        // 3. The unit drops the connection, reconnects and reissues the same data (plus one new sample).
        await unit.close()
        unit = try await GBT32960Client.connect(port: daemon.gbt32960Port, context: tls)
        let relogin = try #require(try await unit.request(Self.login(sequence: 2)))
        #expect(relogin[3] == GBT32960ResponseFlag.success.rawValue)
        let again = try #require(try await unit.request(Self.realtime(first, .reissue)))
        #expect(again == Self.expectedAnswer(.reissue, .success, data: first.time.bytes))
        let second = GBT32960RealtimeValues.typical(
            seed: 4, time: GBT32960Time(epochSeconds: firstMs / 1000 + 10, utcOffsetSeconds: Self.beijing))
        let secondAnswer = try #require(try await unit.request(Self.realtime(second, .reissue)))
        #expect(secondAnswer == Self.expectedAnswer(.reissue, .success, data: second.time.bytes))

        // 4. Heartbeat: an empty data unit, as its request's; time calibration: the server's time.
        let heartbeat = try #require(try await unit.request(Self.frame(.heartbeat)))
        #expect(heartbeat == Self.expectedAnswer(.heartbeat, .success, data: []))
        let calibration = try #require(try await unit.request(Self.frame(.timeCalibration)))
        #expect(calibration == Self.expectedAnswer(.timeCalibration, .success, data: try Self.serverTime(of: calibration)))

        // 5. A frame of another VIN is refused with an error answer; an encrypted one too.
        let otherVIN = VIN("LSVAU2180N2183294")!
        let foreign = Self.frame(.realtime, vin: otherVIN) { first.appendDataUnit(to: &$0) }
        let refused = try #require(try await unit.request(foreign))
        var expectedRefusal: [UInt8] = []
        GBT32960Encoder.appendFrame(
            command: .realtime, response: .error, vin: GBT32960VINField(otherVIN), to: &expectedRefusal
        ) { $0 += first.time.bytes }
        #expect(refused == expectedRefusal)
        var encrypted = Self.realtime(second)
        encrypted[21] = GBT32960Encryption.aes128.rawValue
        encrypted[encrypted.count - 1] ^= GBT32960Encryption.none.rawValue ^ GBT32960Encryption.aes128.rawValue
        let encryptedAnswer = try #require(try await unit.request(encrypted))
        #expect(encryptedAnswer == Self.expectedAnswer(.realtime, .error, data: second.time.bytes))

        // 6. Logout with the serial of this connection's login (2): its time.
        let logoutTime = Self.beijingTime(secondsAgo: 0)
        let logout = Self.frame(.vehicleLogout) { GBT32960Encoder.appendLogout(time: logoutTime, sequence: 2, to: &$0) }
        let logoutAnswer = try #require(try await unit.request(logout))
        #expect(logoutAnswer == Self.expectedAnswer(.vehicleLogout, .success, data: Array(logout[24..<30])))
        await unit.close()

        let metrics = try await daemon.httpGet("/metrics").body
        #expect(metrics.contains("horgos_gbt32960_encrypted_refused_total 1"))
        #expect(try await daemon.stop() == 0)

        // The stored values equal what was sent: one row per collection time (the reissue was a duplicate).
        let reader = ShardReader(stateDirectory: daemon.stateDirectory, region: Region("AE")!)
        let track = try reader.track(Self.vin, fromMs: firstMs - 1, toMs: firstMs + 60_000)
        #expect(track.map(\.timestampMs) == [firstMs, firstMs + 10_000])
        let row = try #require(track.first)
        let sent = try #require(first.vehicle)
        #expect(row.soc == 64 && row.speedDkmh == sent.speed && row.odometerHm == sent.odometer)
        #expect(row.packVoltageDv == sent.voltage && row.packCurrentDa.map(Int32.init) == Int32(sent.current) - 10_000)
        #expect(row.latitudeE7 == Int32(first.position!.latitude) * 10)
        #expect(row.maxCellTemp.map(Int.init) == Int(first.extremes!.maxTemperature) - 40)
        let state = try #require(try reader.vehicle(Self.vin))
        #expect(state.records == 2 && state.duplicates == 1)
        let details = try #require(try reader.gbt32960Details(Self.vin))
        #expect(details.timestampMs == firstMs + 10_000 && details.command == 3)
        #expect(details.insulationKohm == Int(second.vehicle!.insulation))
        #expect(details.cellsReported == second.cellSubsystems![0].cells.count)
        let cells = second.cellSubsystems![0].cells.map(Int.init)
        #expect(details.cellSpreadMv == cells.max()! - cells.min()!)
        #expect(details.motors.count == 1 && details.faults.map(\.code) == [0x1001])
        let health = try reader.batteryHealth(Self.vin, fromMs: firstMs - 1, toMs: firstMs + 60_000)
        #expect(health.count == 2 && health[1].cellSpreadMv == cells.max()! - cells.min()!)
    }

    @Test func a2025UnitsLoginRealtimeReissueHeartbeatAndLogoutAreAnsweredByteForByteAndStored() async throws {
        let daemon = try DaemonProcess()
        try await daemon.start()
        defer { daemon.removeState() }
        let unit = try await GBT32960Client.connect(port: daemon.gbt32960Port, context: try context(daemon))
        let e2025 = GBT32960Edition.edition2025

        // Login in the 2025 form (BMS count, packs per BMS, 24-byte pack codes): answered with its time.
        let login = Self.frame(.vehicleLogin, edition: e2025) {
            GBT32960Encoder.appendVehicleLogin2025(
                time: Self.beijingTime(secondsAgo: 0), sequence: 1, iccid: Array("89860012345678901234".utf8),
                packCodes: [[Array("PACK-A".utf8)], [Array("PACK-B".utf8), Array("PACK-C".utf8)]], to: &$0)
        }
        let loginAnswer = try #require(try await unit.request(login))
        #expect(
            loginAnswer == Self.expectedAnswer(.vehicleLogin, .success, data: Array(login[24..<30]), edition: e2025))

        // Realtime with the 2025 layout and a signature: success with its collection time once stored;
        // its reissue is a duplicate, answered success too.
        var values = GBT32960RealtimeValues.typical2025(seed: 9, time: Self.beijingTime(secondsAgo: 300))
        values.vehicle?.soc = 71
        values.alarms?.flags = 1 << 23 | 1 << 1  // 2025 bit 23 (pack thermal event) beside 2016 bit 1
        values.alarms?.levelled = [[23, 3], [1, 2]]
        let answer = try #require(try await unit.request(Self.realtime(values)))
        #expect(answer == Self.expectedAnswer(.realtime, .success, data: values.time.bytes, edition: e2025))
        let reissue = try #require(try await unit.request(Self.realtime(values, .reissue)))
        #expect(reissue == Self.expectedAnswer(.reissue, .success, data: values.time.bytes, edition: e2025))
        // A GCJ-02 position one second later: stored, but not as a native (WGS-84) coordinate.
        let gcjSeconds = values.time.epochSeconds(utcOffsetSeconds: Self.beijing) + 1
        var gcj = GBT32960RealtimeValues.typical2025(
            seed: 10, time: GBT32960Time(epochSeconds: gcjSeconds, utcOffsetSeconds: Self.beijing))
        gcj.position?.coordinateSystem = 2
        let gcjAnswer = try #require(try await unit.request(Self.realtime(gcj)))
        #expect(gcjAnswer == Self.expectedAnswer(.realtime, .success, data: gcj.time.bytes, edition: e2025))

        // A signature cut short and a 2025-only command: error answers naming the request.
        var cut = Self.realtime(gcj)
        cut.removeSubrange((cut.count - 11)..<(cut.count - 1))
        let length = cut.count - GBT32960Format.overhead
        (cut[22], cut[23]) = (UInt8(length >> 8), UInt8(length & 0xFF))
        cut[cut.count - 1] = cut.withUnsafeBytes {
            GBT32960Decoder.bcc(UnsafeRawBufferPointer(rebasing: $0[2..<($0.count - 1)]))
        }
        let cutAnswer = try #require(try await unit.request(cut))
        #expect(cutAnswer == Self.expectedAnswer(.realtime, .error, data: gcj.time.bytes, edition: e2025))
        let activationTime = Self.beijingTime(secondsAgo: 0).bytes
        let activation = Self.frame(.activation, edition: e2025) { $0 += activationTime }
        let activationAnswer = try #require(try await unit.request(activation))
        #expect(activationAnswer == Self.expectedAnswer(.activation, .error, data: activationTime, edition: e2025))

        // Heartbeat and logout in the 2025 envelope.
        let heartbeat = try #require(try await unit.request(Self.frame(.heartbeat, edition: e2025)))
        #expect(heartbeat == Self.expectedAnswer(.heartbeat, .success, data: [], edition: e2025))
        let logout = Self.frame(.vehicleLogout, edition: e2025) {
            GBT32960Encoder.appendLogout(time: Self.beijingTime(secondsAgo: 0), sequence: 1, to: &$0)
        }
        let logoutAnswer = try #require(try await unit.request(logout))
        #expect(logoutAnswer == Self.expectedAnswer(
            .vehicleLogout, .success, data: Array(logout[24..<30]), edition: e2025))
        await unit.close()
        let metrics = try await daemon.httpGet("/metrics").body
        #expect(metrics.contains("horgos_gbt32960_errors_total{reason=\"bad_signature\"} 1"), "counted by name")
        #expect(metrics.contains("horgos_gbt32960_errors_total{reason=\"unsupported_edition_content\"} 1"))
        #expect(try await daemon.stop() == 0)

        // Stored as a 2016 frame would be, with the 2025 scaling, plus its gbt_2025_samples row.
        let ms = values.time.epochSeconds(utcOffsetSeconds: Self.beijing) * 1000
        let reader = ShardReader(stateDirectory: daemon.stateDirectory, region: Region("AE")!)
        let track = try reader.track(Self.vin, fromMs: ms - 1, toMs: ms + 60_000)
        #expect(track.map(\.timestampMs) == [ms, ms + 1_000])
        let row = try #require(track.first)
        let sent = try #require(values.vehicle)
        #expect(row.soc == 71 && row.speedDkmh == sent.speed && row.odometerHm == sent.odometer)
        #expect(row.packCurrentDa.map(Int32.init) == Int32(sent.current) - 30_000)
        #expect(row.latitudeE7 == Int32(values.position!.latitude) * 10)
        #expect(track[1].latitudeE7 == nil, "a GCJ-02 position is not a native coordinate")
        let probes = values.probeSubsystems![0].temperatures.map { Int($0) - 40 }
        #expect(row.maxCellTemp.map(Int.init) == probes.max() && row.minCellTemp.map(Int.init) == probes.min())
        #expect(row.alarmFlags == 1 << 23 | 1 << 1)
        let state = try #require(try reader.vehicle(Self.vin))
        #expect(state.records == 2 && state.duplicates == 1)
        let details = try #require(try reader.gbt32960Details(Self.vin))
        #expect(details.timestampMs == ms + 1_000)
        #expect(details.motors.map(\.torqueDnm) == [Int(gcj.motors![0].torque) - 200_000])
        #expect(details.cellsReported == 64)
        let day = UTCDay(epochMs: ms).partitionFileName
        let edition2025 = try await Self.query(
            "\(daemon.stateDirectory)/AE/\(day)",
            "SELECT coordinate_system || ',' || latitude_e7 || ',' || signature_algorithm || ',' || signature_bytes"
                + " || ',' || hex(levelled_alarms) FROM gbt_2025_samples ORDER BY ts")
        #expect(edition2025 == [
            "1,\(Int(values.position!.latitude) * 10),2,256,17030102",
            "2,\(Int(gcj.position!.latitude) * 10),2,256,0001",
        ])
    }

    /// The first column of every row of `sql` on the SQLite file at `path`, through the sqlite3 tool.
    static func query(_ path: String, _ sql: String) async throws -> [String] {
        let output = try await runProcess("/usr/bin/sqlite3", ["-readonly", "-cmd", ".timeout 30000", path, sql])
        guard output.status == 0 else { throw HarnessError("sqlite3 failed on \(path): \(output.standardError)") }
        return output.standardOutput.split(separator: "\n").map(String.init)
    }

    /// `limits.handshake_timeout_seconds` covers TLS and the login (this protocol's HELLO), not the session:
    /// a unit that logged in stays connected past it; one that only did TLS is closed.
    @Test func aLoggedInUnitOutlivesTheHandshakeTimeoutAndOneThatNeverLogsInDoesNot() async throws {
        let daemon = try DaemonProcess(environment: ["HORGOS_LIMITS_HANDSHAKE_TIMEOUT_SECONDS": "1"])
        defer { daemon.removeState() }
        try await daemon.start()
        let unit = try await GBT32960Client.connect(port: daemon.gbt32960Port, context: try context(daemon))
        let answer = try #require(try await unit.request(Self.login(sequence: 1)))
        #expect(answer[3] == GBT32960ResponseFlag.success.rawValue)
        let silent = try await GBT32960Client.connect(port: daemon.gbt32960Port, context: try context(daemon))
        try await Task.sleep(for: .seconds(3))
        #expect(!unit.isClosed, "logged in: only the idle timeout applies")
        #expect(silent.isClosed, "no login within the handshake timeout")
        #expect(try await daemon.stop() == 0)
    }

    @Test(arguments: [GBT32960Edition.edition2016, .edition2025])
    func killNineBetweenReceiptAndAnswerNeverLeavesASuccessAnswerForUnstoredData(
        edition: GBT32960Edition
    ) async throws {
        // Frames sit received and unanswered (their journal round not yet durable) when the daemon is killed.
        // Each journal round waits 100 ms for more frames (journal.max_delay_us), so the frames sent in the
        // last 100 ms before the kill are surely unanswered, however fast the daemon is.
        let daemon = try DaemonProcess(
            environment: ["HORGOS_STORE_APPLY_INTERVAL_MS": "400", "HORGOS_JOURNAL_MAX_DELAY_US": "100000"])
        try await daemon.start()
        defer { daemon.removeState() }
        let unit = try await GBT32960Client.connect(port: daemon.gbt32960Port, context: try context(daemon))
        _ = try #require(try await unit.request(Self.login(sequence: 1)))
        let frames = 300
        var times: [[UInt8]: Int64] = [:]
        for index in 0..<frames {
            let time = Self.beijingTime(secondsAgo: 3_600 - Int64(index))
            let values: GBT32960RealtimeValues =
                edition == .edition2025 ? .typical2025(seed: index, time: time) : .typical(seed: index, time: time)
            times[values.time.bytes] = values.time.epochSeconds(utcOffsetSeconds: Self.beijing) * 1000
            try await unit.send(Self.realtime(values))
            if index == frames / 2 { _ = try await unit.waitForAnswers(2, timeout: .seconds(10)) }
        }
        try await daemon.stop(signal: SIGKILL)
        let answers = Array(try await unit.waitForAnswers(frames + 1, timeout: .milliseconds(300)).dropFirst())
        #expect(!answers.isEmpty, "some frames were answered before the kill")
        #expect(answers.count < frames, "the kill came between receipt and answer for some frames")
        #expect(answers.allSatisfy { $0[3] == GBT32960ResponseFlag.success.rawValue })
        // Restart: the journal replays what was answered; then stop cleanly and read the shard.
        try await daemon.start()
        #expect(try await daemon.stop() == 0)
        let stored = Set(
            try ShardReader(stateDirectory: daemon.stateDirectory, region: Region("AE")!)
                .track(Self.vin, fromMs: 0, toMs: Int64.max / 2).map(\.timestampMs))
        for answer in answers {
            let ms = try #require(times[Array(answer[24..<30])])
            #expect(stored.contains(ms), "answered success for \(ms) but it is not stored")
        }
    }
}
