import HorgosStore
import HorgosWire
import NIOCore
import Testing

@testable import HorgosServer

/// A protocol session for the connection machine's own tests: every frame a number; even numbers are stored,
/// odd ones answered at once; 0 is the peer's goodbye (answer, then stop reading); a negative one an error
/// that closes after its answer.
struct ScriptedSession: ProtocolSession {
    typealias Inbound = Int
    typealias Peer = String
    typealias Pending = Int
    enum Answer: Equatable { case immediate(Int), stored(Int, rejected: Int), refused(Int), goodbye, error(Int) }

    var market: String { "AE" }
    var role: String { "vehicle" }
    var forwardedVIN: VIN?
    var ended: [SessionEnd] = []
    var closedCount = 0

    mutating func received(_ inbound: Int, nowMs: Int64, into output: inout SessionOutput<Self>) {
        if inbound == 0 {
            output.answer(.goodbye)
            output.stopReading = true
        } else if inbound < 0 {
            output.answer(.error(inbound))
            output.close = .afterAnswers
        } else if inbound % 2 == 0 {
            output.store = StoreRequest(
                pending: inbound, payload: ByteBuffer(), kind: .telemetry, records: 1, queuedBytes: 10,
                forwardedVIN: forwardedVIN)
        } else {
            output.answer(.immediate(inbound))
        }
    }

    mutating func committed(_ pending: Int, outcome: CommitOutcome, into output: inout SessionOutput<Self>) {
        output.answer(.stored(pending, rejected: outcome.rejected))
    }

    mutating func refused(_ pending: Int, revokedVIN vin: VIN, records: Int, into output: inout SessionOutput<Self>) {
        output.answer(.refused(pending))
    }

    mutating func storageRefused(_ pending: Int, reason: String, into output: inout SessionOutput<Self>) {
        output.answer(.error(pending))
        output.close = .afterAnswers
    }

    mutating func decodingFailed(_ error: any Error, into output: inout SessionOutput<Self>) { output.close = .now }

    mutating func end(_ reason: SessionEnd, into output: inout SessionOutput<Self>) {
        ended.append(reason)
        if reason == .certificateRevoked { output.close = .now }
    }

    mutating func closed() { closedCount += 1 }

    /// Stored answers coalesce (like cumulative ACKs): the later says both.
    static func coalesce(_ previous: inout Answer, with next: Answer) -> Bool {
        guard case .stored(_, let a) = previous, case .stored(let sequence, let b) = next else { return false }
        previous = .stored(sequence, rejected: a + b)
        return true
    }

    mutating func encode(_ answer: Answer, nowMs: Int64, into buffer: inout ByteBuffer) {
        buffer.writeString("\(answer);")
    }
}

/// The connection machine without NIO: gating, the in-flight window, coalescing, drain, close (issue 19).
@Suite struct ConnectionStateMachineTests {
    typealias Machine = ConnectionStateMachine<ScriptedSession>

    static func open(maxInFlight: Int = 4, revoked: Set<VIN> = [], forwarded: VIN? = nil) -> Machine {
        var machine = Machine(maxInFlight: maxInFlight, isVINRevoked: { revoked.contains($0) })
        machine.peerAdmitted(ScriptedSession(forwardedVIN: forwarded))
        return machine
    }

    /// The queued answers as the handler would write them.
    static func written(_ machine: inout Machine) -> String {
        var buffer = ByteBuffer()
        machine.encodeAnswers(nowMs: 0, into: &buffer)
        return buffer.readString(length: buffer.readableBytes) ?? ""
    }

    static func storeID(_ action: Machine.Action) -> UInt32? {
        if case .store(let id, _) = action { return id }
        return nil
    }

    static func isWrite(_ action: Machine.Action, close: Bool) -> Bool {
        if case .write(let writeClose, _) = action { return writeClose == close }
        return false
    }

    @Test func framesBeforeThePeerIsAdmittedAreDroppedAndReadsPassUntilThen() {
        var machine = Machine(maxInFlight: 4, isVINRevoked: { _ in false })
        #expect(machine.state == .awaitingPeer)
        if case .none = machine.frameDecoded(2, nowMs: 0) {} else { Issue.record("a frame before admission") }
        if case .read = machine.readRequested() {} else { Issue.record("the TLS handshake reads") }
        if case .close = machine.idleTimeout() {} else { Issue.record("idle before admission closes") }
    }

    @Test func answersOfAReadWaitForTheReadsEndAndAreWrittenTogether() {
        var machine = Self.open()
        if case .none = machine.frameDecoded(1, nowMs: 0) {} else { Issue.record("no write inside the read") }
        _ = machine.frameDecoded(3, nowMs: 0)
        #expect(machine.needsFlush)
        #expect(Self.isWrite(machine.readComplete(), close: false))
        #expect(Self.written(&machine) == "immediate(1);immediate(3);")
        if case .none = machine.readComplete() {} else { Issue.record("nothing more to write") }
    }

    @Test func commitsOutOfOrderAreAnsweredOnceEachAndCoalesced() {
        var machine = Self.open()
        let first = Self.storeID(machine.frameDecoded(2, nowMs: 0))!
        let second = Self.storeID(machine.frameDecoded(4, nowMs: 0))!
        #expect(machine.framesInFlight == 2)
        _ = machine.committed(second, outcome: CommitOutcome(stored: 1, duplicates: 0, rejected: 1))
        _ = machine.committed(first, outcome: CommitOutcome(stored: 1, duplicates: 0, rejected: 0))
        // The same id twice (a duplicate completion) changes nothing.
        _ = machine.committed(first, outcome: CommitOutcome(stored: 1, duplicates: 0, rejected: 5))
        #expect(machine.framesInFlight == 0)
        #expect(Self.isWrite(machine.flush(), close: false))
        #expect(Self.written(&machine) == "stored(2, rejected: 1);")
    }

    @Test func aFullInFlightWindowHoldsTheReadUntilACommit() {
        var machine = Self.open(maxInFlight: 2)
        let a = Self.storeID(machine.frameDecoded(2, nowMs: 0))!
        _ = machine.frameDecoded(4, nowMs: 0)
        if case .none = machine.readRequested() {} else { Issue.record("the window is full") }
        if case .read = machine.committed(a, outcome: CommitOutcome()) {} else { Issue.record("the held read goes on") }
    }

    @Test func aFullRegionHoldsTheReadUntilItHasRoom() {
        var machine = Self.open()
        _ = machine.frameDecoded(2, nowMs: 0)
        machine.submitted(regionAboveHighWatermark: true)
        #expect(machine.isRegionFull)
        if case .none = machine.readRequested() {} else { Issue.record("the region is full") }
        if case .read = machine.regionHasRoom() {} else { Issue.record("the held read goes on") }
        if case .read = machine.readRequested() {} else { Issue.record("reading again") }
    }

    @Test func aForwardedRevokedVINIsRefusedNotStored() {
        let revoked = VIN("LGXC16DF4M0123456")!
        var machine = Self.open(revoked: [revoked], forwarded: revoked)
        if case .store = machine.frameDecoded(2, nowMs: 0) { Issue.record("a revoked VIN was stored") }
        #expect(machine.takeRefusedVIN() == revoked)
        #expect(machine.takeRefusedVIN() == nil)
        #expect(machine.framesInFlight == 0)
        _ = machine.readComplete()
        #expect(Self.written(&machine) == "refused(2);")
    }

    @Test func theDrainStopsReadingAndClosesOnceTheLastFrameInFlightIsAnswered() {
        var machine = Self.open()
        let id = Self.storeID(machine.frameDecoded(2, nowMs: 0))!
        if case .none = machine.quiesce() {} else { Issue.record("nothing to write yet") }
        #expect(machine.state == .draining)
        #expect(machine.session?.ended == [.serverShutdown])
        if case .none = machine.readRequested() {} else { Issue.record("no reading while draining") }
        if case .none = machine.frameDecoded(1, nowMs: 0) {} else { Issue.record("frames after the drain are dropped") }
        _ = machine.committed(id, outcome: CommitOutcome())
        #expect(machine.state == .closing)
        #expect(Self.isWrite(machine.flush(), close: true))
        #expect(Self.written(&machine) == "stored(2, rejected: 0);")
    }

    @Test func thePeersGoodbyeStopsReadingAndAnErrorClosesAfterItsAnswer() {
        var goodbye = Self.open()
        _ = goodbye.frameDecoded(0, nowMs: 0)
        #expect(goodbye.state == .closing)  // nothing in flight: closes once the goodbye is written
        #expect(Self.isWrite(goodbye.readComplete(), close: true))

        var error = Self.open()
        _ = error.frameDecoded(-7, nowMs: 0)
        #expect(error.state == .closing)
        if case .none = error.frameDecoded(1, nowMs: 0) {} else { Issue.record("nothing after an error") }
        #expect(Self.isWrite(error.readComplete(), close: true))
        #expect(Self.written(&error) == "error(-7);")
    }

    @Test func storageRefusingAFrameWritesTheRefusalAtOnceAndCloses() {
        var machine = Self.open()
        let id = Self.storeID(machine.frameDecoded(2, nowMs: 0))!
        #expect(Self.isWrite(machine.storageRefused(id, reason: "full"), close: true))
        #expect(Self.written(&machine) == "error(2);")
    }

    @Test func aRevokedCertificateClosesAtOnceAndTheSessionHearsOfTheClose() {
        var machine = Self.open()
        _ = machine.frameDecoded(1, nowMs: 0)  // an answer queued, never written
        if case .close = machine.certificateRevoked() {} else { Issue.record("closed at once") }
        machine.closed()
        machine.closed()
        #expect(machine.state == .closed)
        #expect(machine.session?.closedCount == 1)
    }

    @Test func theInFlightRingGrowsAndHandsBackEveryFrameInAnyOrder() {
        var frames = InFlightFrames<Int>(capacity: 2)
        let ids = (0..<40).map { frames.insert($0) }
        #expect(frames.count == 40)
        for id in ids.reversed() where id % 3 == 0 { #expect(frames.remove(id) == Int(id)) }
        #expect(frames.remove(ids[3]) == nil)  // gone already
        for id in ids where id % 3 != 0 { #expect(frames.remove(id) == Int(id)) }
        #expect(frames.isEmpty)
        let next = frames.insert(99)
        #expect(frames.remove(next) == 99)
    }
}
