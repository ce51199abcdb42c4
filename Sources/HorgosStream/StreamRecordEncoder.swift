import HorgosGBT32960
import HorgosStore
import HorgosStreamFormat
import HorgosWire
import NIOCore
import SwiftProtobuf

/// What the stream says about one journal entry besides its record bytes: the subject's kind token,
/// the VIN and protocol (also NATS headers), and the records left out as outside the time horizon.
public struct StreamEntryFacts: Sendable, Hashable {
    /// `telemetry`, `event`, `gbt32960`, `erase` (`kind<N>` for a kind this version does not know).
    public var kindName: String
    public var vin: String
    /// `horgos`, `gbt32960-2016`, `gbt32960-2025`, `operator`.
    public var protocolName: String
    public var recordsRejected: Int

    public init(kindName: String, vin: String, protocolName: String, recordsRejected: Int) {
        self.kindName = kindName
        self.vin = vin
        self.protocolName = protocolName
        self.recordsRejected = recordsRejected
    }
}

/// Encodes journal entries as `horgos.stream.v1.Record` (Proto/stream/horgos_stream_v1.proto,
/// Proto/STREAM.md). One encoder per publishing thread: it reuses its buffers.
public struct StreamRecordEncoder {
    /// This node's `node.id`.
    public let node: String
    /// The store's time horizon: records outside it at arrival are acknowledged as rejected and never
    /// stored, so they are left out of the samples (and counted in `records_rejected`).
    public let horizon: TimeHorizon
    private var sampleBuffer = ByteBufferAllocator().buffer(capacity: 128)
    private var bodyBuffer = ByteBufferAllocator().buffer(capacity: 4096)
    /// The last encoded record.
    public private(set) var record = ByteBufferAllocator().buffer(capacity: 8192)

    public init(node: String, horizon: TimeHorizon) {
        self.node = node
        self.horizon = horizon
    }

    /// The subject token of a journal entry kind.
    public static func kindName(_ kind: UInt8) -> String {
        switch kind {
        case JournalEntryKind.telemetry.rawValue: "telemetry"
        case JournalEntryKind.event.rawValue: "event"
        case JournalEntryKind.gbt32960.rawValue: "gbt32960"
        case 4: "erase"
        default: "kind\(kind)"
        }
    }

    /// Encodes `entry` into `record` and returns its facts.
    public mutating func encode(_ entry: JournalRecord) -> StreamEntryFacts {
        encode(
            kind: entry.kind, region: entry.region.code, lsn: entry.lsn, arrivalMs: entry.arrivalMs,
            payload: entry.payload)
    }

    /// Encodes one entry given by its parts (tests and tools use this directly).
    public mutating func encode(
        kind: UInt8, region: String, lsn: UInt64, arrivalMs: Int64, payload: UnsafeRawBufferPointer
    ) -> StreamEntryFacts {
        bodyBuffer.clear()
        var facts = StreamEntryFacts(kindName: Self.kindName(kind), vin: "", protocolName: "horgos", recordsRejected: 0)
        var bodyField = 0
        switch kind {
        case JournalEntryKind.telemetry.rawValue:
            facts.vin = Self.vin(payload, at: 8)
            facts.recordsRejected = writeTelemetry(payload, arrivalMs: arrivalMs)
            bodyField = 16
        case JournalEntryKind.event.rawValue:
            facts.vin = Self.vin(payload, at: 8)
            facts.recordsRejected = writeEvent(payload, arrivalMs: arrivalMs)
            bodyField = facts.recordsRejected == 0 ? 17 : 0
        case JournalEntryKind.gbt32960.rawValue:
            if let stored = GBT32960StoredReport(entry: payload) {
                facts.vin = stored.vin.description
                facts.protocolName = stored.edition == .edition2025 ? "gbt32960-2025" : "gbt32960-2016"
                if horizon.contains(stored.timestampMs, nowMs: arrivalMs) {
                    writeGBT32960(stored)
                    bodyField = 18
                } else {
                    facts.recordsRejected = 1
                }
            } else {
                facts.recordsRejected = 1
                facts.protocolName =
                    payload.count > GBT32960Entry.headerSize && payload[GBT32960Entry.headerSize] == 0x24
                    ? "gbt32960-2025" : "gbt32960-2016"
            }
        case 4:
            facts.vin = String(decoding: payload.prefix(17), as: UTF8.self)
            facts.protocolName = "operator"
            ProtobufWriter.string(1, facts.vin, to: &bodyBuffer)
            bodyField = 19
        default:
            break
        }
        record.clear()
        let w = ProtobufWriter.self
        w.uint(1, 1, to: &record)
        w.string(2, node, to: &record)
        w.uint(3, lsn, to: &record)
        w.string(4, region, to: &record)
        w.uint(5, UInt64(kind), to: &record)
        w.uint(6, Self.protocolNumber(facts.protocolName), to: &record)
        w.int(7, arrivalMs, to: &record)
        if !facts.vin.isEmpty { w.string(8, facts.vin, to: &record) }
        if facts.recordsRejected > 0 { w.uint(9, UInt64(facts.recordsRejected), to: &record) }
        w.bytes(10, payload, to: &record)
        if bodyField != 0 { w.message(bodyField, bodyBuffer, to: &record) }
        return facts
    }

    static func protocolNumber(_ name: String) -> UInt64 {
        switch name {
        case "horgos": 1
        case "gbt32960-2016": 2
        case "gbt32960-2025": 3
        case "operator": 4
        default: 0
        }
    }

    static func vin(_ payload: UnsafeRawBufferPointer, at offset: Int) -> String {
        guard payload.count >= offset + 17 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(rebasing: payload[offset..<(offset + 17)]), as: UTF8.self)
    }

    // MARK: Telemetry

    /// `Telemetry { repeated Sample samples = 1 }` into `bodyBuffer`; returns the records left out.
    private mutating func writeTelemetry(_ payload: UnsafeRawBufferPointer, arrivalMs: Int64) -> Int {
        guard payload.count >= WireFormat.telemetryHeaderSize else { return 0 }
        let base = Int64(littleEndian: payload.loadUnaligned(fromByteOffset: 0, as: Int64.self))
        let size = Int(payload[25])
        let count = Int(UInt16(littleEndian: payload.loadUnaligned(fromByteOffset: 26, as: UInt16.self)))
        guard size >= WireFormat.recordSizeV1, payload.count >= WireFormat.telemetryHeaderSize + count * size else {
            return 0
        }
        var rejected = 0
        for index in 0..<count {
            let view = TelemetryRecordView(
                bytes: UnsafeRawBufferPointer(
                    rebasing: payload[(WireFormat.telemetryHeaderSize + index * size)...].prefix(
                        WireFormat.recordSizeV1)),
                baseTimeMs: base)
            let timestamp = view.timestampMs
            guard horizon.contains(timestamp, nowMs: arrivalMs) else {
                rejected += 1
                continue
            }
            sampleBuffer.clear()
            Self.writeSample(view.record, timestampMs: timestamp, to: &sampleBuffer)
            ProtobufWriter.message(1, sampleBuffer, to: &bodyBuffer)
        }
        return rejected
    }

    /// A `Sample` (its fields, not its tag) from Horgos's record: the VSS-named values and units of
    /// Proto/STREAM.md section 3.
    static func writeSample(_ r: TelemetryRecord, timestampMs: Int64, to b: inout ByteBuffer) {
        typealias NA = TelemetryRecord.NotAvailable
        let w = ProtobufWriter.self
        if timestampMs != 0 { w.int(1, timestampMs, to: &b) }
        if r.latitudeE7 != NA.coordinate { w.double(2, Double(r.latitudeE7) / 1e7, to: &b) }
        if r.longitudeE7 != NA.coordinate { w.double(3, Double(r.longitudeE7) / 1e7, to: &b) }
        if r.headingCdeg != NA.u16 { w.double(4, Double(r.headingCdeg) / 100, to: &b) }
        if r.speedDkmh != NA.u16 { w.float(5, Float(Double(r.speedDkmh) / 10), to: &b) }
        if r.odometerHm != NA.u32 { w.double(6, Double(r.odometerHm) / 10, to: &b) }
        if r.packVoltageDv != NA.u16 { w.float(7, Float(Double(r.packVoltageDv) / 10), to: &b) }
        // VSS: positive into the battery; Horgos: positive discharging.
        if r.packCurrentDa != NA.current {
            w.float(8, r.packCurrentDa == 0 ? 0 : Float(-Double(r.packCurrentDa) / 10), to: &b)
        }
        if r.soc != NA.u8 { w.float(9, Float(r.soc), to: &b) }
        if r.maxCellTemp != NA.temperature { w.float(10, Float(r.maxCellTemp), to: &b) }
        if r.minCellTemp != NA.temperature { w.float(11, Float(r.minCellTemp), to: &b) }
        if r.auxBatteryCv != NA.u16 { w.float(12, Float(Double(r.auxBatteryCv) / 100), to: &b) }
        if r.remainingRangeKm != NA.u16 { w.uint(13, UInt64(r.remainingRangeKm) * 1000, to: &b) }
        let status = VehicleStatus(rawValue: r.status)
        if !status.isDisjoint(with: [.charging, .dcFastCharging]) { w.uint(14, 1, to: &b) }
        if status.contains(.pluggedIn) { w.uint(15, 1, to: &b) }
        if let gear = selectedGear(status.gear) { w.sint32(16, gear, to: &b) }
        if r.status != 0 { w.uint(17, UInt64(r.status), to: &b) }
        if r.alarmFlags != 0 { w.uint(18, UInt64(r.alarmFlags), to: &b) }
        if r.maxAlarmLevel != NA.u8 { w.uint(19, UInt64(r.maxAlarmLevel), to: &b) }
    }

    /// Horgos's gear (status bits 4-6) as VSS's `SelectedGear`: P 126, R -1, N 0, D and B 127.
    static func selectedGear(_ gear: UInt8) -> Int32? {
        switch gear {
        case 1: 126
        case 2: -1
        case 3: 0
        case 4, 5: 127
        default: nil
        }
    }

    // MARK: Event

    /// `Event` into `bodyBuffer`; returns 1 (rejected, nothing written) outside the time horizon.
    private mutating func writeEvent(_ payload: UnsafeRawBufferPointer, arrivalMs: Int64) -> Int {
        guard payload.count >= WireFormat.eventHeaderSize else { return 0 }
        let time = Int64(littleEndian: payload.loadUnaligned(fromByteOffset: 0, as: Int64.self))
        guard horizon.contains(time, nowMs: arrivalMs) else { return 1 }
        let level = payload[25]
        let flags = UInt32(littleEndian: payload.loadUnaligned(fromByteOffset: 26, as: UInt32.self))
        let count = Int(UInt16(littleEndian: payload.loadUnaligned(fromByteOffset: 30, as: UInt16.self)))
        let w = ProtobufWriter.self
        w.int(1, time, to: &bodyBuffer)
        if level != TelemetryRecord.NotAvailable.u8 { w.uint(2, UInt64(level), to: &bodyBuffer) }
        if flags != 0 { w.uint(3, UInt64(flags), to: &bodyBuffer) }
        for index in 0..<count {
            let offset = WireFormat.eventHeaderSize + index * WireFormat.dtcSize
            guard offset + WireFormat.dtcSize <= payload.count else { break }
            sampleBuffer.clear()
            let code = UInt32(littleEndian: payload.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            if code != 0 { w.uint(1, UInt64(code), to: &sampleBuffer) }
            if payload[offset + 4] != 0 { w.uint(2, UInt64(payload[offset + 4]), to: &sampleBuffer) }
            if payload[offset + 5] != 0 { w.uint(3, 1, to: &sampleBuffer) }
            w.message(4, sampleBuffer, to: &bodyBuffer)
        }
        return 0
    }

    // MARK: GB/T 32960

    /// `GBT32960Report` into `bodyBuffer`, built with the generated SwiftProtobuf type (a GB/T frame
    /// carries many optional blocks; its rate is a fraction of native telemetry's).
    private mutating func writeGBT32960(_ stored: GBT32960StoredReport) {
        sampleBuffer.clear()
        Self.writeSample(stored.record, timestampMs: stored.timestampMs, to: &sampleBuffer)
        let message = Self.gbt32960Message(stored, sampleBytes: sampleBuffer)
        guard let bytes: [UInt8] = try? message.serializedBytes() else { return }
        bodyBuffer.writeBytes(bytes)
    }

    static func gbt32960Message(_ stored: GBT32960StoredReport, sampleBytes: ByteBuffer)
        -> Horgos_Stream_V1_GBT32960Report
    {
        var m = Horgos_Stream_V1_GBT32960Report()
        let r = stored.report
        m.command = UInt32(stored.command.rawValue)
        m.sample = (try? Horgos_Stream_V1_Sample(serializedBytes: Array(sampleBytes.readableBytesView))) ?? .init()
        if let v = r.vehicle {
            if let x = v.vehicleState { m.vehicleState = UInt32(x) }
            if let x = v.chargingState { m.chargingState = UInt32(x) }
            if let x = v.runningMode { m.runningMode = UInt32(x) }
            if let x = v.dcdcState { m.dcdcState = UInt32(x) }
            m.gear = UInt32(v.gear)
            if let x = v.insulationKohm { m.insulationResistanceKohm = UInt32(x) }
            if let x = v.acceleratorPedal { m.chassisAcceleratorPedalPosition = UInt32(x) }
            if let x = v.brakePedal { m.chassisBrakePedalPosition = UInt32(x) }
        }
        if let motors = r.driveMotors {
            for index in 0..<motors.count {
                let motor = motors[index]
                var e = Horgos_Stream_V1_ElectricMotor()
                e.number = UInt32(motor.number)
                if let x = motor.state { e.state = UInt32(x) }
                if let x = motor.controllerTemperature { e.controllerTemperature = Float(x) }
                if let x = motor.speedRpm { e.speed = x }
                if let x = motor.torqueDnm { e.torque = Float(Double(x) / 10) }
                if let x = motor.temperature { e.temperature = Float(x) }
                if let x = motor.inputVoltageDv { e.controllerInputVoltage = Float(Double(x) / 10) }
                if let x = motor.dcBusCurrentDa { e.controllerDcBusCurrent = Float(Double(x) / 10) }
                m.powertrainElectricMotors.append(e)
            }
        }
        if let x = r.extremes {
            if let v = x.maxCellVoltageMv { m.powertrainTractionBatteryCellVoltageMax = Float(Double(v) / 1000) }
            if let v = x.minCellVoltageMv { m.powertrainTractionBatteryCellVoltageMin = Float(Double(v) / 1000) }
            if let v = x.maxVoltageSubsystem { m.cellVoltageMaxSubsystem = UInt32(v) }
            if let v = x.maxVoltageCell { m.cellVoltageMaxCell = UInt32(v) }
            if let v = x.minVoltageSubsystem { m.cellVoltageMinSubsystem = UInt32(v) }
            if let v = x.minVoltageCell { m.cellVoltageMinCell = UInt32(v) }
            if let v = x.maxTemperatureSubsystem { m.temperatureMaxSubsystem = UInt32(v) }
            if let v = x.maxTemperatureProbe { m.temperatureMaxProbe = UInt32(v) }
            if let v = x.minTemperatureSubsystem { m.temperatureMinSubsystem = UInt32(v) }
            if let v = x.minTemperatureProbe { m.temperatureMinProbe = UInt32(v) }
        }
        if let cells = r.cellVoltages {
            for subsystem in cells {
                var c = Horgos_Stream_V1_CellVoltages()
                c.subsystem = UInt32(subsystem.number)
                c.firstCell = UInt32(subsystem.firstCell)
                c.totalCells = UInt32(subsystem.totalCells)
                c.voltages = (0..<subsystem.frameCellCount).map { index in
                    subsystem.cellVoltageMv(index).map { Float(Double($0) / 1000) } ?? .nan
                }
                m.cellVoltages.append(c)
            }
        }
        if let probes = r.probeTemperatures {
            for subsystem in probes {
                var p = Horgos_Stream_V1_ProbeTemperatures()
                p.subsystem = UInt32(subsystem.number)
                p.temperatures = (0..<subsystem.probeCount).map { index in
                    subsystem.temperature(index).map { Float($0) } ?? .nan
                }
                m.probeTemperatures.append(p)
            }
        }
        if let alarms = r.alarms {
            for source in GBT32960FaultSource.allCases {
                for code in alarms.faults(source) {
                    var f = Horgos_Stream_V1_Fault()
                    f.source = Horgos_Stream_V1_FaultSource(rawValue: Int(source.rawValue)) ?? .unspecified
                    f.code = code
                    m.faults.append(f)
                }
            }
        }
        if let system = r.position?.coordinateSystem { m.coordinateSystem = UInt32(system) }
        return m
    }
}
