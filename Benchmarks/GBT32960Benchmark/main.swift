// horgos-bench-gbt32960: decode throughput of HorgosGBT32960 on one core (issue 12, acceptance 2).
//
//   swift run -c release horgos-bench-gbt32960 [--mib 64] [--repeat 7] [--edition 2016|2025]
//
// Fills a buffer with typical realtime frames (~300 bytes: every 2016 information type 0x01-0x09,
// 64 cell voltages, 16 probe temperatures; 64 distinct VINs and values), then decodes it frame
// after frame: scan + BCC + body walk + every field of every block read and summed (so nothing is
// optimised away). Each figure is the best of --repeat runs on one thread, beside memcpy of the
// same buffer as the machine's practical limit. `--edition 2025` uses typical 2025 frames instead
// (~460 bytes: types 0x01, 0x02, 0x04-0x08 of that edition and a 256-byte signature).
import HorgosGBT32960
import HorgosWire

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

var mebibytes = 64
var repeats = 7
var edition = 2016
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    guard let value = arguments.popFirst().flatMap(Int.init) else {
        print("usage: horgos-bench-gbt32960 [--mib N] [--repeat N] [--edition 2016|2025]")
        exit(2)
    }
    switch flag {
    case "--mib": mebibytes = value
    case "--repeat": repeats = value
    case "--edition" where value == 2016 || value == 2025: edition = value
    default:
        print("usage: horgos-bench-gbt32960 [--mib N] [--repeat N] [--edition 2016|2025]")
        exit(2)
    }
}

let alphabet = Array("0123456789ABCDEFGHJKLMNPRSTUVWXYZ".utf8)
var templates: [[UInt8]] = []
for t in 0..<64 {
    let vin = VIN(String(decoding: (0..<17).map { alphabet[($0 * 7 + t * 13) % alphabet.count] }, as: UTF8.self))!
    let time = try! GBT32960Time(year: 26, month: 3, day: UInt8(1 + t % 28), hour: 10, minute: UInt8(t % 60), second: 0)
    var frame: [UInt8] = []
    let values: GBT32960RealtimeValues =
        edition == 2025 ? .typical2025(seed: t, time: time) : .typical(seed: t, time: time)
    GBT32960Encoder.appendFrame(edition: values.edition, command: .realtime, vin: GBT32960VINField(vin), to: &frame) {
        values.appendDataUnit(to: &$0)
    }
    templates.append(frame)
}
let frameSize = templates[0].count
let frames = (mebibytes << 20) / frameSize
let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: frames * frameSize, alignment: 4_096)
for index in 0..<frames {
    templates[index % 64].withUnsafeBytes {
        UnsafeMutableRawBufferPointer(rebasing: buffer[(index * frameSize)...]).copyMemory(from: $0)
    }
}
let bytes = UnsafeRawBufferPointer(buffer)
let target = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 4_096)
target.initializeMemory(as: UInt8.self, repeating: 0)

/// Decodes the whole buffer; `readFields` false stops after the body walk (framing + BCC + lengths).
@inline(never)
func decodeAll(_ bytes: UnsafeRawBufferPointer, readFields: Bool) -> (frames: Int, sum: Int) {
    let decoder = GBT32960Decoder()
    var offset = 0, count = 0, sum = 0
    while offset < bytes.count {
        let rest = UnsafeRawBufferPointer(rebasing: bytes[offset...])
        do throws(GBT32960Error) {
            guard let frame = try decoder.decode(rest) else { fatalError("buffer ends inside a frame") }
            guard case .realtime(let report) = try frame.body() else { fatalError("not a realtime frame") }
            sum &+= readFields ? report.checksumOfEveryValue : report.customBlocks &+ Int(report.time.minute)
            count &+= 1
            offset &+= frame.header.frameLength
        } catch {
            fatalError("benchmark frame rejected: \(error)")
        }
    }
    return (count, sum)
}

func seconds(_ body: () -> Void) -> Double {
    let start = ContinuousClock.now
    body()
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
}

func format(_ value: Double) -> String {
    let hundredths = Int((value * 100).rounded())
    let fraction = hundredths % 100
    return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
}

print(
    "horgos-bench-gbt32960: \(frames) \(edition) frames of \(frameSize) bytes (\(mebibytes) MiB),"
        + " best of \(repeats), one thread")
var best = (memcpy: Double.infinity, walk: Double.infinity, full: Double.infinity)
nonisolated(unsafe) var sink = 0
for _ in 0..<repeats {
    best.memcpy = min(best.memcpy, seconds { memcpy(target.baseAddress!, bytes.baseAddress!, bytes.count) })
    best.walk = min(best.walk, seconds { sink &+= decodeAll(bytes, readFields: false).sum })
    best.full = min(best.full, seconds { sink &+= decodeAll(bytes, readFields: true).sum })
}
let check = decodeAll(bytes, readFields: true)
precondition(check.frames == frames)
for (name, time) in [
    ("memcpy", best.memcpy), ("decode: frame + BCC + block walk", best.walk),
    ("decode + every field of every block read", best.full),
] {
    let rate = Double(frames) / time
    let gbps = Double(bytes.count) / time / 1e9
    print("\(name): \(format(rate / 1e6)) M frames/s, \(format(gbps)) GB/s")
}
print("(sum \(sink & 0xFFFF))")
