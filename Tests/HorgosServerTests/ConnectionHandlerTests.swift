import HorgosGBT32960
import HorgosStore
import HorgosWire
import NIOCore
import NIOEmbedded
import Testing

@testable import HorgosServer

/// The connection pipeline's behaviour at the handler, for every protocol (issue 19): a frame is answered
/// only after its commit, refusals are the protocol's own, the region's queue holds reads back, a drain
/// answers what is in flight before the goodbye, forwarded VINs are checked against the deny list.
@Suite struct ConnectionHandlerTests {
    @Test(arguments: TestProtocol.allCases)
    func theOpeningIsAnsweredAndFramesAreAnsweredOnlyAfterCommit(wire: TestProtocol) throws {
        let connection = try EmbeddedConnection(wire)
        #expect(try connection.open() == [.opened])
        try connection.send(connection.data(1) + connection.data(2, records: 3))
        #expect(connection.sink.count == 2)
        // Nothing is answered before the writer reports the commit.
        #expect(try connection.replies().isEmpty)
        connection.sink.commitAll()
        let writes = try connection.writes()
        switch wire {
        case .native: #expect(writes == [[.answered(2)]])  // one cumulative ACK
        case .gbt32960: #expect(writes == [[.answered(0), .answered(0)]])  // one write, an answer each
        }
        #expect(connection.flow.queuedBytes == 0)
    }

    @Test(arguments: TestProtocol.allCases)
    func aCorruptedFrameIsRefusedByNameAndNeverStored(wire: TestProtocol) throws {
        let connection = try EmbeddedConnection(wire)
        try connection.open()
        var frame = connection.data(1)
        frame[40] ^= 0xFF
        try? connection.send(frame)
        let replies = try connection.replies()
        #expect(connection.sink.count == 0)
        switch wire {
        case .native:
            #expect(replies == [.error("BAD_CHECKSUM")])
            #expect(!connection.channel.isActive)
        case .gbt32960:
            // A bad BCC is answered with the error flag; the unit may resend (closed after max_errors in a row).
            #expect(replies == [.error("realtime")])
            #expect(connection.channel.isActive)
        }
    }

    @Test(arguments: TestProtocol.allCases)
    func anotherVehiclesVINIsRefused(wire: TestProtocol) throws {
        let connection = try EmbeddedConnection(wire)
        try connection.open()
        try connection.send(connection.data(1, vin: VIN("LGXC16DF4M0123456")!))
        #expect(try connection.replies() == [wire == .native ? .error("VIN_NOT_ALLOWED") : .error("realtime")])
        #expect(connection.sink.count == 0)
    }

    @Test(arguments: TestProtocol.allCases)
    func aFrameStorageRefusesIsRefusedAndTheConnectionCloses(wire: TestProtocol) throws {
        let connection = try EmbeddedConnection(wire, storage: RefusingSink())
        try connection.open()
        try connection.send(connection.data(1))
        #expect(try connection.replies() == [wire == .native ? .error("SERVER_BUSY") : .error("realtime")])
        #expect(!connection.channel.isActive)
    }

    @Test(arguments: TestProtocol.allCases)
    func aMarketThatIsNotARegionIsRefusedAfterTheHandshake(wire: TestProtocol) throws {
        let connection = try EmbeddedConnection(wire, market: "US")
        // Native says why (ERROR); GB/T 32960 has no refusal message: the connection is closed.
        #expect(try connection.replies() == (wire == .native ? [.error("UNKNOWN_MARKET")] : []))
        #expect(!connection.channel.isActive)
    }

    @Test(arguments: TestProtocol.allCases)
    func readingStopsAboveTheHighWatermarkAndResumesBelowTheLow(wire: TestProtocol) throws {
        // What the region's queue counts per frame: the native frame, the GB/T 32960 journal entry.
        let probe = try EmbeddedConnection(wire)
        let size = wire == .native ? probe.data(1).count : probe.data(1).count + GBT32960Entry.headerSize
        let connection = try EmbeddedConnection(wire, high: size * 5 / 2, low: size * 6 / 5)
        try connection.open()
        connection.channel.read()
        let readsBefore = connection.reads.reads
        try connection.send(connection.data(1) + connection.data(2) + connection.data(3))
        #expect(connection.flow.queuedBytes == 3 * size)
        #expect(connection.flow.waitingSessions == 1)
        connection.channel.read()
        #expect(connection.reads.reads == readsBefore, "a read must not reach the socket while the region is full")
        connection.sink.commitAll()
        connection.channel.embeddedEventLoop.run()
        #expect(connection.flow.queuedBytes == 0)
        #expect(connection.reads.reads == readsBefore + 1, "the held read is released below the low watermark")
    }

    @Test(arguments: TestProtocol.allCases)
    func aDrainAnswersWhatIsInFlightThenSaysTheProtocolsGoodbye(wire: TestProtocol) throws {
        let connection = try EmbeddedConnection(wire)
        try connection.open()
        try connection.send(connection.data(1))
        connection.quiesce()
        #expect(try connection.replies().isEmpty)
        connection.sink.commitAll()
        let replies = try connection.replies()
        switch wire {
        case .native: #expect(replies == [.answered(1), .goodbye(.serverShutdown)])
        case .gbt32960: #expect(replies == [.answered(0)])  // no goodbye message in GB/T 32960: the close
        }
        #expect(!connection.channel.isActive)
    }

    @Test(arguments: TestProtocol.allCases)
    func aFrameAForwardingPeerSendsForARevokedVINIsRefusedAndNotStored(wire: TestProtocol) throws {
        let revoked = VIN("LGXC16DF4M0123456")!
        let connection = try EmbeddedConnection(wire, role: .gateway, isVINRevoked: { $0 == revoked })
        #expect(try connection.open() == [.opened])
        try connection.send(connection.data(1, vin: revoked, records: 4) + connection.data(2))
        #expect(connection.sink.count == 1, "only the other VIN's frame is stored")
        connection.sink.commitAll()
        switch wire {
        case .native:
            // Acknowledged with its records rejected: the gateway keeps serving its other vehicles and does not
            // resend it.
            #expect(try connection.replies() == [.answered(1), .answered(2)])
        case .gbt32960:
            #expect(try connection.replies() == [.error("realtime"), .answered(0)])
            // A platform's login of the revoked vehicle is refused too.
            var login: [UInt8] = []
            GBT32960Encoder.appendFrame(command: .vehicleLogin, vin: GBT32960VINField(revoked), to: &login) {
                GBT32960Encoder.appendVehicleLogin(
                    time: EmbeddedConnection.time, sequence: 2, iccid: Array("89860012345678901234".utf8),
                    subsystemCodes: [[0x31]], to: &$0)
            }
            try connection.send(login)
            #expect(try connection.replies() == [.error("vehicle_login")])
        }
        #expect(connection.channel.isActive)
    }

    @Test func aGBT32960ConnectionStopsReadingWhileItsInFlightWindowIsFull() throws {
        let connection = try EmbeddedConnection(.gbt32960, maxInFlight: 2)
        try connection.open()
        connection.channel.read()
        let readsBefore = connection.reads.reads
        try connection.send(connection.data(1) + connection.data(2))
        connection.channel.read()
        #expect(connection.reads.reads == readsBefore, "two frames await their commit: no more reading")
        connection.sink.commitAll()
        connection.channel.embeddedEventLoop.run()
        #expect(connection.reads.reads == readsBefore + 1)
        #expect(try connection.replies() == [.answered(0), .answered(0)])
    }
}

/// Answers are written once per connection per burst of completions (issue 11, item 8), for every protocol.
@Suite struct AnswerCoalescingTests {
    /// Connections sharing one event loop, one sink and one commit inbox, as on a daemon's loop.
    static func connections(_ wire: TestProtocol, count: Int, storage: (any IngestSink)? = nil) throws
        -> [EmbeddedConnection]
    {
        let loop = EmbeddedEventLoop()
        let inboxes = CommitInboxes()
        let sink = HeldSink()
        let flow = RegionFlowControl(region: "AE", highWatermark: 1 << 20, lowWatermark: 1 << 19)
        return try (0..<count).map { _ in
            let connection = try EmbeddedConnection(
                wire, storage: storage, loop: loop, inboxes: inboxes, flow: flow, sink: sink)
            try connection.open()
            return connection
        }
    }

    @Test(arguments: TestProtocol.allCases)
    func aBurstOfCompletionsGivesEachConnectionOneWrite(wire: TestProtocol) throws {
        let connections = try Self.connections(wire, count: 3)
        // Three reads per connection, one frame each, before the store completes anything.
        for sequence in UInt32(1)...3 {
            for connection in connections { try connection.send(connection.data(sequence)) }
        }
        #expect(try connections.allSatisfy { try $0.writes().isEmpty }, "nothing is answered before it is durable")
        connections[0].sink.commitAll()  // one durable round holding all nine frames
        let burst: [[Reply]] = wire == .native ? [[.answered(3)]] : [[.answered(0), .answered(0), .answered(0)]]
        for connection in connections { #expect(try connection.writes() == burst) }
        // The next burst: one more frame each, one more write each.
        for connection in connections { try connection.send(connection.data(4)) }
        connections[0].sink.commitAll()
        let next: [[Reply]] = [[connections[0].stored(4)]]
        for connection in connections { #expect(try connection.writes() == next) }
        #expect(connections[0].flow.queuedBytes == 0)
    }

    @Test(arguments: TestProtocol.allCases)
    func framesCompletedInsideSubmitAreAnsweredOnceAfterTheRead(wire: TestProtocol) throws {
        let connections = try Self.connections(wire, count: 2, storage: ImmediateSink())
        for connection in connections { try connection.send(connection.data(1) + connection.data(2)) }
        let expected: [[Reply]] = wire == .native ? [[.answered(2)]] : [[.answered(0), .answered(0)]]
        for connection in connections { #expect(try connection.writes() == expected) }
        #expect(connections[0].flow.queuedBytes == 0)
    }
}
