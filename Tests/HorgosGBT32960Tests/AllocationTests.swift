import HorgosAllocationCounter
import HorgosGBT32960
import HorgosWire
import Testing

/// Decoding a GB/T 32960 frame and reading every block allocates nothing (issue 12, acceptance 2).
@Suite struct GBT32960AllocationTests {
    static func allocations(_ body: () -> Void) -> Int64 {
        horgos_allocation_counter_start()
        body()
        return horgos_allocation_counter_stop()
    }

    /// Decodes every frame of `stream`, reads every field of every block; a checksum of the values.
    static func readAll(_ stream: UnsafeRawBufferPointer) -> (frames: Int, sum: Int) {
        let decoder = GBT32960Decoder()
        var offset = 0, frames = 0, sum = 0
        while offset < stream.count {
            let rest = UnsafeRawBufferPointer(rebasing: stream[offset...])
            guard let frame = try? decoder.decode(rest), case .realtime(let r)? = try? frame.body() else {
                return (-1, -1)
            }
            sum &+= r.checksumOfEveryValue
            frames += 1
            offset += frame.header.frameLength
        }
        return (frames, sum)
    }

    /// Decodes 200 frames of `values(seed, time)` twice (warm, counted) and expects no allocation.
    static func expectNoAllocations(_ values: (Int, GBT32960Time) -> GBT32960RealtimeValues) {
        var stream: [UInt8] = []
        let time = try! GBT32960Time(year: 26, month: 1, day: 2, hour: 3, minute: 4, second: 5)
        for seed in 0..<200 { stream += realtimeFrame(values(seed, time), vin: DecoderTests.vin) }
        stream.withUnsafeBytes { raw in
            let warm = Self.readAll(raw)
            var result = (frames: 0, sum: 0)
            let count = Self.allocations { result = Self.readAll(raw) }
            #expect(result.frames == 200)
            #expect(result == warm)
            #expect(count == 0, "\(count) allocations for \(result.frames) frames")
        }
    }

    @Test func decodingAndReadingEveryBlockAllocatesNothing() {
        Self.expectNoAllocations { typicalReport(seed: $0, time: $1) }
    }

    @Test func decodingAndReadingEveryBlockOfA2025FrameAllocatesNothing() {
        Self.expectNoAllocations { .typical2025(seed: $0, time: $1) }
    }
}
