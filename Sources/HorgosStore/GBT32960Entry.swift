import HorgosGBT32960
import HorgosWire

/// The bytes the store keeps for one GB/T 32960 realtime or reissue frame: the time base of the
/// listener that received it, then the whole frame as received (start bytes through BCC).
///
/// ```
///   version u8 (1) | utc_offset_seconds i32 LE | frame (## … BCC)
/// ```
/// Self-contained, so a journal can hold it as an entry of kind 3 and replay it later with the same
/// result (the time base travels with the frame, not with the configuration at replay).
public enum GBT32960Entry {
    /// The format version written in the first byte.
    public static let version: UInt8 = 1
    /// Bytes before the frame.
    public static let headerSize = 5

    /// The entry bytes for `frame` received on a listener whose units send times `utcOffsetSeconds`
    /// east of UTC (28,800 for the standard's Beijing time).
    public static func make(frame: UnsafeRawBufferPointer, utcOffsetSeconds: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(headerSize + frame.count)
        out.append(version)
        withUnsafeBytes(of: Int32(truncatingIfNeeded: utcOffsetSeconds).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: frame)
        return out
    }

    /// A decoded entry: the frame's header, its report and the time base.
    struct Decoded {
        let header: GBT32960FrameHeader
        let vin: VIN
        let report: GBT32960RealtimeReport
        let utcOffsetSeconds: Int

        /// Collection time in ms since the epoch (UTC).
        var timestampMs: Int64 { report.time.epochSeconds(utcOffsetSeconds: utcOffsetSeconds) * 1000 }
    }

    /// Reads an entry; nil unless it holds one whole realtime or reissue frame of a VIN.
    static func decode(_ entry: UnsafeRawBufferPointer) -> Decoded? {
        guard entry.count > headerSize, entry[0] == version else { return nil }
        let offset = Int(Int32(littleEndian: entry.loadUnaligned(fromByteOffset: 1, as: Int32.self)))
        let frameBytes = UnsafeRawBufferPointer(rebasing: entry[headerSize...])
        guard let frame = try? GBT32960Decoder().decodeComplete(frameBytes),
            frame.header.frameLength == frameBytes.count,
            let vin = frame.header.vinField.vin,
            let body = try? frame.body()
        else { return nil }
        switch body {
        case .realtime(let report), .reissue(let report):
            return Decoded(header: frame.header, vin: vin, report: report, utcOffsetSeconds: offset)
        default:
            return nil
        }
    }

    /// The cheap check at submission (lengths only; the writer decodes in full).
    static func hasShape(_ entry: UnsafeRawBufferPointer) -> Bool {
        guard entry.count >= headerSize + GBT32960Format.overhead, entry[0] == version else { return false }
        let length = Int(entry[headerSize + 22]) << 8 | Int(entry[headerSize + 23])
        return entry.count == headerSize + GBT32960Format.overhead + length
    }
}
