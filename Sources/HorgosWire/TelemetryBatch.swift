/// A TELEMETRY payload read in place: one vehicle's VIN, base time and fixed-size records.
///
/// Construction validates the whole payload (lengths, counts, VIN, every record's field ranges) so
/// that a view that exists is a batch the server may store. Records are read at fixed offsets when
/// asked; nothing is copied or allocated.
public struct TelemetryBatchView {
    public let payload: UnsafeRawBufferPointer
    public let baseTimeMs: Int64
    public let vin: VIN
    /// Bytes per record on the wire (40 in v1; more from a later version, the rest is skipped).
    public let recordSize: Int
    public let count: Int

    /// Validates `payload` as a TELEMETRY payload (PROTOCOL.md 4.3), every record's fields included.
    @inlinable
    public init(payload: UnsafeRawBufferPointer, maxRecords: Int = WireFormat.defaultMaxRecords)
        throws(FrameError)
    {
        try self.init(structureOf: payload, maxRecords: maxRecords)
        try validateRecords()
    }

    /// Validates the payload's structure (lengths, counts, VIN, base time) but not the record fields.
    ///
    /// For a caller that reads the records anyway and wants one pass over them: it must call
    /// `validateRecords()` (or `TelemetryRecordView.validate`) before treating the batch as storable.
    @inlinable
    public init(structureOf payload: UnsafeRawBufferPointer, maxRecords: Int = WireFormat.defaultMaxRecords)
        throws(FrameError)
    {
        guard payload.count >= WireFormat.telemetryHeaderSize else {
            throw .badPayloadLength(.telemetry, length: payload.count)
        }
        let recordSize = Int(payload.u8(25))
        let count = Int(payload.u16(26))
        if recordSize < WireFormat.recordSizeV1 { throw .recordSizeTooSmall(recordSize) }
        if count == 0 { throw .emptyBatch }
        if count > maxRecords { throw .tooManyRecords(count: count, limit: maxRecords) }
        if payload.count != WireFormat.telemetryHeaderSize + count * recordSize {
            throw .recordCountMismatch(count: count, payloadLength: payload.count)
        }
        guard let vin = VIN(bytes: UnsafeRawBufferPointer(rebasing: payload[8..<25])) else { throw .invalidVIN }
        let base = payload.i64(0)
        if base <= 0 { throw .invalidFieldValue(field: "base_time_ms", record: -1) }
        self.payload = payload
        self.baseTimeMs = base
        self.vin = vin
        self.recordSize = recordSize
        self.count = count
    }

    /// Checks every record's defined fields against their valid ranges; throws for the first bad one.
    @inlinable
    public func validateRecords() throws(FrameError) {
        var offset = WireFormat.telemetryHeaderSize
        for index in 0..<count {
            let record = TelemetryRecordView(
                bytes: UnsafeRawBufferPointer(
                    start: payload.baseAddress.unsafelyUnwrapped + offset,
                    count: WireFormat.recordSizeV1),
                baseTimeMs: baseTimeMs)
            if !record.isValid { try record.validateFieldByField(index: index) }
            offset &+= recordSize
        }
    }

    /// The record at `index` (0-based, < count).
    @inlinable
    public subscript(index: Int) -> TelemetryRecordView {
        precondition(index >= 0 && index < count, "record index out of range")
        // count * recordSize <= payload.count was checked at construction: no overflow possible.
        let start = WireFormat.telemetryHeaderSize &+ index &* recordSize
        return TelemetryRecordView(
            bytes: UnsafeRawBufferPointer(
                start: payload.baseAddress.unsafelyUnwrapped + start,
                count: WireFormat.recordSizeV1),
            baseTimeMs: baseTimeMs)
    }

    /// The 17 VIN bytes inside the payload (for binding without a copy).
    @inlinable
    public var vinBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: payload[8..<25]) }
}

/// An EVENT payload read in place: DTCs and the alarm state of one vehicle (PROTOCOL.md 4.4).
public struct EventView {
    public let payload: UnsafeRawBufferPointer
    public let timeMs: Int64
    public let vin: VIN
    public let maxAlarmLevel: UInt8
    public let alarmFlags: UInt32
    public let dtcCount: Int

    @inlinable
    public init(payload: UnsafeRawBufferPointer) throws(FrameError) {
        guard payload.count >= WireFormat.eventHeaderSize else {
            throw .badPayloadLength(.event, length: payload.count)
        }
        let count = Int(payload.u16(30))
        if count > WireFormat.maxDTCs { throw .tooManyDTCs(count) }
        if payload.count != WireFormat.eventHeaderSize + count * WireFormat.dtcSize {
            throw .recordCountMismatch(count: count, payloadLength: payload.count)
        }
        guard let vin = VIN(bytes: UnsafeRawBufferPointer(rebasing: payload[8..<25])) else { throw .invalidVIN }
        let time = payload.i64(0)
        if time <= 0 { throw .invalidFieldValue(field: "time_ms", record: -1) }
        let level = payload.u8(25)
        if level != 0xFF && level > 3 { throw .invalidFieldValue(field: "max_alarm_level", record: -1) }
        self.payload = payload
        self.timeMs = time
        self.vin = vin
        self.maxAlarmLevel = level
        self.alarmFlags = payload.u32(26)
        self.dtcCount = count
        for index in 0..<count {
            let dtc = self[index]
            if !(1...4).contains(dtc.source.rawValue) { throw .invalidFieldValue(field: "dtc.source", record: index) }
            if dtc.state > 1 { throw .invalidFieldValue(field: "dtc.state", record: index) }
        }
    }

    /// The DTC at `index` (< dtcCount).
    @inlinable
    public subscript(index: Int) -> DiagnosticTroubleCode {
        precondition(index >= 0 && index < dtcCount, "DTC index out of range")
        let offset = WireFormat.eventHeaderSize + index * WireFormat.dtcSize
        return DiagnosticTroubleCode(
            code: payload.u32(offset), source: DiagnosticTroubleCode.Source(rawValue: payload.u8(offset + 4)),
            state: payload.u8(offset + 5))
    }
}

/// One diagnostic trouble code of an EVENT.
public struct DiagnosticTroubleCode: Sendable, Hashable {
    /// Which of GB/T 32960's four fault lists the code belongs to.
    public struct Source: RawRepresentable, Sendable, Hashable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let battery = Source(rawValue: 1)
        public static let driveMotor = Source(rawValue: 2)
        public static let engine = Source(rawValue: 3)
        public static let other = Source(rawValue: 4)
    }

    public var code: UInt32
    public var source: Source
    /// 0 cleared, 1 active.
    public var state: UInt8

    public init(code: UInt32, source: Source, state: UInt8) {
        self.code = code
        self.source = source
        self.state = state
    }
}
