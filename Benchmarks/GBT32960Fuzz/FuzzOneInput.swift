import HorgosGBT32960

/// One libFuzzer input: a byte stream run through the GB/T 32960 decoder, with the properties
/// that must hold for any input asserted with `precondition` (a failure is a crash).
///
/// Checked: `scan` never claims more bytes than it was given and a prefix of a frame asks for
/// exactly the missing bytes; the fast BCC equals a plain XOR; every error is a named one of the
/// kind its stage may raise; a realtime report that decodes re-encodes (from its raw values) to
/// a data unit that decodes to the same values, every field read. A frame whose only fault is its
/// BCC is decoded again with the BCC repaired, so mutations reach the body checks.
func fuzzOneInput(_ data: UnsafeRawBufferPointer) {
    let decoder = data.count % 3 == 0 ? GBT32960Decoder(maxDataLength: 512) : GBT32960Decoder()
    var offset = 0
    var frames = 0
    while offset < data.count, frames < 64 {
        var rest = UnsafeRawBufferPointer(rebasing: data[offset...])
        let scanned: GBT32960Scan
        do {
            scanned = try decoder.scan(rest)
        } catch {
            precondition(error.breaksFraming, "scan raised \(error)")
            let skip = GBT32960Decoder.startOffset(in: UnsafeRawBufferPointer(rebasing: rest[1...]))
            offset += 1 + skip
            continue
        }
        guard case .frame(let header) = scanned else {
            do {
                _ = try decoder.decodeComplete(rest)
                preconditionFailure("decodeComplete accepted an incomplete frame")
            } catch {
                guard case .truncated = error else { preconditionFailure("incomplete frame gave \(error)") }
            }
            return
        }
        precondition(header.frameLength <= rest.count && header.dataLength <= decoder.maxDataLength)
        rest = UnsafeRawBufferPointer(rebasing: rest[0..<header.frameLength])
        let cut = (data.count &* 7 &+ frames) % header.frameLength
        guard case .needMore(let more)? = try? decoder.scan(UnsafeRawBufferPointer(rebasing: rest[0..<cut])) else {
            preconditionFailure("a prefix of a frame was not .needMore")
        }
        precondition(more == (cut < GBT32960Format.headerSize ? GBT32960Format.headerSize - cut : header.frameLength - cut))
        let plain = rest[2..<(rest.count - 1)].reduce(0, ^)
        precondition(GBT32960Decoder.bcc(UnsafeRawBufferPointer(rebasing: rest[2..<(rest.count - 1)])) == plain)
        do {
            checkBody(try decoder.decode(rest)!)
        } catch {
            guard case .badBCC(_, let actual) = error else { preconditionFailure("decode raised \(error)") }
            var repaired = Array(rest)
            repaired[repaired.count - 1] = actual
            repaired.withUnsafeBytes { raw in
                guard let frame = try? decoder.decode(raw) else { preconditionFailure("repaired BCC still fails") }
                checkBody(frame)
            }
        }
        offset += header.frameLength
        frames += 1
    }
}

/// Decodes the body; a realtime report is read field by field and re-encoded.
func checkBody(_ frame: GBT32960FrameView) {
    let body: GBT32960Body
    do {
        body = try frame.body()
    } catch {
        precondition(!error.breaksFraming, "body raised a framing error \(error)")
        return
    }
    switch body {
    case .realtime(let report), .reissue(let report):
        precondition(report.checksumOfEveryValue != Int.min)  // every value read through the views
        let values = GBT32960RealtimeValues(report)
        var unit: [UInt8] = []
        values.appendDataUnit(to: &unit)
        unit.withUnsafeBytes { raw in
            guard let again = try? GBT32960RealtimeReport(dataUnit: raw, edition: report.edition) else {
                preconditionFailure("re-encoded report does not decode")
            }
            precondition(GBT32960RealtimeValues(again) == values, "re-encoded report decodes differently")
            precondition(again.customBlocks == 0)
        }
        if report.customBlocks == 0 { precondition(unit.count == frame.dataUnit.count, "re-encoded length differs") }
    case .vehicleLogin(let login):
        for index in 0..<login.subsystemCount { precondition(login.subsystemCode(index).count == login.codeLength) }
    default:
        break
    }
}
