import HorgosWire
import Testing

/// Feeds a stream in pieces through an accumulating buffer, the way a NIO ByteToMessageDecoder
/// sees it, and checks the frames come out exactly as from the whole stream at once.
@Suite struct SplitStreamTests {
    /// An accumulating receive buffer: append what arrives, take whole frames off the front.
    struct Receiver {
        var buffer: [UInt8] = []
        var readIndex = 0
        var frames: [[WireField]] = []
        let decoder = FrameDecoder()
        let useSpan: Bool

        init(useSpan: Bool) { self.useSpan = useSpan }

        mutating func receive(_ chunk: ArraySlice<UInt8>) throws {
            buffer += chunk
            while readIndex < buffer.count {
                let result: (Int, [WireField])?
                if useSpan {
                    let received = buffer  // a local copy (no bytes copied) that the span can borrow
                    let span = received.span.bytes.extracting(readIndex..<received.count)
                    result = try decoder.withMessage(span) { header, message in
                        (header.frameLength, header.fields + message.fields)
                    }
                } else {
                    result = try buffer.withUnsafeBytes { all throws -> (Int, [WireField])? in
                        let rest = UnsafeRawBufferPointer(rebasing: all[readIndex...])
                        guard let frame = try decoder.decode(rest) else { return nil }
                        return (frame.header.frameLength, frame.header.fields + (try frame.message().fields))
                    }
                }
                guard let (length, fields) = result else { break }
                frames.append(fields)
                readIndex += length
            }
            if readIndex > 4_096 {  // discard what was read, as ByteBuffer.discardReadBytes does
                buffer.removeFirst(readIndex)
                readIndex = 0
            }
        }

        var leftover: Int { buffer.count - readIndex }
    }

    static func stream(seed: UInt64, frames count: Int) -> (bytes: [UInt8], frames: [[WireField]]) {
        var random = RandomFrames(seed: seed)
        var bytes: [UInt8] = []
        for index in 0..<count {
            random.anyFrame(maxRecords: 3).encode(sequence: UInt32(index), to: &bytes)
        }
        var whole = Receiver(useSpan: false)
        try! whole.receive(bytes[...])
        return (bytes, whole.frames)
    }

    @Test func everyTwoWaySplitDecodesToTheSameFrames() throws {
        let (bytes, expected) = Self.stream(seed: 5, frames: 30)
        #expect(expected.count == 30)
        for cut in 0...bytes.count {
            var receiver = Receiver(useSpan: false)
            try receiver.receive(bytes[..<cut])
            try receiver.receive(bytes[cut...])
            #expect(receiver.frames == expected, "split at \(cut)")
            #expect(receiver.leftover == 0)
        }
    }

    @Test(arguments: [false, true])
    func randomChunkingsDecodeToTheSameFrames(useSpan: Bool) throws {
        let (bytes, expected) = Self.stream(seed: 11, frames: 300)
        var random = SeededRandom(seed: 12)
        for round in 0..<40 {
            var receiver = Receiver(useSpan: useSpan)
            var offset = 0
            let maxChunk = [1, 7, 64, 1_500, 20_000][round % 5]
            while offset < bytes.count {
                let size = min(Int.random(in: 1...maxChunk, using: &random), bytes.count - offset)
                try receiver.receive(bytes[offset..<(offset + size)])
                offset += size
            }
            #expect(receiver.frames == expected, "round \(round)")
            #expect(receiver.leftover == 0)
        }
    }

    @Test func aStreamCutInsideAFrameLeavesThePartialFrameUnread() throws {
        let (bytes, expected) = Self.stream(seed: 3, frames: 4)
        var receiver = Receiver(useSpan: false)
        try receiver.receive(bytes.dropLast(3))
        #expect(receiver.frames == Array(expected.prefix(3)))
        #expect(receiver.leftover > 0)
    }
}
