import HorgosWire
import Testing

@Suite struct RoundTripTests {
    /// Thousands of random valid frames of every type: encode, decode, and get the same values back.
    @Test(arguments: [UInt64(1), 2, 3])
    func randomValidFramesOfEveryTypeDecodeToTheValuesEncoded(seed: UInt64) throws {
        var frames = RandomFrames(seed: seed)
        let decoder = FrameDecoder()
        var seen = Set<FrameType>()
        for index in 0..<2_000 {
            let type = FrameType.allCases[index % FrameType.allCases.count]
            let value = frames.frame(type)
            let sequence = UInt32.random(in: 0...UInt32.max, using: &frames.random)
            var bytes: [UInt8] = []
            value.encode(sequence: sequence, to: &bytes)
            let decoded = try bytes.withUnsafeBytes { raw throws -> (FrameHeader, FrameValue) in
                let frame = try decoder.decodeComplete(raw)
                return (frame.header, FrameValue(try frame.message(maxRecords: decoder.maxRecords)))
            }
            #expect(decoded.0 == FrameHeader(type: type, sequence: sequence, payloadLength: bytes.count - 16))
            #expect(decoded.1 == value, "seed \(seed), frame \(index)")
            seen.insert(decoded.0.type)
        }
        #expect(seen == Set(FrameType.allCases))
    }

    @Test func reEncodingADecodedMessageGivesTheSameBytes() throws {
        var frames = RandomFrames(seed: 42)
        for _ in 0..<500 {
            var bytes: [UInt8] = []
            frames.anyFrame().encode(sequence: 17, to: &bytes)
            let again = try bytes.withUnsafeBytes { raw throws -> [UInt8] in
                var out: [UInt8] = []
                let frame = try FrameDecoder().decodeComplete(raw)
                FrameEncoder.appendMessage(try frame.message(), sequence: frame.header.sequence, to: &out)
                return out
            }
            #expect(again == bytes)
        }
    }
}
