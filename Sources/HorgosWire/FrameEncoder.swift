/// Writes protocol v1 frames: header, payload, CRC-32C (PROTOCOL.md 2 and 4).
///
/// Appends to a caller-owned byte array so a sender can batch many frames into one write and reuse
/// the array's capacity. Values are written exactly as given; encoding an invalid value (say a
/// latitude out of range) produces a frame a server will reject, which is what tests want.
public enum FrameEncoder {
    /// Appends one frame whose payload is written by `body` (which appends to the same array).
    @inlinable
    public static func appendFrame(
        _ type: FrameType, sequence: UInt32, to out: inout [UInt8], payload body: (inout [UInt8]) -> Void
    ) {
        let start = out.count
        out.appendLE(WireFormat.magic)
        out.append(WireFormat.version)
        out.append(type.rawValue)
        out.appendLE(sequence)
        out.appendLE(UInt32(0))  // length, patched below
        body(&out)
        let length = UInt32(out.count - start - WireFormat.headerSize)
        out.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: length.littleEndian, toByteOffset: start + 8, as: UInt32.self)
        }
        let crc = out.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[start...])) }
        out.appendLE(crc)
    }

    /// Appends a HELLO frame.
    public static func appendHello(_ hello: Hello, sequence: UInt32 = 0, to out: inout [UInt8]) {
        appendFrame(.hello, sequence: sequence, to: &out) { out in
            let text = Array(hello.softwareVersion.utf8)
            out.append(hello.clientKind.rawValue)
            out.append(hello.protocolVersion)
            out.append(hello.protocolMinor)
            out.append(0)
            out.appendLE(hello.clientTimeMs)
            out.append(UInt8(truncatingIfNeeded: text.count))
            out.append(contentsOf: text)
        }
    }

    /// Appends a WELCOME frame.
    public static func appendWelcome(_ welcome: Welcome, sequence: UInt32, to out: inout [UInt8]) {
        appendFrame(.welcome, sequence: sequence, to: &out) { out in
            out.appendLE(welcome.serverTimeMs)
            out.appendLE(welcome.maxPayload)
            out.appendLE(welcome.ackWindow)
            out.appendLE(welcome.heartbeatSeconds)
            out.appendLE(welcome.idleTimeoutSeconds)
            out.appendLE(welcome.maxRecords)
            out.appendLE(UInt32(0))
            if let horizon = welcome.horizon {
                out.appendLE(horizon.pastSeconds)
                out.appendLE(horizon.futureSeconds)
            }
        }
    }

    /// Appends a TELEMETRY frame. `recordSize` above 40 pads each record with zero bytes (a later version).
    public static func appendTelemetry(
        vin: VIN, baseTimeMs: Int64, records: some Collection<TelemetryRecord>,
        recordSize: Int = WireFormat.recordSizeV1,
        sequence: UInt32, to out: inout [UInt8]
    ) {
        appendFrame(.telemetry, sequence: sequence, to: &out) { out in
            out.appendLE(baseTimeMs)
            vin.withUnsafeBytes { out.append(contentsOf: $0) }
            out.append(UInt8(truncatingIfNeeded: recordSize))
            out.appendLE(UInt16(truncatingIfNeeded: records.count))
            for record in records {
                appendRecord(record, to: &out)
                if recordSize > WireFormat.recordSizeV1 {
                    out.append(contentsOf: repeatElement(0, count: recordSize - WireFormat.recordSizeV1))
                }
            }
        }
    }

    /// Appends the 40 bytes of one v1 record (no frame around it).
    @inlinable
    public static func appendRecord(_ r: TelemetryRecord, to out: inout [UInt8]) {
        out.appendLE(r.timeOffsetMs)
        out.appendLE(r.latitudeE7)
        out.appendLE(r.longitudeE7)
        out.appendLE(r.odometerHm)
        out.appendLE(r.speedDkmh)
        out.appendLE(r.headingCdeg)
        out.appendLE(r.packVoltageDv)
        out.appendLE(r.packCurrentDa)
        out.append(r.soc)
        out.append(UInt8(bitPattern: r.maxCellTemp))
        out.append(UInt8(bitPattern: r.minCellTemp))
        out.append(r.maxAlarmLevel)
        out.appendLE(r.status)
        out.appendLE(r.auxBatteryCv)
        out.appendLE(r.alarmFlags)
        out.appendLE(r.remainingRangeKm)
        out.appendLE(UInt16(0))
    }

    /// Appends an EVENT frame.
    public static func appendEvent(
        vin: VIN, timeMs: Int64, maxAlarmLevel: UInt8, alarmFlags: UInt32,
        dtcs: some Collection<DiagnosticTroubleCode>,
        sequence: UInt32, to out: inout [UInt8]
    ) {
        appendFrame(.event, sequence: sequence, to: &out) { out in
            out.appendLE(timeMs)
            vin.withUnsafeBytes { out.append(contentsOf: $0) }
            out.append(maxAlarmLevel)
            out.appendLE(alarmFlags)
            out.appendLE(UInt16(truncatingIfNeeded: dtcs.count))
            for dtc in dtcs {
                out.appendLE(dtc.code)
                out.append(dtc.source.rawValue)
                out.append(dtc.state)
                out.appendLE(UInt16(0))
            }
        }
    }

    /// Appends an ACK frame.
    public static func appendAck(_ ack: Ack, sequence: UInt32, to out: inout [UInt8]) {
        appendFrame(.ack, sequence: sequence, to: &out) { out in
            out.appendLE(ack.sequence)
            out.appendLE(ack.rejectedRecords)
        }
    }

    /// Appends an ERROR frame; the reason is cut to 512 bytes at a character boundary.
    public static func appendError(_ error: ErrorMessage, sequence: UInt32, to out: inout [UInt8]) {
        appendFrame(.error, sequence: sequence, to: &out) { out in
            out.appendLE(error.rawCode)
            out.appendLE(UInt16(0))
            out.appendLE(error.sequence)
            var reason = Substring(error.reason)
            while reason.utf8.count > WireFormat.maxReasonLength { reason = reason.dropLast() }
            out.append(contentsOf: reason.utf8)
        }
    }

    /// Appends a PING (or, with `type: .pong`, a PONG) frame.
    public static func appendPing(
        _ opaque: UInt64, type: FrameType = .ping, sequence: UInt32 = 0,
        to out: inout [UInt8]
    ) {
        precondition(type == .ping || type == .pong, "PING payloads are for PING and PONG only")
        appendFrame(type, sequence: sequence, to: &out) { out in out.appendLE(opaque) }
    }

    /// Appends a BYE frame.
    public static func appendBye(_ bye: Bye, sequence: UInt32 = 0, to out: inout [UInt8]) {
        appendFrame(.bye, sequence: sequence, to: &out) { out in
            out.append(bye.reason.rawValue)
            out.append(contentsOf: [0, 0, 0] as [UInt8])
        }
    }
}

extension Array where Element == UInt8 {
    /// Appends an integer in little-endian byte order.
    @inlinable
    mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}

extension FrameEncoder {
    /// Appends a frame carrying `message` (a decoded one, say, to forward or to check a round trip).
    ///
    /// Views are re-encoded from their decoded values: reserved fields become zero and a TELEMETRY
    /// batch keeps its `record_size`, with the bytes past the 40 of v1 written as zero.
    public static func appendMessage(_ message: Message, sequence: UInt32, to out: inout [UInt8]) {
        switch message {
        case .hello(let hello): appendHello(hello, sequence: sequence, to: &out)
        case .welcome(let welcome): appendWelcome(welcome, sequence: sequence, to: &out)
        case .telemetry(let batch):
            appendTelemetry(
                vin: batch.vin, baseTimeMs: batch.baseTimeMs, records: (0..<batch.count).lazy.map { batch[$0].record },
                recordSize: batch.recordSize, sequence: sequence, to: &out)
        case .event(let event):
            appendEvent(
                vin: event.vin, timeMs: event.timeMs, maxAlarmLevel: event.maxAlarmLevel,
                alarmFlags: event.alarmFlags, dtcs: (0..<event.dtcCount).lazy.map { event[$0] },
                sequence: sequence, to: &out)
        case .ack(let ack): appendAck(ack, sequence: sequence, to: &out)
        case .error(let error): appendError(error, sequence: sequence, to: &out)
        case .ping(let opaque): appendPing(opaque, type: .ping, sequence: sequence, to: &out)
        case .pong(let opaque): appendPing(opaque, type: .pong, sequence: sequence, to: &out)
        case .bye(let bye): appendBye(bye, sequence: sequence, to: &out)
        }
    }
}
