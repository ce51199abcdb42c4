import HorgosAllocationCounter
import HorgosWire
import Testing

/// The parse path allocates nothing per frame or per record (issue 2, item 4).
///
/// The counter (Tests/HorgosWireTests/AllocationCounter) replaces malloc and friends inside this
/// test executable and counts calls made by the current thread between start and stop.
@Suite struct AllocationTests {
    /// Counts the allocations `body` makes on this thread.
    static func allocations(_ body: () -> Void) -> Int64 {
        horgos_allocation_counter_start()
        body()
        return horgos_allocation_counter_stop()
    }

    @Test func theCounterSeesADeliberateAllocation() {
        #expect(horgos_allocation_counter_is_interposed() == 1)
        var keep: [[UInt8]] = []
        keep.reserveCapacity(10)
        let count = Self.allocations {
            for index in 0..<10 { keep.append([UInt8](repeating: UInt8(index), count: 100 + index)) }
        }
        #expect(count == 10)
        #expect(keep.count == 10)
        #expect(Self.allocations {} == 0)
    }

    /// A stream of every frame type whose payload decoding needs no String: data and fixed-size frames.
    static func stream(frames: Int, recordsPerBatch: Int) -> [UInt8] {
        var random = RandomFrames(seed: 99)
        var bytes: [UInt8] = []
        let records = (0..<recordsPerBatch).map { _ in random.record() }
        let dtcs = (0..<5).map { DiagnosticTroubleCode(code: UInt32($0), source: .battery, state: 1) }
        for index in 0..<frames {
            let sequence = UInt32(index)
            switch index % 8 {
            case 0:
                FrameEncoder.appendEvent(
                    vin: random.vin(), timeMs: 1, maxAlarmLevel: 1, alarmFlags: 3, dtcs: dtcs,
                    sequence: sequence, to: &bytes)
            case 1: FrameEncoder.appendAck(Ack(sequence: sequence), sequence: sequence, to: &bytes)
            case 2: FrameEncoder.appendPing(7, sequence: sequence, to: &bytes)
            case 3: FrameEncoder.appendBye(Bye(reason: .normal), sequence: sequence, to: &bytes)
            case 4:
                FrameEncoder.appendWelcome(
                    Welcome(
                        serverTimeMs: 1, maxPayload: 9, ackWindow: 4, heartbeatSeconds: 1,
                        idleTimeoutSeconds: 2, maxRecords: 3), sequence: sequence, to: &bytes)
            case 5:
                FrameEncoder.appendHello(
                    Hello(clientKind: .vehicle, clientTimeMs: 1, softwareVersion: "fw 1.2"),
                    sequence: sequence, to: &bytes)
            default:
                FrameEncoder.appendTelemetry(
                    vin: random.vin(), baseTimeMs: 1, records: records,
                    sequence: sequence, to: &bytes)
            }
        }
        return bytes
    }

    /// Decodes every frame, validates it, reads every record field; returns a checksum of the fields.
    static func parseAll(_ bytes: UnsafeRawBufferPointer, decoder: FrameDecoder) -> (
        frames: Int, records: Int, sum: Int
    ) {
        var offset = 0, frames = 0, records = 0, sum = 0
        while offset < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[offset...])
            guard let frame = try? decoder.decode(rest), let message = try? frame.message() else {
                return (-1, -1, -1)
            }
            switch message {
            case .telemetry(let batch):
                for index in 0..<batch.count {
                    let r = batch[index]
                    sum &+= Int(r.timestampMs) &+ Int(r.latitudeE7) &+ Int(r.longitudeE7) &+ Int(r.odometerHm)
                    sum &+= Int(r.speedDkmh) &+ Int(r.headingCdeg) &+ Int(r.packVoltageDv) &+ Int(r.packCurrentDa)
                    sum &+= Int(r.soc) &+ Int(r.maxCellTemp) &+ Int(r.minCellTemp) &+ Int(r.maxAlarmLevel)
                    sum &+= Int(r.status) &+ Int(r.auxBatteryCv) &+ Int(r.alarmFlags) &+ Int(r.remainingRangeKm)
                    records += 1
                }
                sum &+= batch.vin.hashValue & 1
            case .event(let event):
                for index in 0..<event.dtcCount { sum &+= Int(event[index].code) }
            case .hello(let hello): sum &+= hello.softwareVersion.utf8.count
            default: sum &+= 1
            }
            frames += 1
            offset += frame.header.frameLength
        }
        return (frames, records, sum)
    }

    @Test func decodingAndReadingEveryRecordAllocatesNothing() {
        let bytes = Self.stream(frames: 400, recordsPerBatch: 50)
        let decoder = FrameDecoder()
        bytes.withUnsafeBytes { raw in
            let warm = Self.parseAll(raw, decoder: decoder)  // one-time lazy globals (CRC tables, CPUID)
            var result = (frames: 0, records: 0, sum: 0)
            let count = Self.allocations { result = Self.parseAll(raw, decoder: decoder) }
            #expect(result.frames == 400)
            #expect(result.records == 100 * 50)  // frames 6 and 7 of every 8 are TELEMETRY
            #expect(result == warm)
            #expect(count == 0, "\(count) allocations while parsing \(result.frames) frames")
        }
    }

    @Test func theRawSpanPathAllocatesNothingEither() throws {
        let bytes = Self.stream(frames: 80, recordsPerBatch: 10)
        let decoder = FrameDecoder()
        var frames = 0
        func parse() throws {
            var offset = 0
            while offset < bytes.count {
                let span = bytes.span.bytes.extracting(offset..<bytes.count)
                offset += try decoder.withMessage(span) { header, _ in header.frameLength } ?? bytes.count
                frames += 1
            }
        }
        try parse()
        frames = 0
        var failure: (any Error)?
        let count = Self.allocations {
            do { try parse() } catch { failure = error }
        }
        #expect(failure == nil)
        #expect(frames == 80)
        #expect(count == 0)
    }
}
