// horgos-bench-floor: the CPU floor of the ingest pipeline, per record (issue 7, item 2).
//
//   swift build -c release --scratch-path .build-release --product horgos-bench-floor
//   .build-release/release/horgos-bench-floor [--records N] [--repeat N] [--json]
//
// The daemon's work for one TELEMETRY record has three unavoidable stages. Each one is measured here
// alone, on the same frames, single-threaded, in CPU time (CLOCK_PROCESS_CPUTIME_ID: user + system,
// so SQLite's write and fsync system calls count, waiting for the disk does not):
//
//   (a) TLS record decryption: the frame stream cut into TLS 1.3 records of 16 KiB of plaintext,
//       sealed beforehand, then opened with AES-128-GCM through the BoringSSL that NIO-SSL links
//       (CNIOBoringSSL, EVP_AEAD_CTX_open; nonce = IV xor sequence number, the 5-byte record header
//       as additional data, the inner content type byte included, as TLS 1.3 does it).
//       For 1-record frames a second row opens one TLS record per frame: that is what a vehicle
//       sending one frame a second costs, and why scenario B cannot reach the 16 KiB floor.
//   (b) frame parse + CRC-32C with HorgosWire: FrameDecoder.decode, TelemetryBatchView, every field
//       of every record read (and, in a second row, validated).
//   (c) the store's bare append loop: a duplicate of Benchmarks/StoreBenchmark's `bareAppend` (that
//       one lives in an executable target and cannot be called): the same `telemetry` columns, the same
//       pragmas (WAL, synchronous FULL for durability=disk, NORMAL for durability=process,
//       cache_size=-8192), one prepared INSERT bound per record, a commit every 20,000 rows.
//
// The floor for a frame shape is (a, 16 KiB records) + (b, parse + CRC) + (c, disk); the process
// floor swaps in (c, process). The load run (Benchmarks/loadrun.sh) divides the daemon's CPU per
// record by it. Each figure is the best of --repeat rounds (the machine is shared); a round runs
// every stage once.
import CNIOBoringSSL
import CSQLite
import Foundation
import HorgosBenchSupport
import HorgosWire

#if canImport(Glibc)
import Glibc
#endif

// MARK: Options

struct Options {
    var records = 500_000
    var repeats = 3
    var shapes = [50, 1]
    var json = false
    var vehicles = 10_000

    init(_ arguments: [String]) {
        var index = 1
        func usage() -> Never {
            print("usage: horgos-bench-floor [--records N] [--repeat N] [--records-per-frame N] [--vehicles N] [--json]")
            exit(2)
        }
        while index < arguments.count {
            let flag = arguments[index]
            if flag == "--json" { json = true; index += 1; continue }
            if flag == "--help" || flag == "-h" { usage() }
            guard index + 1 < arguments.count, let value = Int(arguments[index + 1]), value > 0 else { usage() }
            switch flag {
            case "--records": records = value
            case "--repeat": repeats = value
            case "--records-per-frame": shapes = [value]
            case "--vehicles": vehicles = value
            default: usage()
            }
            index += 2
        }
    }
}

// MARK: Clocks

/// CPU time of the whole process (all threads, user + system) in nanoseconds.
func processCPUNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Runs `body` and returns its CPU time in nanoseconds.
@inline(never)
func cpuTime(_ body: () -> Void) -> UInt64 {
    let start = processCPUNs()
    body()
    return processCPUNs() - start
}

// MARK: The data: typical gateway frames

/// `records` records in frames of `recordsPerFrame` records, one vehicle per frame, `vehicles` vehicles
/// taking turns; values drift like a driving car's. The frames sit back to back in one buffer, as
/// they arrive on a connection.
struct FrameStream {
    let recordsPerFrame: Int
    let frameCount: Int
    let records: Int
    let frameSize: Int
    let bytes: [UInt8]
    /// Vehicle id (1-based) of each frame, for the store stage.
    let vehicleOfFrame: [Int32]

    init(records: Int, recordsPerFrame: Int, vehicles: Int) {
        let alphabet = Array("0123456789ABCDEFGHJKLMNPRSTUVWXYZ".utf8)
        var state: UInt32 = 12_345
        func next(_ range: Int) -> Int {
            state = state &* 1_103_515_245 &+ 12_345
            return Int(state >> 8) % range
        }
        let vins: [VIN] = (0..<vehicles).map { v in
            var n = v
            var text = Array("LFB".utf8)  // a real WMI prefix; the rest varies per vehicle
            for _ in 0..<14 {
                text.append(alphabet[n % alphabet.count])
                n /= alphabet.count
            }
            return VIN(String(decoding: text, as: UTF8.self))!
        }
        let frameCount = (records + recordsPerFrame - 1) / recordsPerFrame
        var out: [UInt8] = []
        out.reserveCapacity(frameCount * (WireFormat.headerSize + WireFormat.trailerSize + 28 + 40 * recordsPerFrame))
        var owners: [Int32] = []
        owners.reserveCapacity(frameCount)
        var produced = 0
        for f in 0..<frameCount {
            let vehicle = f % vehicles
            let count = min(recordsPerFrame, records - produced)
            let batch = (0..<count).map { i in
                TelemetryRecord(
                    timeOffsetMs: UInt32(i * 1_000), latitudeE7: Int32(251_000_000 + next(100_000)),
                    longitudeE7: Int32(552_000_000 + next(100_000)), odometerHm: UInt32(1_234_567 + f + i),
                    speedDkmh: UInt16(next(1_300)), headingCdeg: UInt16(next(36_000)),
                    packVoltageDv: UInt16(3_500 + next(500)), packCurrentDa: Int16(next(4_000) - 2_000),
                    soc: UInt8(next(101)), maxCellTemp: Int8(20 + next(20)), minCellTemp: Int8(10 + next(10)),
                    maxAlarmLevel: UInt8(next(4)), status: UInt16(next(512)), auxBatteryCv: UInt16(1_200 + next(300)),
                    alarmFlags: next(10) == 0 ? 1 << 4 : 0, remainingRangeKm: UInt16(next(2_001)))
            }
            FrameEncoder.appendTelemetry(
                vin: vins[vehicle], baseTimeMs: 1_790_000_000_000 + Int64(f / vehicles) * 50_000, records: batch,
                sequence: UInt32(f / vehicles + 1), to: &out)
            owners.append(Int32(vehicle + 1))
            produced += count
        }
        self.recordsPerFrame = recordsPerFrame
        self.frameCount = frameCount
        self.records = records
        self.frameSize = WireFormat.headerSize + WireFormat.trailerSize + 28 + 40 * recordsPerFrame
        self.bytes = out
        self.vehicleOfFrame = owners
    }
}

// MARK: (a) TLS 1.3 record decryption, AES-128-GCM through CNIOBoringSSL

/// TLS 1.3 application-data records sealed ahead of time, laid out as on the wire.
struct SealedRecords {
    static let maxPlaintext = 16_384
    static let headerSize = 5
    static let tagSize = 16

    let aead: UnsafeMutablePointer<EVP_AEAD_CTX>
    let iv: [UInt8]
    var wire: [UInt8] = []
    /// (offset of the header in `wire`, ciphertext length including tag) per record.
    var records: [(offset: Int, length: Int)] = []
    var plaintextBytes = 0

    /// Seals `stream` cut into records: at most `chunk` bytes of data each (16 KiB) or, with
    /// `boundaries`, one record per frame.
    init(stream: [UInt8], chunk: Int, frameSize: Int?) {
        var key = [UInt8](repeating: 0, count: 16)
        var iv = [UInt8](repeating: 0, count: 12)
        for i in 0..<16 { key[i] = UInt8(truncatingIfNeeded: i &* 37 &+ 11) }
        for i in 0..<12 { iv[i] = UInt8(truncatingIfNeeded: i &* 91 &+ 5) }
        guard let ctx = EVP_AEAD_CTX_new(EVP_aead_aes_128_gcm(), key, key.count, Self.tagSize) else {
            fatalError("EVP_AEAD_CTX_new(aes-128-gcm) failed")
        }
        self.aead = ctx
        self.iv = iv
        var offset = 0
        var sequence: UInt64 = 0
        var inner = [UInt8](repeating: 0, count: Self.maxPlaintext + 1)
        while offset < stream.count {
            let size = min(frameSize ?? chunk, stream.count - offset)
            // TLSInnerPlaintext: content || content type (application_data = 23), no padding.
            for i in 0..<size { inner[i] = stream[offset + i] }
            inner[size] = 23
            let cipherLength = size + 1 + Self.tagSize
            let header: [UInt8] = [23, 3, 3, UInt8(cipherLength >> 8), UInt8(cipherLength & 0xFF)]
            let at = wire.count
            wire.append(contentsOf: header)
            wire.append(contentsOf: [UInt8](repeating: 0, count: cipherLength))
            var nonce = iv
            Self.xorSequence(&nonce, sequence)
            var written = 0
            let ok = wire.withUnsafeMutableBufferPointer { w in
                EVP_AEAD_CTX_seal(ctx, w.baseAddress! + at + Self.headerSize, &written, cipherLength,
                                  nonce, nonce.count, inner, size + 1, w.baseAddress! + at, Self.headerSize)
            }
            precondition(ok == 1 && written == cipherLength, "seal failed")
            records.append((at, cipherLength))
            offset += size
            plaintextBytes += size
            sequence += 1
        }
    }

    static func xorSequence(_ nonce: inout [UInt8], _ sequence: UInt64) {
        for i in 0..<8 { nonce[4 + i] ^= UInt8(truncatingIfNeeded: sequence >> (56 - 8 * UInt64(i))) }
    }

    /// Opens every record into `out` as a TLS 1.3 receiver does; returns a checksum of the plaintext.
    @inline(never)
    func openAll(into out: UnsafeMutablePointer<UInt8>) -> Int {
        var sum = 0
        var nonce = [UInt8](repeating: 0, count: 12)
        wire.withUnsafeBufferPointer { w in
            nonce.withUnsafeMutableBufferPointer { n in
                var sequence: UInt64 = 0
                for record in records {
                    for i in 0..<12 { n[i] = iv[i] }
                    for i in 0..<8 { n[4 + i] ^= UInt8(truncatingIfNeeded: sequence >> (56 - 8 * UInt64(i))) }
                    var length = 0
                    let ok = EVP_AEAD_CTX_open(
                        aead, out, &length, Self.maxPlaintext + 1, n.baseAddress, 12,
                        w.baseAddress! + record.offset + Self.headerSize, record.length,
                        w.baseAddress! + record.offset, Self.headerSize)
                    if ok != 1 { fatalError("EVP_AEAD_CTX_open failed: record \(sequence)") }
                    // Strip the content type as TLS 1.3 does (scan back over zero padding).
                    var end = length - 1
                    while end > 0 && out[end] == 0 { end -= 1 }
                    sum &+= Int(out[end]) &+ Int(out[0])
                    sequence += 1
                }
            }
        }
        return sum
    }
}

// MARK: (b) frame parse + CRC with HorgosWire (as Benchmarks/WireBenchmark)

@inline(never)
func parse(_ buffer: UnsafeRawBufferPointer, decoder: FrameDecoder, validate: Bool) -> (records: Int, sum: Int) {
    var sum = 0
    var records = 0
    var offset = 0
    while offset < buffer.count {
        let rest = UnsafeRawBufferPointer(rebasing: buffer[offset...])
        do throws(FrameError) {
            guard let frame = try decoder.decode(rest) else { fatalError("buffer ends inside a frame") }
            let batch = try TelemetryBatchView(structureOf: frame.payload, maxRecords: decoder.maxRecords)
            if validate { try batch.validateRecords() }
            sum &+= Int(batch.baseTimeMs) &+ Int(batch.vinBytes[16])
            for index in 0..<batch.count {
                let r = batch[index]
                sum &+= Int(r.timeOffsetMs) &+ Int(r.latitudeE7) &+ Int(r.longitudeE7) &+ Int(r.odometerHm)
                sum &+= Int(r.speedDkmh) &+ Int(r.headingCdeg) &+ Int(r.packVoltageDv) &+ Int(r.packCurrentDa)
                sum &+= Int(r.soc) &+ Int(r.maxCellTemp) &+ Int(r.minCellTemp) &+ Int(r.maxAlarmLevel)
                sum &+= Int(r.status) &+ Int(r.auxBatteryCv) &+ Int(r.alarmFlags) &+ Int(r.remainingRangeKm)
            }
            records &+= batch.count
            offset &+= frame.header.frameLength
        } catch {
            fatalError("benchmark frame rejected: \(error)")
        }
    }
    return (records, sum)
}

// MARK: (c) the store's bare append loop (HorgosBenchSupport's, as in horgos-bench-store)

enum Durability: String, CaseIterable { case disk, process }

/// Appends every record of `stream` to a fresh file; returns the CPU nanoseconds of the loop (open,
/// schema and final checkpoint excluded, as in StoreBenchmark).
func bareAppend(_ stream: FrameStream, durability: Durability, directory: String) -> UInt64 {
    let path = "\(directory)/bare-\(durability.rawValue).sqlite"
    for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
    let appender = BareAppender(path: path, fsync: durability == .disk)
    let cpu = cpuTime {
        stream.bytes.withUnsafeBytes { all in
            var offset = 0
            for frameIndex in 0..<stream.frameCount {
                let payloadLength = Int(UInt32(littleEndian: all.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self)))
                let payload = UnsafeRawBufferPointer(
                    rebasing: all[(offset + WireFormat.headerSize)..<(offset + WireFormat.headerSize + payloadLength)])
                appender.append(telemetryPayload: payload, vehicleID: Int64(stream.vehicleOfFrame[frameIndex]))
                offset += WireFormat.headerSize + payloadLength + WireFormat.trailerSize
            }
        }
        appender.commit()
    }
    precondition(appender.rows == stream.records, "store loop appended \(appender.rows) of \(stream.records) rows")
    appender.close()
    for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
    return cpu
}

// MARK: Run

struct ShapeResult {
    var recordsPerFrame = 0
    var frameBytes = 0
    var records = 0
    var tls16k = UInt64.max
    var tlsPerFrame = UInt64.max
    var parse = UInt64.max
    var parseValidate = UInt64.max
    var storeDisk = UInt64.max
    var storeProcess = UInt64.max
    var tlsRecords16k = 0
    var tlsRecordsPerFrame = 0

    func perRecord(_ ns: UInt64) -> Double { ns == .max ? .nan : Double(ns) / Double(records) }
    var floorDisk: Double { perRecord(tls16k) + perRecord(parse) + perRecord(storeDisk) }
    var floorProcess: Double { perRecord(tls16k) + perRecord(parse) + perRecord(storeProcess) }
}

func fixed(_ value: Double, _ decimals: Int = 1) -> String { String(format: "%.\(decimals)f", value) }
func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}
func leftPad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
}

_ = horgos_sqlite3_config_memstatus(0)
let options = Options(CommandLine.arguments)
let tmp = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
let directory = "\(tmp)/horgos-bench-floor-\(getpid())"
try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: directory) }

nonisolated(unsafe) var sink = 0
var results: [ShapeResult] = []
if !options.json {
    print("horgos-bench-floor: \(options.records) records per shape, \(options.vehicles) vehicles, best of \(options.repeats) rounds, one thread, CPU time")
    print("SQLite \(String(cString: sqlite3_libversion())); CRC-32C \(CRC32C.preferred); AES-128-GCM via CNIOBoringSSL (NIO-SSL's BoringSSL)")
}
for recordsPerFrame in options.shapes {
    let stream = FrameStream(records: options.records, recordsPerFrame: recordsPerFrame, vehicles: options.vehicles)
    let sealed16k = SealedRecords(stream: stream.bytes, chunk: SealedRecords.maxPlaintext, frameSize: nil)
    let sealedPerFrame: SealedRecords? =
        recordsPerFrame == 1 ? SealedRecords(stream: stream.bytes, chunk: SealedRecords.maxPlaintext, frameSize: stream.frameSize) : nil
    let plaintext = UnsafeMutablePointer<UInt8>.allocate(capacity: SealedRecords.maxPlaintext + 1)
    defer { plaintext.deallocate() }
    var result = ShapeResult()
    result.recordsPerFrame = recordsPerFrame
    result.frameBytes = stream.frameSize
    result.records = stream.records
    result.tlsRecords16k = sealed16k.records.count
    result.tlsRecordsPerFrame = sealedPerFrame?.records.count ?? 0
    let decoder = FrameDecoder()
    for _ in 0..<options.repeats {
        result.tls16k = min(result.tls16k, cpuTime { sink &+= sealed16k.openAll(into: plaintext) })
        if let sealedPerFrame {
            result.tlsPerFrame = min(result.tlsPerFrame, cpuTime { sink &+= sealedPerFrame.openAll(into: plaintext) })
        }
        stream.bytes.withUnsafeBytes { bytes in
            for validate in [false, true] {
                var seen = 0
                let ns = cpuTime {
                    let r = parse(bytes, decoder: decoder, validate: validate)
                    seen = r.records
                    sink &+= r.sum
                }
                precondition(seen == stream.records)
                if validate { result.parseValidate = min(result.parseValidate, ns) } else { result.parse = min(result.parse, ns) }
            }
        }
        result.storeDisk = min(result.storeDisk, bareAppend(stream, durability: .disk, directory: directory))
        result.storeProcess = min(result.storeProcess, bareAppend(stream, durability: .process, directory: directory))
    }
    results.append(result)

    if !options.json {
        let r = result
        print("")
        print("\(recordsPerFrame) record(s) per frame: \(stream.frameCount) frames of \(stream.frameSize) bytes, \(stream.bytes.count) bytes; \(r.tlsRecords16k) TLS records of <= 16 KiB")
        print(pad("stage", 52) + leftPad("ns/record", 11) + leftPad("M records/s/core", 18))
        print(String(repeating: "-", count: 81))
        func line(_ name: String, _ ns: Double) {
            print(pad(name, 52) + leftPad(fixed(ns), 11) + leftPad(fixed(1_000 / ns, 2), 18))
        }
        line("(a) TLS 1.3 AES-128-GCM open, 16 KiB records", r.perRecord(r.tls16k))
        if sealedPerFrame != nil {
            line("    (one TLS record per frame, vehicle shape)", r.perRecord(r.tlsPerFrame))
        }
        line("(b) frame decode + CRC-32C + read every field", r.perRecord(r.parse))
        line("    (the same + validate every field)", r.perRecord(r.parseValidate))
        line("(c) SQLite bare append, durability=disk (FULL)", r.perRecord(r.storeDisk))
        line("    (durability=process, synchronous=NORMAL)", r.perRecord(r.storeProcess))
        print(String(repeating: "-", count: 81))
        line("floor = a + b + c(disk)", r.floorDisk)
        line("floor, durability=process", r.floorProcess)
        if sealedPerFrame != nil {
            line("floor with one TLS record per frame (disk)", r.perRecord(r.tlsPerFrame) + r.perRecord(r.parse) + r.perRecord(r.storeDisk))
        }
    }
}

if options.json {
    var shapes: [String] = []
    for r in results {
        var fields: [(String, String)] = [
            ("recordsPerFrame", "\(r.recordsPerFrame)"), ("frameBytes", "\(r.frameBytes)"), ("records", "\(r.records)"),
            ("tlsOpen16KiBNsPerRecord", fixed(r.perRecord(r.tls16k), 2)),
            ("parseCrcNsPerRecord", fixed(r.perRecord(r.parse), 2)),
            ("parseCrcValidateNsPerRecord", fixed(r.perRecord(r.parseValidate), 2)),
            ("storeAppendDiskNsPerRecord", fixed(r.perRecord(r.storeDisk), 2)),
            ("storeAppendProcessNsPerRecord", fixed(r.perRecord(r.storeProcess), 2)),
            ("floorDiskNsPerRecord", fixed(r.floorDisk, 2)),
            ("floorProcessNsPerRecord", fixed(r.floorProcess, 2)),
        ]
        if r.tlsPerFrame != .max {
            fields.append(("tlsOpenPerFrameNsPerRecord", fixed(r.perRecord(r.tlsPerFrame), 2)))
            fields.append(("floorDiskTlsPerFrameNsPerRecord",
                           fixed(r.perRecord(r.tlsPerFrame) + r.perRecord(r.parse) + r.perRecord(r.storeDisk), 2)))
        }
        shapes.append("    {" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}")
    }
    print("{\n  \"sqlite\": \"\(String(cString: sqlite3_libversion()))\",\n  \"repeats\": \(options.repeats),\n  \"shapes\": [\n"
          + shapes.joined(separator: ",\n") + "\n  ]\n}")
} else {
    print("")
    print("(checksum \(sink & 0xFFFF))")
}
