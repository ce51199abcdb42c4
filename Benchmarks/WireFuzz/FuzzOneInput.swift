import HorgosWire

/// One libFuzzer input: a byte stream run through everything the parser offers, with the
/// properties that must hold for any input asserted with `precondition` (a failure is a crash).
///
/// Checked: both CRC-32C implementations agree; the fast VIN and record-range checks agree with
/// plainly written rules; `scan` never claims more bytes than it was given and
/// a prefix of a frame asks for exactly the missing bytes; every frame that decodes re-encodes to a
/// frame of the same length that decodes to the same values, every record field read. A frame whose
/// only fault is its CRC is decoded again with the CRC repaired, so that mutations reach the payload
/// checks instead of stopping at BAD_CHECKSUM.
func fuzzOneInput(_ data: UnsafeRawBufferPointer) {
    if CRC32C.isHardwareAvailable {
        precondition(CRC32C.checksum(data, using: .slicingBy8) == CRC32C.checksum(data, using: .hardware))
    }
    // The input's length picks a configuration, so that the limits themselves are exercised.
    let selector = data.count
    let decoder =
        switch selector % 4 {
        case 0: FrameDecoder(maxPayload: 1024, maxRecords: 8)
        case 1: FrameDecoder(maxPayload: 200)
        default: FrameDecoder()
        }
    var offset = 0
    var frames = 0
    while offset < data.count, frames < 64 {
        let rest = UnsafeRawBufferPointer(rebasing: data[offset...])
        let scanned: FrameScan
        do {
            scanned = try decoder.scan(rest)
        } catch {
            precondition(error.code.rawValue >= 0x0101 && error.code.rawValue <= 0x0105, "scan error \(error)")
            return
        }
        guard case .frame(let header) = scanned else {
            checkIncomplete(rest, decoder: decoder)
            return
        }
        precondition(header.frameLength <= rest.count && header.payloadLength <= decoder.maxPayload)
        checkPrefix(rest, header: header, split: selector &* 7 &+ frames, decoder: decoder)
        let frameBytes = UnsafeRawBufferPointer(rebasing: rest[0..<header.frameLength])
        do {
            let frame = try decoder.decode(frameBytes)!
            checkRoundTrip(frame, decoder: decoder)
        } catch .badChecksum(let expected, let actual) {
            precondition(expected != actual)
            var repaired = Array(frameBytes)
            repaired.withUnsafeMutableBytes { raw in
                raw.storeBytes(of: actual.littleEndian, toByteOffset: header.frameLength - 4, as: UInt32.self)
            }
            repaired.withUnsafeBytes { raw in
                do throws(FrameError) {
                    checkRoundTrip(try decoder.decode(raw)!, decoder: decoder)
                } catch {
                    precondition(error.code != .badChecksum, "the repaired CRC still fails")
                }
            }
        } catch {
            preconditionFailure("decode failed after scan accepted the frame: \(error)")
        }
        offset += header.frameLength
        frames += 1
    }
}

/// PROTOCOL.md 4.3's ranges written out plainly, to hold the branch-free `isValid` to them.
func referenceValid(_ r: TelemetryRecordView) -> Bool {
    func ok<T: Comparable>(_ v: T, _ range: ClosedRange<T>, na: T) -> Bool { v == na || range.contains(v) }
    return ok(r.latitudeE7, -900_000_000...900_000_000, na: Int32.max)
        && ok(r.longitudeE7, -1_800_000_000...1_800_000_000, na: Int32.max)
        && ok(r.speedDkmh, 0...5_000, na: 0xFFFF) && ok(r.headingCdeg, 0...35_999, na: 0xFFFF)
        && ok(r.packVoltageDv, 0...15_000, na: 0xFFFF) && ok(r.soc, 0...100, na: 0xFF)
        && ok(r.maxCellTemp, -40...125, na: -128) && ok(r.minCellTemp, -40...125, na: -128)
        && ok(r.maxAlarmLevel, 0...3, na: 0xFF) && ok(r.auxBatteryCv, 0...3_000, na: 0xFFFF)
        && ok(r.remainingRangeKm, 0...2_000, na: 0xFFFF)
}

/// The structure-only view, the fast VIN check and the fast record check against plain rules.
func checkTelemetryChecks(_ frame: FrameView, decoder: FrameDecoder) {
    guard frame.header.type == .telemetry, frame.payload.count >= 25 else { return }
    let vinBytes = UnsafeRawBufferPointer(rebasing: frame.payload[8..<25])
    precondition((VIN(bytes: vinBytes) != nil) == vinBytes.allSatisfy(VIN.isVINCharacter), "VIN check disagrees")
    guard let batch = try? TelemetryBatchView(structureOf: frame.payload, maxRecords: decoder.maxRecords) else {
        return
    }
    var allValid = true
    for index in 0..<batch.count {
        let valid = referenceValid(batch[index])
        precondition(batch[index].isValid == valid, "isValid disagrees with the rules")
        precondition(((try? batch[index].validate(index: index)) != nil) == valid, "validate disagrees")
        allValid = allValid && valid
    }
    precondition(((try? batch.validateRecords()) != nil) == allValid, "validateRecords disagrees")
}

/// Decodes the frame's payload; if valid, re-encodes it and checks the copy decodes to the same values.
func checkRoundTrip(_ frame: FrameView, decoder: FrameDecoder) {
    checkTelemetryChecks(frame, decoder: decoder)
    let message: Message
    do {
        message = try frame.message(maxRecords: decoder.maxRecords)
    } catch {
        precondition(error.code.rawValue >= 0x0102 && error.code.rawValue <= 0x0209, "payload error \(error)")
        return
    }
    precondition(readEveryField(message) >= 0)
    let fields = frame.header.fields + message.fields
    var out: [UInt8] = []
    FrameEncoder.appendMessage(message, sequence: frame.header.sequence, to: &out)
    precondition(out.count == frame.header.frameLength, "re-encoded length differs")
    out.withUnsafeBytes { raw in
        do throws(FrameError) {
            let again = try decoder.decode(raw)!
            let copy = try again.message(maxRecords: decoder.maxRecords)
            precondition(again.header.fields + copy.fields == fields, "re-encoded frame decodes differently")
        } catch {
            preconditionFailure("re-encoded frame does not decode: \(error)")
        }
    }
}

/// Reads every record and DTC field through the views (the hot-path accessors, not `fields`).
func readEveryField(_ message: Message) -> Int {
    var sum = 0
    switch message {
    case .telemetry(let batch):
        for index in 0..<batch.count {
            let r = batch[index]
            sum &+= Int(r.timestampMs) &+ Int(r.latitudeE7) &+ Int(r.longitudeE7) &+ Int(r.odometerHm)
            sum &+= Int(r.speedDkmh) &+ Int(r.headingCdeg) &+ Int(r.packVoltageDv) &+ Int(r.packCurrentDa)
            sum &+= Int(r.soc) &+ Int(r.maxCellTemp) &+ Int(r.minCellTemp) &+ Int(r.maxAlarmLevel)
            sum &+= Int(r.status) &+ Int(r.auxBatteryCv) &+ Int(r.alarmFlags) &+ Int(r.remainingRangeKm)
            precondition(r.bytes.count == WireFormat.recordSizeV1)
        }
    case .event(let event):
        for index in 0..<event.dtcCount { sum &+= Int(event[index].code) }
    default:
        break
    }
    return sum & Int.max
}

/// A stream that ends inside a frame: `decodeComplete` must call it truncated.
func checkIncomplete(_ rest: UnsafeRawBufferPointer, decoder: FrameDecoder) {
    do {
        _ = try decoder.decodeComplete(rest)
        preconditionFailure("decodeComplete accepted an incomplete frame")
    } catch {
        precondition(error.code == .truncatedFrame, "incomplete frame gave \(error)")
    }
}

/// A strict prefix of a whole frame needs exactly the missing bytes once the header is in.
func checkPrefix(_ rest: UnsafeRawBufferPointer, header: FrameHeader, split: Int, decoder: FrameDecoder) {
    let cut = split % header.frameLength
    let prefix = UnsafeRawBufferPointer(rebasing: rest[0..<cut])
    guard case .needMore(let more) = try? decoder.scan(prefix) else {
        preconditionFailure("a prefix of a valid header was not .needMore")
    }
    if cut >= WireFormat.headerSize {
        precondition(more == header.frameLength - cut, "needMore(\(more)) for a \(cut)-byte prefix")
    } else {
        precondition(more == WireFormat.headerSize - cut)
    }
}
