import HorgosGBT32960
import HorgosWire
import Testing

/// Framing, named errors, special values, time conversion and encode/decode agreement.
@Suite struct DecoderTests {
    static let vin = VIN("LZFH25X46RD000171")!
    static let time = try! GBT32960Time(year: 26, month: 3, day: 1, hour: 8, minute: 0, second: 0)

    static func frame(_ command: GBT32960Command = .realtime, edit: (inout [UInt8]) -> Void = { _ in }) -> [UInt8] {
        var bytes = realtimeFrame(typicalReport(seed: 1, time: time), vin: vin, command: command)
        edit(&bytes)
        return bytes
    }

    static func decode(_ bytes: [UInt8]) throws(GBT32960Error) -> GBT32960Command {
        let result = bytes.withUnsafeBytes { raw -> Result<GBT32960Command, GBT32960Error> in
            do throws(GBT32960Error) {
                let frame = try GBT32960Decoder().decodeComplete(raw)
                _ = try frame.body()
                return .success(frame.header.command)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Fixes the BCC after an edit of the body, so the edit (not the BCC) is what is refused.
    static func fixBCC(_ bytes: inout [UInt8]) {
        bytes[bytes.count - 1] = bytes.withUnsafeBytes {
            GBT32960Decoder.bcc(UnsafeRawBufferPointer(rebasing: $0[2..<($0.count - 1)]))
        }
    }

    @Test func aTypicalReportRoundTripsThroughTheViews() throws {
        let values = typicalReport(seed: 7, time: Self.time)
        let bytes = realtimeFrame(values, vin: Self.vin)
        #expect((280...320).contains(bytes.count), "\(bytes.count) bytes")
        try bytes.withUnsafeBytes { raw in
            let frame = try GBT32960Decoder().decodeComplete(raw)
            #expect(frame.header.vinField.vin == Self.vin)
            guard case .realtime(let r) = try frame.body() else { Issue.record("not realtime"); return }
            #expect(r.time == Self.time)
            #expect(r.vehicle?.soc == values.vehicle?.soc && r.vehicle?.odometerHm == values.vehicle?.odometer)
            #expect(r.driveMotors?.count == 1 && r.fuelCell?.probeCount == 4 && r.engine?.state == 2)
            #expect(r.position?.latitudeE7 == 399_165_270)
            #expect(r.alarms?.faults(.energyStorage).first == 0x1001)
            let cells = try #require(r.cellVoltages.flatMap { Array($0).first })
            #expect((0..<cells.frameCellCount).map { cells.cellVoltageMv($0)! } == values.cellSubsystems?[0].cells)
            let probes = try #require(r.probeTemperatures.flatMap { Array($0).first })
            #expect((0..<probes.probeCount).map { probes.temperatureRaw($0) } == values.probeSubsystems?[0].temperatures)
        }
    }

    @Test func everyNamedErrorForItsFault() throws {
        #expect(throws: GBT32960Error.badStart(0x2324)) { try Self.decode(Self.frame { $0[1] = 0x24 }) }
        #expect(throws: GBT32960Error.unknownCommand(0x09)) { try Self.decode(Self.frame { $0[2] = 0x09 }) }
        #expect(throws: GBT32960Error.unknownResponseFlag(0x05)) { try Self.decode(Self.frame { $0[3] = 0x05 }) }
        #expect(throws: GBT32960Error.unknownEncryption(0x07)) { try Self.decode(Self.frame { $0[21] = 0x07 }) }
        #expect(throws: GBT32960Error.badBCC(expected: 0x00, actual: Self.frame().last!)) {
            try Self.decode(Self.frame { $0[$0.count - 1] = 0 })
        }
        let whole = Self.frame()
        #expect(throws: GBT32960Error.truncated(have: 100, need: whole.count)) { try Self.decode(Array(whole[0..<100])) }
        #expect(throws: GBT32960Error.badTime) {
            try Self.decode(Self.frame { $0[25] = 13; Self.fixBCC(&$0) })  // month 13
        }
        #expect(throws: GBT32960Error.badTime) {
            try Self.decode(Self.frame { $0[26] = 30; $0[25] = 2; Self.fixBCC(&$0) })  // 30 February
        }
        #expect(throws: GBT32960Error.unknownInfoType(0x30)) {
            try Self.decode(Self.frame { $0[30] = 0x30; Self.fixBCC(&$0) })  // first block's type: reserved
        }
        #expect(throws: GBT32960Error.unknownInfoType(0x01)) {  // a second 0x01 block
            try Self.decode(Self.frame { bytes in
                let block = Array(bytes[30..<51])
                bytes.insert(contentsOf: block, at: bytes.count - 1)
                let length = Int(bytes[22]) << 8 | Int(bytes[23]) + block.count
                bytes[22] = UInt8(length >> 8)
                bytes[23] = UInt8(length & 0xFF)
                Self.fixBCC(&bytes)
            })
        }
        #expect(throws: GBT32960Error.lengthMismatch(infoType: 0x09, length: 19)) {  // last block one byte short
            try Self.decode(Self.frame { bytes in
                bytes.remove(at: bytes.count - 2)
                let length = (Int(bytes[22]) << 8 | Int(bytes[23])) - 1
                bytes[22] = UInt8(length >> 8)
                bytes[23] = UInt8(length & 0xFF)
                Self.fixBCC(&bytes)
            })
        }
        #expect(throws: GBT32960Error.encryptedDataUnit(0x02)) { try Self.decode(Self.frame { $0[21] = 0x02; Self.fixBCC(&$0) }) }
        var big = Self.frame()
        big[22] = 0xFF
        big[23] = 0xFF
        #expect(throws: GBT32960Error.dataUnitTooLarge(length: 0xFFFF, limit: 65_531)) { try Self.decode(big) }
        let vinField = Self.frame(.vehicleLogin).withUnsafeBytes {
            GBT32960VINField(bytes: UnsafeRawBufferPointer(rebasing: $0[4..<21]))
        }
        #expect(vinField.vin == Self.vin)
        #expect(throws: GBT32960Error.badVIN) { try GBT32960VINField(padding: "12345").requireVIN() }
    }

    @Test func headerBytesAreCheckedAsSoonAsTheyArrive() throws {
        let bytes = Self.frame()
        let decoder = GBT32960Decoder()
        for cut in 0..<bytes.count {
            let scan = try Array(bytes[0..<cut]).withUnsafeBytes { try decoder.scan($0) }
            #expect(scan == .needMore(cut < 24 ? 24 - cut : bytes.count - cut))
        }
        #expect(throws: GBT32960Error.badStart(0x2500)) { try [UInt8]([0x25]).withUnsafeBytes { try decoder.scan($0) } }
        #expect(throws: GBT32960Error.unknownCommand(0)) { try [UInt8]([0x23, 0x23, 0]).withUnsafeBytes { try decoder.scan($0) } }
        let limited = GBT32960Decoder(maxDataLength: 100)
        #expect(throws: GBT32960Error.dataUnitTooLarge(length: bytes.count - 25, limit: 100)) {
            try Array(bytes[0..<24]).withUnsafeBytes { try limited.scan($0) }
        }
    }

    @Test func specialValuesAreNotAvailableNeverNumbers() throws {
        var values = typicalReport(seed: 1, time: Self.time)
        values.vehicle?.speed = 0xFFFE
        values.vehicle?.odometer = 0xFFFF_FFFF
        values.vehicle?.soc = 0xFF
        values.vehicle?.current = 0xFFFF
        values.motors?[0].controllerTemperature = 0xFE
        values.extremes?.maxVoltage = 0xFFFF
        values.extremes?.minTemperature = 0xFE
        values.cellSubsystems?[0].cells[3] = 0xFFFE
        values.probeSubsystems?[0].temperatures[2] = 0xFF
        values.position?.status = 1
        try realtimeFrame(values, vin: Self.vin).withUnsafeBytes { raw in
            guard case .realtime(let r) = try GBT32960Decoder().decodeComplete(raw).body() else { return }
            #expect(r.vehicle?.speedDkmh == nil && r.vehicle?.odometerHm == nil && r.vehicle?.soc == nil)
            #expect(r.vehicle?.totalCurrentDa == nil && r.vehicle?.totalCurrentRaw == 0xFFFF)
            #expect(r.driveMotors?[0].controllerTemperature == nil)
            #expect(r.extremes?.maxCellVoltageMv == nil && r.extremes?.minTemperature == nil)
            #expect(Array(r.cellVoltages!)[0].cellVoltageMv(3) == nil)
            #expect(Array(r.cellVoltages!)[0].cellVoltageMv(2) != nil)
            #expect(Array(r.probeTemperatures!)[0].temperature(2) == nil)
            #expect(r.position?.latitudeE7 == nil)  // no valid fix
        }
    }

    @Test func customBlocksAreSkippedByTheirLengthOrRefused() throws {
        var values = GBT32960RealtimeValues(time: Self.time)
        values.engine = GBT32960RealtimeValues.Engine()
        var bytes: [UInt8] = []
        GBT32960Encoder.appendFrame(command: .realtime, vin: GBT32960VINField(Self.vin), to: &bytes) { out in
            values.appendDataUnit(to: &out)
            out += [0x80, 0x00, 0x03, 1, 2, 3]
        }
        try bytes.withUnsafeBytes { raw in
            guard case .realtime(let r) = try GBT32960Decoder().decodeComplete(raw).body() else { return }
            #expect(r.customBlocks == 1 && r.engine?.state == 2)
        }
        bytes[bytes.count - 5] = 0x09  // custom length 9: past the end of the data unit
        Self.fixBCC(&bytes)
        #expect(throws: GBT32960Error.lengthMismatch(infoType: 0x80, length: 5)) { try Self.decode(bytes) }
    }

    @Test func beijingTimeBecomesUTCAndBack() throws {
        // 2024-05-14 18:18:19 Beijing = 10:18:19 UTC = 1715681899.
        let t = try GBT32960Time(year: 24, month: 5, day: 14, hour: 18, minute: 18, second: 19)
        #expect(t.epochSeconds(utcOffsetSeconds: GBT32960Format.beijingUTCOffsetSeconds) == 1_715_681_899)
        #expect(t.epochSeconds(utcOffsetSeconds: 0) == 1_715_681_899 + 8 * 3600)
        #expect(GBT32960Time(epochSeconds: 1_715_681_899, utcOffsetSeconds: 8 * 3600) == t)
        let leap = try GBT32960Time(year: 24, month: 2, day: 29, hour: 23, minute: 59, second: 59)
        #expect(GBT32960Time(epochSeconds: leap.epochSeconds(utcOffsetSeconds: -3600), utcOffsetSeconds: -3600) == leap)
        #expect(throws: GBT32960Error.badTime) { try GBT32960Time(year: 23, month: 2, day: 29, hour: 0, minute: 0, second: 0) }
    }

    @Test func startOffsetResynchronisesOnTheNextStart() {
        let cases: [([UInt8], Int)] = [
            ([0, 0xFF, 0x23, 0x23, 1], 2), ([0x23, 0x01, 0x24, 0x24], 2), ([1, 2, 3], 3), ([9, 0x23], 1), ([], 0),
        ]
        for (bytes, offset) in cases {
            #expect(bytes.withUnsafeBytes { GBT32960Decoder.startOffset(in: $0) } == offset)
        }
    }

    @Test func theBCCMatchesAPlainXOR() {
        var state: UInt32 = 1
        for length in 0..<300 {
            let bytes = (0..<length).map { _ -> UInt8 in
                state = state &* 1_103_515_245 &+ 12_345
                return UInt8(truncatingIfNeeded: state >> 16)
            }
            #expect(bytes.withUnsafeBytes { GBT32960Decoder.bcc($0) } == bytes.reduce(0, ^))
        }
    }
}
