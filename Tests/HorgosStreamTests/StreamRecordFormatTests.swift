import Foundation
import HorgosGBT32960
import HorgosStore
import HorgosStream
import HorgosStreamFormat
import HorgosWire
import NIOCore
import SwiftProtobuf
import Testing

/// The stream record (Proto/stream/horgos_stream_v1.proto, Proto/STREAM.md) as the publisher writes it,
/// decoded with the generated SwiftProtobuf types: every field of every kind, VSS units and signs,
/// "not available" as absent, records outside the time horizon left out, the raw payload kept.
@Suite struct StreamRecordFormatTests {
    static let vin = VIN("LSVAU2180N2183294")!
    static let arrival: Int64 = 1_764_417_600_000
    static let horizon = TimeHorizon()

    static func telemetryPayload(_ records: [TelemetryRecord], base: Int64) -> [UInt8] {
        var frame: [UInt8] = []
        FrameEncoder.appendTelemetry(vin: vin, baseTimeMs: base, records: records, sequence: 1, to: &frame)
        return Array(frame[WireFormat.headerSize..<(frame.count - WireFormat.trailerSize)])
    }

    static func encode(kind: UInt8, payload: [UInt8], lsn: UInt64 = 42) throws -> (
        StreamEntryFacts, Horgos_Stream_V1_Record, ByteBuffer
    ) {
        var encoder = StreamRecordEncoder(node: "node-a", horizon: horizon)
        let facts = payload.withUnsafeBytes {
            encoder.encode(kind: kind, region: "AE", lsn: lsn, arrivalMs: arrival, payload: $0)
        }
        let bytes = encoder.record
        return (facts, try Horgos_Stream_V1_Record(serializedBytes: Array(bytes.readableBytesView)), bytes)
    }

    @Test func aTelemetryRecordCarriesEveryFieldInVSSUnitsAndLeavesOutWhatIsNotAvailable() throws {
        let full = TelemetryRecord(
            timeOffsetMs: 0, latitudeE7: 252_048_493, longitudeE7: -552_707_828, odometerHm: 123_456,
            speedDkmh: 624, headingCdeg: 8_750, packVoltageDv: 3_982, packCurrentDa: 413, soc: 71, maxCellTemp: 34,
            minCellTemp: -29, maxAlarmLevel: 2, status: 0x0001 | 0x0002 | 0x0080 | (4 << 4), auxBatteryCv: 1_380,
            alarmFlags: 1 << 11 | 1 << 30, remainingRangeKm: 312)
        let empty = TelemetryRecord(timeOffsetMs: 1_000)  // every field "not available", status 0
        let outside = TelemetryRecord(timeOffsetMs: 30 * 86_400_000)  // 30 days ahead: outside the horizon
        let base = Self.arrival - 60_000
        let payload = Self.telemetryPayload([full, empty, outside], base: base)
        let (facts, record, _) = try Self.encode(kind: JournalEntryKind.telemetry.rawValue, payload: payload)

        #expect(
            facts
                == StreamEntryFacts(
                    kindName: "telemetry", vin: Self.vin.description, protocolName: "horgos", recordsRejected: 1))
        #expect(record.formatVersion == 1 && record.node == "node-a" && record.lsn == 42 && record.region == "AE")
        #expect(record.kind == .telemetry && record.`protocol` == .horgos && record.arrivalTimeMs == Self.arrival)
        #expect(record.vehicleIdentificationVin == Self.vin.description && record.recordsRejected == 1)
        #expect(Array(record.journalPayload) == payload, "the journal payload byte for byte")
        guard case .telemetry(let telemetry)? = record.body else { Issue.record("no telemetry body"); return }
        #expect(telemetry.samples.count == 2, "the record outside the time horizon is left out")

        let s = telemetry.samples[0]
        #expect(s.timestampMs == base)
        #expect(s.currentLocationLatitude == 25.2048493 && s.currentLocationLongitude == -55.2707828)
        #expect(s.currentLocationHeading == 87.5 && s.traveledDistance == 12_345.6)
        #expect(String(format: "%.1f", s.speed) == "62.4")
        #expect(String(format: "%.1f", s.powertrainTractionBatteryCurrentVoltage) == "398.2")
        #expect(
            String(format: "%.1f", s.powertrainTractionBatteryCurrentCurrent) == "-41.3",
            "VSS: positive into the battery")
        #expect(s.powertrainTractionBatteryStateOfChargeCurrent == 71)
        #expect(s.powertrainTractionBatteryTemperatureMax == 34 && s.powertrainTractionBatteryTemperatureMin == -29)
        #expect(String(format: "%.2f", s.lowVoltageBatteryCurrentVoltage) == "13.80")
        #expect(s.powertrainTractionBatteryRange == 312_000, "metres")
        #expect(
            s.powertrainTractionBatteryChargingIsCharging && s.powertrainTractionBatteryChargingIsChargingCableConnected
        )
        #expect(s.powertrainTransmissionSelectedGear == 127, "D")
        #expect(
            s.status == UInt32(full.status) && s.gbt32960GeneralAlarmFlags == full.alarmFlags
                && s.gbt32960MaxAlarmLevel == 2)

        let n = telemetry.samples[1]
        #expect(n.timestampMs == base + 1_000)
        #expect(!n.hasCurrentLocationLatitude && !n.hasCurrentLocationLongitude && !n.hasCurrentLocationHeading)
        #expect(!n.hasSpeed && !n.hasTraveledDistance && !n.hasPowertrainTractionBatteryCurrentVoltage)
        #expect(!n.hasPowertrainTractionBatteryCurrentCurrent && !n.hasPowertrainTractionBatteryStateOfChargeCurrent)
        #expect(!n.hasPowertrainTractionBatteryTemperatureMax && !n.hasPowertrainTractionBatteryTemperatureMin)
        #expect(!n.hasLowVoltageBatteryCurrentVoltage && !n.hasPowertrainTractionBatteryRange)
        #expect(!n.hasPowertrainTransmissionSelectedGear && !n.hasGbt32960MaxAlarmLevel)
        #expect(n.status == 0 && !n.powertrainTractionBatteryChargingIsCharging)
    }

    @Test(
        arguments: [(UInt8(1), Int32(126)), (2, -1), (3, 0), (4, 127), (5, 127), (0, nil), (6, nil)]
            as [(UInt8, Int32?)])
    func gearsBecomeVSSSelectedGear(gear: UInt8, expected: Int32?) throws {
        let record = TelemetryRecord(status: UInt16(gear) << 4)
        let (_, decoded, _) = try Self.encode(
            kind: JournalEntryKind.telemetry.rawValue, payload: Self.telemetryPayload([record], base: Self.arrival))
        guard case .telemetry(let telemetry)? = decoded.body else { Issue.record("no body"); return }
        let sample = telemetry.samples[0]
        #expect(sample.hasPowertrainTransmissionSelectedGear == (expected != nil))
        if let expected { #expect(sample.powertrainTransmissionSelectedGear == expected) }
    }

    @Test func anEventCarriesItsCodesAndAnEventOutsideTheHorizonIsOnlyCounted() throws {
        var frame: [UInt8] = []
        let dtcs = [
            DiagnosticTroubleCode(code: 0x1001, source: .init(rawValue: 1), state: 1),
            DiagnosticTroubleCode(code: 0x2002, source: .init(rawValue: 4), state: 0),
        ]
        FrameEncoder.appendEvent(
            vin: Self.vin, timeMs: Self.arrival - 5_000, maxAlarmLevel: 3, alarmFlags: 1 << 4, dtcs: dtcs, sequence: 1,
            to: &frame)
        let payload = Array(frame[WireFormat.headerSize..<(frame.count - WireFormat.trailerSize)])
        let (facts, record, _) = try Self.encode(kind: JournalEntryKind.event.rawValue, payload: payload)
        #expect(facts.kindName == "event" && facts.recordsRejected == 0)
        guard case .event(let event)? = record.body else { Issue.record("no event body"); return }
        #expect(event.timestampMs == Self.arrival - 5_000 && event.gbt32960MaxAlarmLevel == 3)
        #expect(event.gbt32960GeneralAlarmFlags == 1 << 4)
        #expect(event.diagnosticTroubleCodes.map(\.code) == [0x1001, 0x2002])
        #expect(event.diagnosticTroubleCodes.map(\.source) == [.tractionBattery, .other])
        #expect(event.diagnosticTroubleCodes.map(\.active) == [true, false])

        frame.removeAll()
        FrameEncoder.appendEvent(
            vin: Self.vin, timeMs: Self.arrival - 30 * 86_400_000, maxAlarmLevel: 1, alarmFlags: 0, dtcs: [],
            sequence: 1, to: &frame)
        let old = Array(frame[WireFormat.headerSize..<(frame.count - WireFormat.trailerSize)])
        let (oldFacts, oldRecord, _) = try Self.encode(kind: JournalEntryKind.event.rawValue, payload: old)
        #expect(oldFacts.recordsRejected == 1 && oldRecord.recordsRejected == 1 && oldRecord.body == nil)
    }

    @Test(arguments: [GBT32960Edition.edition2016, .edition2025])
    func aGBT32960ReportCarriesTheRowTheShardsStoreAndItsBlocks(edition: GBT32960Edition) throws {
        let beijing = GBT32960Format.beijingUTCOffsetSeconds
        let time = GBT32960Time(epochSeconds: Self.arrival / 1000 - 30, utcOffsetSeconds: beijing)
        let values =
            edition == .edition2016
            ? GBT32960RealtimeValues.typical(seed: 3, time: time)
            : GBT32960RealtimeValues.typical2025(seed: 3, time: time)
        var frame: [UInt8] = []
        GBT32960Encoder.appendFrame(edition: edition, command: .realtime, vin: GBT32960VINField(Self.vin), to: &frame) {
            values.appendDataUnit(to: &$0)
        }
        let entry = frame.withUnsafeBytes { GBT32960Entry.make(frame: $0, utcOffsetSeconds: beijing) }
        let (facts, record, _) = try Self.encode(kind: JournalEntryKind.gbt32960.rawValue, payload: entry)
        #expect(facts.protocolName == (edition == .edition2016 ? "gbt32960-2016" : "gbt32960-2025"))
        #expect(record.`protocol` == (edition == .edition2016 ? .gbt329602016 : .gbt329602025))
        #expect(record.vehicleIdentificationVin == Self.vin.description && Array(record.journalPayload) == entry)
        guard case .gbt32960(let report)? = record.body else { Issue.record("no GB/T body"); return }
        #expect(report.command == 2)
        // The sample is the row the shards' telemetry table gets for this frame.
        let stored = try #require(entry.withUnsafeBytes { GBT32960StoredReport(entry: $0) })
        let row = stored.record
        #expect(report.sample.timestampMs == (Self.arrival / 1000 - 30) * 1000)
        #expect(report.sample.speed == Float(Double(row.speedDkmh) / 10))
        #expect(report.sample.traveledDistance == Double(row.odometerHm) / 10)
        #expect(report.sample.powertrainTractionBatteryCurrentCurrent == Float(-Double(row.packCurrentDa) / 10))
        #expect(report.sample.currentLocationLatitude == Double(row.latitudeE7) / 1e7)
        #expect(report.sample.powertrainTractionBatteryStateOfChargeCurrent == Float(row.soc))
        #expect(!report.sample.hasCurrentLocationHeading, "GB/T has no heading")
        let v = try #require(values.vehicle)
        #expect(report.vehicleState == UInt32(v.state) && report.chargingState == UInt32(v.charging))
        #expect(report.insulationResistanceKohm == UInt32(v.insulation) && report.gear == UInt32(v.gear))
        #expect(report.powertrainElectricMotors.count == 1)
        #expect(report.cellVoltages.first?.voltages.count == 64)
        #expect(report.cellVoltages.first?.voltages.first == Float(Double(values.cellSubsystems![0].cells[0]) / 1000))
        #expect(report.probeTemperatures.first?.temperatures.count == 16)
        #expect(report.faults.map(\.code) == [0x1001] && report.faults.first?.source == .tractionBattery)
        if edition == .edition2016 {
            #expect(report.powertrainTractionBatteryCellVoltageMax == 3.998)
            #expect(report.chassisAcceleratorPedalPosition == 0 && report.hasChassisAcceleratorPedalPosition)
        } else {
            #expect(report.coordinateSystem == 1 && !report.hasPowertrainTractionBatteryCellVoltageMax)
        }
    }

    @Test func anEraseNamesTheVINAndTheEnvelopeParserReadsWhatAFollowerNeeds() throws {
        let payload = Array(Self.vin.description.utf8)
        let (facts, record, bytes) = try Self.encode(kind: 4, payload: payload, lsn: 9_000_000_000)
        #expect(
            facts
                == StreamEntryFacts(
                    kindName: "erase", vin: Self.vin.description, protocolName: "operator", recordsRejected: 0))
        #expect(record.kind == .erase && record.`protocol` == .operator)
        guard case .erase(let erase)? = record.body else { Issue.record("no erase body"); return }
        #expect(erase.vehicleIdentificationVin == Self.vin.description)
        let fields = try #require(StreamRecordFields(bytes.readableBytesView))
        #expect(fields.formatVersion == 1 && fields.node == "node-a" && fields.lsn == 9_000_000_000)
        #expect(fields.region == "AE" && fields.kind == 4 && fields.arrivalTimeMs == Self.arrival)
        #expect(fields.vin == Self.vin.description && fields.journalPayload == payload)
        #expect(
            StreamRecordFields(ByteBuffer(bytes: [0x0A, 0x05, 0x01]).readableBytesView) == nil, "a truncated field")
    }
}
