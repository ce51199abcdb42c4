import HorgosWire
import Testing

@testable import HorgosServer

@Suite struct SessionStateMachineTests {
    static let vin = VIN("LSVAU2180N2183294")!
    static let otherVIN = VIN("LGXC16DF4M0123456")!
    let vehicle = SessionPeer(role: .vehicle, vin: vin, market: "AE")
    let gateway = SessionPeer(role: .gateway, vin: nil, market: "AE")

    func header(_ type: FrameType, _ sequence: UInt32 = 0) -> FrameHeader {
        FrameHeader(type: type, sequence: sequence, payloadLength: 0)
    }

    func streaming(_ peer: SessionPeer, window: Int = 4) -> SessionStateMachine {
        var machine = SessionStateMachine(peer: peer, limits: SessionLimits(ackWindow: window))
        _ = machine.received(header(.hello), vin: nil, nowMs: 1)
        let kind: Hello.ClientKind = peer.role == .vehicle ? .vehicle : .gateway
        _ = machine.hello(Hello(clientKind: kind, clientTimeMs: 0, softwareVersion: "t"), nowMs: 1)
        return machine
    }

    func errorCode(_ action: SessionStateMachine.Action) -> ErrorCode? {
        if case .sendErrorAndClose(let message) = action { return message.knownCode }
        return nil
    }

    @Test func helloIsAnsweredWithWelcomeCarryingTheLimits() {
        var machine = SessionStateMachine(peer: vehicle, limits: SessionLimits(ackWindow: 16, maxPayload: 4096))
        #expect(machine.received(header(.hello), vin: nil, nowMs: 5) == .none)
        let action = machine.hello(Hello(clientKind: .vehicle, clientTimeMs: 0, softwareVersion: "fw"), nowMs: 42)
        guard case .sendWelcome(let welcome) = action else {
            Issue.record("expected WELCOME, got \(action)")
            return
        }
        #expect(welcome.serverTimeMs == 42)
        #expect(welcome.ackWindow == 16)
        #expect(welcome.maxPayload == 4096)
        #expect(welcome.maxRecords == UInt16((4096 - 28) / 40))
        #expect(machine.state == .streaming)
    }

    @Test func aDataFrameBeforeHelloIsHelloRequired() {
        var machine = SessionStateMachine(peer: vehicle, limits: SessionLimits())
        #expect(errorCode(machine.received(header(.telemetry, 1), vin: Self.vin, nowMs: 0)) == .helloRequired)
        #expect(machine.state == .closed)
    }

    @Test func helloWithTheWrongKindIsRoleMismatch() {
        var machine = SessionStateMachine(peer: gateway, limits: SessionLimits())
        _ = machine.received(header(.hello), vin: nil, nowMs: 0)
        let action = machine.hello(Hello(clientKind: .vehicle, clientTimeMs: 0, softwareVersion: ""), nowMs: 0)
        #expect(errorCode(action) == .roleMismatch)
    }

    @Test func aSecondHelloAndServerOnlyFramesAreUnexpected() {
        var machine = streaming(vehicle)
        #expect(errorCode(machine.received(header(.hello), vin: nil, nowMs: 0)) == .unexpectedFrame)
        for type in [FrameType.welcome, .ack, .error] {
            var again = streaming(vehicle)
            #expect(errorCode(again.received(header(type), vin: nil, nowMs: 0)) == .unexpectedFrame)
        }
    }

    @Test func dataFramesMustBeNumberedFromOneWithoutGaps() {
        var machine = streaming(vehicle)
        #expect(machine.received(header(.telemetry, 1), vin: Self.vin, nowMs: 0) == .store(sequence: 1))
        #expect(machine.received(header(.event, 2), vin: Self.vin, nowMs: 0) == .store(sequence: 2))
        #expect(errorCode(machine.received(header(.telemetry, 4), vin: Self.vin, nowMs: 0)) == .sequenceGap)

        var fresh = streaming(vehicle)
        #expect(errorCode(fresh.received(header(.telemetry, 0), vin: Self.vin, nowMs: 0)) == .sequenceGap)
    }

    @Test func aVehicleMaySendOnlyItsOwnVINAndAGatewayAny() {
        var machine = streaming(vehicle)
        #expect(errorCode(machine.received(header(.telemetry, 1), vin: Self.otherVIN, nowMs: 0)) == .vinNotAllowed)
        var gatewayMachine = streaming(gateway)
        #expect(gatewayMachine.received(header(.telemetry, 1), vin: Self.otherVIN, nowMs: 0) == .store(sequence: 1))
        #expect(gatewayMachine.received(header(.telemetry, 2), vin: Self.vin, nowMs: 0) == .store(sequence: 2))
    }

    @Test func theWindowLimitsUnacknowledgedFramesAndAnAckReopensIt() {
        var machine = streaming(vehicle, window: 2)
        #expect(machine.received(header(.telemetry, 1), vin: Self.vin, nowMs: 0) == .store(sequence: 1))
        #expect(machine.received(header(.telemetry, 2), vin: Self.vin, nowMs: 0) == .store(sequence: 2))
        var full = machine
        #expect(errorCode(full.received(header(.telemetry, 3), vin: Self.vin, nowMs: 0)) == .windowExceeded)
        #expect(machine.frameCommitted(1, rejected: 0) == .sendAck(Ack(sequence: 1)))
        #expect(machine.received(header(.telemetry, 3), vin: Self.vin, nowMs: 0) == .store(sequence: 3))
    }

    @Test func acksAreCumulativeAndWaitForTheCommittedPrefix() {
        var machine = streaming(vehicle, window: 8)
        for sequence in UInt32(1)...4 { _ = machine.received(header(.telemetry, sequence), vin: Self.vin, nowMs: 0) }
        // Frame 2 commits before frame 1: nothing may be acknowledged yet.
        #expect(machine.frameCommitted(2, rejected: 3) == .none)
        #expect(machine.frameCommitted(1, rejected: 1) == .sendAck(Ack(sequence: 2, rejectedRecords: 4)))
        #expect(machine.frameCommitted(4, rejected: 0) == .none)
        #expect(machine.frameCommitted(3, rejected: 0) == .sendAck(Ack(sequence: 4, rejectedRecords: 0)))
        #expect(machine.unacknowledged == 0)
        // A commit report for a frame that was never received changes nothing.
        #expect(machine.frameCommitted(9, rejected: 0) == .none)
    }

    @Test func pingIsAnsweredWithPongOfTheSameValue() {
        let machine = streaming(vehicle)
        #expect(machine.ping(0xDEAD_BEEF) == .sendPong(0xDEAD_BEEF))
    }

    @Test func drainingWaitsForPendingCommitsThenAcksAndSaysBye() {
        var machine = streaming(vehicle)
        _ = machine.received(header(.telemetry, 1), vin: Self.vin, nowMs: 0)
        _ = machine.received(header(.telemetry, 2), vin: Self.vin, nowMs: 0)
        #expect(machine.frameCommitted(1, rejected: 0) == .sendAck(Ack(sequence: 1)))
        #expect(machine.startDraining(.serverShutdown) == .none)
        #expect(machine.state == .draining(.serverShutdown))
        // Frames arriving while draining are not accepted.
        #expect(machine.received(header(.telemetry, 3), vin: Self.vin, nowMs: 0) == .none)
        #expect(machine.frameCommitted(2, rejected: 0) == .finish(Ack(sequence: 2), .serverShutdown))
        #expect(machine.state == .closed)
    }

    @Test func drainingWithNothingPendingSaysByeAtOnce() {
        var machine = streaming(vehicle)
        #expect(machine.startDraining(.idleTimeout) == .finish(nil, .idleTimeout))
    }

    @Test func clientByeClosesAfterPendingFramesAreAcknowledged() {
        var machine = streaming(vehicle)
        _ = machine.received(header(.telemetry, 1), vin: Self.vin, nowMs: 0)
        #expect(machine.bye() == .none)
        #expect(machine.frameCommitted(1, rejected: 0) == .finish(Ack(sequence: 1), .normal))
    }

    @Test func aClientByeWithNothingOutstandingIsAnsweredWithBye() {
        // PROTOCOL.md 4.8 (1.1): always BYE 0, not a bare close_notify as before.
        var idle = streaming(vehicle)
        #expect(idle.bye() == .finish(nil, .normal))
        var afterAck = streaming(vehicle)
        _ = afterAck.received(header(.telemetry, 1), vin: Self.vin, nowMs: 0)
        #expect(afterAck.frameCommitted(1, rejected: 0) == .sendAck(Ack(sequence: 1)))
        #expect(afterAck.bye() == .finish(nil, .normal))
    }

    @Test func anotherVINIsReportedBeforeAWrongSequence() {
        // PROTOCOL.md 6.1: VIN_NOT_ALLOWED ("give up") before SEQUENCE_GAP and WINDOW_EXCEEDED ("retry").
        var machine = streaming(vehicle)
        let action = machine.received(header(.telemetry, 7), vin: Self.otherVIN, nowMs: 0)
        #expect(errorCode(action) == .vinNotAllowed)
        guard case .sendErrorAndClose(let message) = action else { return }
        #expect(message.sequence == 7)
        var windowed = streaming(vehicle, window: 1)
        _ = windowed.received(header(.telemetry, 1), vin: Self.vin, nowMs: 0)
        #expect(errorCode(windowed.received(header(.telemetry, 2), vin: Self.otherVIN, nowMs: 0)) == .vinNotAllowed)
    }

    @Test func headerOnlyChecksComeBeforeThePayloadIsParsed() {
        var fresh = SessionStateMachine(peer: vehicle, limits: SessionLimits())
        #expect(errorCode(fresh.admit(header(.telemetry, 1))) == .helloRequired)
        var machine = streaming(vehicle)
        #expect(errorCode(machine.admit(header(.welcome))) == .unexpectedFrame)
        var ok = streaming(vehicle)
        #expect(ok.admit(header(.telemetry, 9)) == .none, "sequence is not a header-only check")
        #expect(ok.state == .streaming)
    }

    @Test func aTruncatedStreamClosesWithoutClaimingAnError() {
        var machine = streaming(vehicle)
        let action = machine.protocolViolation(.truncatedFrame(have: 40, need: 84), sequence: 0)
        guard case .closeTruncated = action else {
            Issue.record("expected closeTruncated, got \(action)")
            return
        }
        #expect(machine.state == .closed)
        var other = streaming(vehicle)
        guard case .sendErrorAndClose(let message) = other.protocolViolation(
            .badChecksum(expected: 1, actual: 2), sequence: 5)
        else {
            Issue.record("expected ERROR")
            return
        }
        #expect(message.knownCode == .badChecksum)
        #expect(message.sequence == 5)
    }

    @Test func welcomeAnnouncesTheHorizonOnlyToA11Client() {
        let horizon = AnnouncedHorizon(pastSeconds: 3 * 86_400, futureSeconds: 7_200)
        for (minor, expected) in [(UInt8(0), AnnouncedHorizon?.none), (1, horizon), (9, horizon)] {
            var machine = SessionStateMachine(peer: vehicle, limits: SessionLimits(horizon: horizon))
            _ = machine.received(header(.hello), vin: nil, nowMs: 0)
            let action = machine.hello(
                Hello(clientKind: .vehicle, clientTimeMs: 0, softwareVersion: "fw", protocolMinor: minor), nowMs: 0)
            guard case .sendWelcome(let welcome) = action else {
                Issue.record("expected WELCOME")
                continue
            }
            #expect(welcome.horizon == expected, "protocol_minor \(minor)")
        }
    }

    @Test func badBytesAfterTheClientsByeAreNotAnError() {
        var machine = streaming(vehicle)
        _ = machine.received(header(.telemetry, 1), vin: Self.vin, nowMs: 0)
        #expect(machine.bye() == .none)
        #expect(machine.protocolViolation(.badMagic(0x4848), sequence: 0) == .none)
        #expect(machine.frameCommitted(1, rejected: 0) == .finish(Ack(sequence: 1), .normal))
    }

    @Test func aHelloAfterTheClientsByeIsNotRead() {
        var machine = streaming(vehicle)
        _ = machine.received(header(.telemetry, 1), vin: Self.vin, nowMs: 0)
        #expect(machine.bye() == .none)
        #expect(machine.received(header(.hello), vin: nil, nowMs: 0) == .none)
        #expect(machine.hello(Hello(clientKind: .vehicle, clientTimeMs: 0, softwareVersion: ""), nowMs: 0) == .none)
    }
}
