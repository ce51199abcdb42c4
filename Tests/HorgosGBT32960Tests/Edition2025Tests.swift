import Foundation
import HorgosGBT32960
import HorgosWire
import Testing

/// The rtm_con vectors of both editions (Tests/HorgosGBT32960Tests/Vectors/rtm_con.txt) decode to
/// the values the file lists, and its negative frames are refused by name.
@Suite struct RtmConVectorTests {
    static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Vectors/rtm_con.txt")

    @Test func everyRtmConVectorDecodesToItsExpectedValues() throws {
        let vectors = try GBTVector.load(Self.url)
        #expect(vectors.count >= 26)
        #expect(vectors.contains { $0.expects["edition"] == "2025" })
        #expect(vectors.contains { $0.expects["edition"] == "2016" })
        for vector in vectors {
            #expect(!vector.expects.isEmpty, "\(vector) has no expectations")
            let decoded = vector.bytes.withUnsafeBytes { raw in Result { () throws(GBT32960Error) in
                try DecodedValues(try GBT32960Decoder().decodeComplete(raw))
            } }
            if let name = vector.expects["error"] {
                #expect(vector.provenance == "negative", "\(vector)")
                switch decoded {
                case .success: Issue.record("\(vector) decoded; expected \(name)")
                case .failure(let error): #expect(error.name == name, "\(vector)")
                }
                continue
            }
            let values = try decoded.get().values
            for (key, expected) in vector.expects {
                #expect(values[key] != nil, "\(vector): expect.\(key) names no decoded value")
                if let actual = values[key] { #expect(actual == expected, "\(vector): \(key)") }
            }
        }
    }
}

/// Horgos's names for the values of a decoded frame, in the units of the vector file's header.
struct DecodedValues {
    var values: [String: String] = [:]

    static func text<T: BinaryInteger>(_ value: T?) -> String { value.map { "\($0)" } ?? "na" }
    static func list<T: BinaryInteger>(_ values: [T?]) -> String { values.map { text($0) }.joined(separator: ",") }
    static func hex(_ bytes: UnsafeRawBufferPointer) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
    static func ascii(_ bytes: UnsafeRawBufferPointer) -> String { String(decoding: bytes, as: UTF8.self) }

    init(_ frame: GBT32960FrameView) throws(GBT32960Error) {
        let header = frame.header
        values["edition"] = header.edition == .edition2025 ? "2025" : "2016"
        values["cmd"] = "\(header.command.rawValue)"
        values["vin"] = header.vinField.description
        switch try frame.body() {
        case .vehicleLogin(let login):
            values["time"] = login.time.description
            values["login.sequence"] = "\(login.sequence)"
            values["login.iccid"] = Self.ascii(login.iccid)
            values["login.bms"] = "\(login.bmsCount)"
            values["login.code_length"] = "\(login.codeLength)"
            values["login.packs"] = (0..<login.bmsCount).map { "\(login.packCount(bms: $0))" }.joined(separator: ",")
            values["login.codes"] = (0..<login.subsystemCount).map { Self.ascii(login.subsystemCode($0)) }
                .joined(separator: ",")
        case .realtime(let report), .reissue(let report): read(report)
        case .vehicleLogout(let logout), .platformLogout(let logout):
            values["time"] = logout.time.description
            values["logout.sequence"] = "\(logout.sequence)"
        case .platformLogin(let login):
            values["time"] = login.time.description
            values["platform.sequence"] = "\(login.sequence)"
            values["platform.username"] = Self.ascii(login.username)
            values["platform.encryption_rule"] = "\(login.encryptionRule)"
        case .heartbeat, .timeCalibration: break
        }
    }

    mutating func read(_ r: GBT32960RealtimeReport) {
        values["time"] = r.time.description
        values["custom_blocks"] = "\(r.customBlocks)"
        if let v = r.vehicle {
            values["vehicle.state"] = Self.text(v.vehicleState)
            values["vehicle.charging"] = Self.text(v.chargingState)
            values["vehicle.mode"] = Self.text(v.runningMode)
            values["vehicle.speed_dkmh"] = Self.text(v.speedDkmh)
            values["vehicle.odometer_hm"] = Self.text(v.odometerHm)
            values["vehicle.voltage_dv"] = Self.text(v.totalVoltageDv)
            values["vehicle.current_da"] = Self.text(v.totalCurrentDa)
            values["vehicle.soc"] = Self.text(v.soc)
            values["vehicle.dcdc"] = Self.text(v.dcdcState)
            values["vehicle.gear"] = String(format: "0x%02x", v.gear)
            values["vehicle.gear_valid"] = v.gearValid ? "yes" : "no"
            values["vehicle.insulation_kohm"] = Self.text(v.insulationKohm)
            values["vehicle.accelerator"] = Self.text(v.acceleratorPedal)
            values["vehicle.brake"] = Self.text(v.brakePedal)
        }
        if let motors = r.driveMotors {
            values["motors"] = "\(motors.count)"
            for index in 0..<motors.count {
                let m = motors[index], k = "motor.\(index)."
                values[k + "number"] = "\(m.number)"
                values[k + "state"] = Self.text(m.state)
                values[k + "controller_temp_c"] = Self.text(m.controllerTemperature)
                values[k + "speed_rpm"] = Self.text(m.speedRpm)
                values[k + "torque_dnm"] = Self.text(m.torqueDnm)
                values[k + "temp_c"] = Self.text(m.temperature)
                values[k + "voltage_dv"] = Self.text(m.inputVoltageDv)
                values[k + "current_da"] = Self.text(m.dcBusCurrentDa)
            }
        }
        if let e = r.engine {
            values["engine.state"] = Self.text(e.state)
            values["engine.crankshaft_rpm"] = Self.text(e.crankshaftRpm)
            values["engine.fuel_rate"] = Self.text(e.fuelRate)
        }
        if let p = r.position {
            values["position.status"] = "\(p.status)"
            values["position.valid_fix"] = p.hasValidFix ? "yes" : "no"
            values["position.coordinate_system"] = Self.text(p.coordinateSystem)
            values["position.latitude_e7"] = Self.text(p.latitudeE7)
            values["position.longitude_e7"] = Self.text(p.longitudeE7)
        }
        if let x = r.extremes {
            values["extremes.max_cell_mv"] = Self.text(x.maxCellVoltageMv)
            values["extremes.min_cell_mv"] = Self.text(x.minCellVoltageMv)
            values["extremes.max_temp_c"] = Self.text(x.maxTemperature)
            values["extremes.min_temp_c"] = Self.text(x.minTemperature)
            values["extremes.max_cell_subsystem"] = Self.text(x.maxVoltageSubsystem)
            values["extremes.min_temp_probe"] = Self.text(x.minTemperatureProbe)
        }
        if let a = r.alarms {
            values["alarms.max_level"] = Self.text(a.maxLevel)
            values["alarms.flags"] = "\(a.generalFlags)"
            for source in GBT32960FaultSource.allCases {
                values["alarms.faults.\(source.rawValue)"] = a.faults(source).map { String(format: "0x%08x", $0) }
                    .joined(separator: ",")
            }
            values["alarms.levelled"] = a.levelledAlarms.map { list in
                list.map { "\($0.alarm):\($0.level)" }.joined(separator: ",")
            } ?? "na"
        }
        if let cells = r.cellVoltages {
            values["cells"] = "\(cells.subsystemCount)"
            for (index, s) in cells.enumerated() {
                let k = "cells.\(index)."
                values[k + "number"] = "\(s.number)"
                values[k + "voltage_dv"] = Self.text(s.voltageDv)
                values[k + "current_da"] = Self.text(s.currentDa)
                values[k + "total"] = "\(s.totalCells)"
                values[k + "first"] = "\(s.firstCell)"
                values[k + "mv"] = Self.list((0..<s.frameCellCount).map { s.cellVoltageMv($0) })
            }
        }
        if let probes = r.probeTemperatures {
            values["probes"] = "\(probes.subsystemCount)"
            for (index, s) in probes.enumerated() {
                values["probes.\(index).number"] = "\(s.number)"
                values["probes.\(index).c"] = Self.list((0..<s.probeCount).map { s.temperature($0) })
            }
        }
        if let signature = r.signature {
            values["signature.algorithm"] = "\(signature.algorithm)"
            values["signature.r_length"] = "\(signature.r.count)"
            values["signature.r_first"] = Self.hex(UnsafeRawBufferPointer(rebasing: signature.r.prefix(4)))
            values["signature.s_length"] = "\(signature.s.count)"
        }
    }
}

/// The 2025 data units Horgos builds and reads: layouts, scaling, the signature's bounds and the
/// named errors of a 2025 frame that cannot be read.
@Suite struct Edition2025Tests {
    static let vin = VIN("LZFH25X46RD000171")!
    static let time = try! GBT32960Time(year: 26, month: 3, day: 1, hour: 8, minute: 0, second: 0)

    static func frame(
        _ values: GBT32960RealtimeValues = .typical2025(seed: 3, time: time), edit: (inout [UInt8]) -> Void = { _ in }
    ) -> [UInt8] {
        var bytes = realtimeFrame(values, vin: vin)
        edit(&bytes)
        return bytes
    }

    /// Sets the length field from the byte count and recomputes the BCC after an edit.
    static func seal(_ bytes: inout [UInt8]) {
        let length = bytes.count - GBT32960Format.overhead
        bytes[22] = UInt8(length >> 8)
        bytes[23] = UInt8(length & 0xFF)
        DecoderTests.fixBCC(&bytes)
    }

    /// The offset of the signature starter of a typical 2025 frame (its r is 256 bytes, s empty).
    static func starterOffset(_ bytes: [UInt8]) -> Int { bytes.count - 1 - (1 + 1 + 2 + 256 + 2) }

    @Test func aTypical2025ReportRoundTripsThroughTheViews() throws {
        let values = GBT32960RealtimeValues.typical2025(seed: 5, time: Self.time)
        let bytes = realtimeFrame(values, vin: Self.vin)
        #expect(bytes[0] == 0x24 && bytes[1] == 0x24)
        #expect(Self.starterOffset(bytes) > 0 && bytes[Self.starterOffset(bytes)] == 0xFF)
        try bytes.withUnsafeBytes { raw in
            let frame = try GBT32960Decoder().decodeComplete(raw)
            guard case .realtime(let r) = try frame.body() else { throw RealtimeExpected() }
            #expect(r.edition == .edition2025)
            #expect(GBT32960RealtimeValues(r) == values)
            #expect(!r.has(.fuelCell) && !r.has(.extremes))
            let v = try #require(r.vehicle)
            #expect(v.totalCurrentDa == Int32(values.vehicle!.current) - 30_000)
            #expect(v.acceleratorPedal == nil && v.brakePedal == nil && v.gearValid)
            let m = try #require(r.driveMotors)[0]
            #expect(m.speedRpm == Int32(values.motors![0].speed) - 32_000)
            #expect(m.torqueDnm == Int64(values.motors![0].torque) - 200_000)
            #expect(m.inputVoltageDv == nil && m.dcBusCurrentDa == nil)
            let e = try #require(r.engine)
            #expect(e.crankshaftRpm == 0 && e.state == nil && e.fuelRate == nil)
            let p = try #require(r.position)
            #expect(p.coordinateSystem == 1 && p.isWGS84 && p.latitudeE7 == 399_165_270)
            let a = try #require(r.alarms)
            #expect(a.faults(.energyStorage).first == 0x1001)
            let levelled = try #require(a.levelledAlarms)
            #expect(levelled.count == 1 && levelled[0].alarm == 0 && levelled[0].level == 1)
            let cells = try #require(r.cellVoltages)
            let s = try #require(Array(cells).first)
            #expect(s.frameCellCount == 64 && s.totalCells == 64 && s.firstCell == 1 && s.currentDa == 0)
            #expect(s.cellVoltageMv(0) == values.cellSubsystems![0].cells[0])
            let probes = try #require(r.probeTemperatures)
            #expect(probes.subsystemCount == 1)
            let signature = try #require(r.signature)
            #expect(signature.algorithm == 2 && signature.r.count == 256 && signature.s.isEmpty)
            #expect(Array(signature.r) == values.signature!.r)
        }
    }

    @Test func a2025LoginWithPacksPerBMSRoundTrips() throws {
        var bytes: [UInt8] = []
        let vinField = GBT32960VINField(Self.vin)
        GBT32960Encoder.appendFrame(edition: .edition2025, command: .vehicleLogin, vin: vinField, to: &bytes) {
            GBT32960Encoder.appendVehicleLogin2025(
                time: Self.time, sequence: 7, iccid: Array("89860924790023166606".utf8),
                packCodes: [[Array("A".utf8)], [Array("B".utf8), Array("C".utf8)]], to: &$0)
        }
        try bytes.withUnsafeBytes { raw in
            guard case .vehicleLogin(let login) = try GBT32960Decoder().decodeComplete(raw).body() else {
                throw RealtimeExpected()
            }
            #expect(login.bmsCount == 2 && login.packCount(bms: 0) == 1 && login.packCount(bms: 1) == 2)
            #expect(login.subsystemCount == 3 && login.codeLength == 24)
            #expect(Array(login.subsystemCode(2)) == Array("C".utf8) + [UInt8](repeating: 0x30, count: 23))
        }
        // The 2016 form (count, code length, codes) under `$$` does not fill the 2025 layout.
        var old: [UInt8] = []
        GBT32960Encoder.appendFrame(edition: .edition2025, command: .vehicleLogin, vin: vinField, to: &old) {
            GBT32960Encoder.appendVehicleLogin(
                time: Self.time, sequence: 7, iccid: [], subsystemCodes: [Array("ABCD".utf8)], to: &$0)
        }
        #expect(throws: GBT32960Error.lengthMismatch(infoType: 0, length: 34)) { try DecoderTests.decode(old) }
    }

    @Test func aBrokenSignatureIsRefusedByName() {
        // The starter left out: the blocks end the unit.
        #expect(throws: GBT32960Error.signatureMissing) {
            try DecoderTests.decode(Self.frame { bytes in
                bytes.removeSubrange(Self.starterOffset(bytes)..<(bytes.count - 1))
                Self.seal(&bytes)
            })
        }
        // The starter replaced by a reserved type byte.
        #expect(throws: GBT32960Error.unknownInfoType(0x0A)) {
            try DecoderTests.decode(Self.frame { bytes in
                bytes[Self.starterOffset(bytes)] = 0x0A
                Self.seal(&bytes)
            })
        }
        // The signature cut short: r shorter than its length says.
        #expect(throws: GBT32960Error.badSignature) {
            try DecoderTests.decode(Self.frame { bytes in
                bytes.removeSubrange((bytes.count - 40)..<(bytes.count - 1))
                Self.seal(&bytes)
            })
        }
        // Only the starter and half of the r length.
        #expect(throws: GBT32960Error.badSignature) {
            try DecoderTests.decode(Self.frame { bytes in
                bytes.removeSubrange((Self.starterOffset(bytes) + 3)..<(bytes.count - 1))
                Self.seal(&bytes)
            })
        }
        // An algorithm outside 1 SM2, 2 RSA, 3 ECC.
        #expect(throws: GBT32960Error.badSignature) {
            try DecoderTests.decode(Self.frame { bytes in
                bytes[Self.starterOffset(bytes) + 1] = 0x07
                Self.seal(&bytes)
            })
        }
        // A byte after s: the unit's length does not match its contents.
        #expect(throws: GBT32960Error.lengthMismatch(infoType: 0xFF, length: 262)) {
            try DecoderTests.decode(Self.frame { bytes in
                bytes.insert(0x00, at: bytes.count - 1)
                Self.seal(&bytes)
            })
        }
        // A block running into the signature (vehicle block one byte short).
        #expect(throws: GBT32960Error.lengthMismatch(infoType: 0x01, length: 17)) {
            var values = GBT32960RealtimeValues(time: Self.time, edition: .edition2025)
            values.vehicle = .init()
            return try DecoderTests.decode(Self.frame(values) { bytes in
                bytes.removeSubrange(48..<(bytes.count - 1))  // header, time, type, 17 of the 18 vehicle bytes
                Self.seal(&bytes)
            })
        }
    }

    @Test func content2025HorgosDoesNotReadIsRefusedByName() {
        // 2025 fuel cell (0x03) and super-capacitor types: no published layout to read them by.
        for type: UInt8 in [0x03, 0x30, 0x31, 0x32] {
            #expect(throws: GBT32960Error.unsupportedEditionContent) {
                try DecoderTests.decode(Self.frame { bytes in
                    bytes.insert(contentsOf: [type, 0x00], at: GBT32960Format.headerSize + 6)
                    Self.seal(&bytes)
                })
            }
        }
        // A 2016 extreme-values type byte means alarms in 2025; a 2016 unit under `$$` fails to read.
        #expect(throws: GBT32960Error.self) {
            try DecoderTests.decode(DecoderTests.frame { $0[0] = 0x24; $0[1] = 0x24 })
        }
        // 2025-only commands are delimited and refused by name; in 2016 they break the framing.
        var activation = Self.frame()
        activation[2] = 0x09
        Self.seal(&activation)
        #expect(throws: GBT32960Error.unsupportedEditionContent) { try DecoderTests.decode(activation) }
        activation[0] = 0x23
        activation[1] = 0x23
        #expect(throws: GBT32960Error.unknownCommand(0x09)) { try DecoderTests.decode(activation) }
        // SM4 (0x05) exists in 2025 only: an encrypted unit there, an unknown flag in 2016.
        var sm4 = Self.frame()
        sm4[21] = 0x05
        Self.seal(&sm4)
        #expect(throws: GBT32960Error.encryptedDataUnit(0x05)) { try DecoderTests.decode(sm4) }
        sm4[0] = 0x23
        sm4[1] = 0x23
        #expect(throws: GBT32960Error.unknownEncryption(0x05)) { try DecoderTests.decode(sm4) }
    }

    struct RealtimeExpected: Error {}
}
