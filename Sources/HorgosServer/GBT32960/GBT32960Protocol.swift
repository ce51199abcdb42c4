import HorgosGBT32960
import HorgosStore
import HorgosWire
import Logging
import NIOCore

/// GB/T 32960.3 (Proto/GBT32960.md) as a pipeline plug-in: its decoder (``GBT32960ChannelDecoder``), its
/// session (``GBT32960Session`` around ``GBT32960SessionStateMachine``), its answer frames and flags, and a
/// certificate's identity as a vehicle or a platform (``GBT32960Peer``).
public struct GBT32960Protocol: IngestProtocol {
    public typealias Decoder = GBT32960ChannelDecoder
    public typealias Session = GBT32960Session

    /// `gbt32960`.
    public static let name = "gbt32960"

    /// `gbt32960.*`: time base, errors in a row before closing, frames in flight.
    public var settings: GBT32960Settings
    /// The VINs logged in on live GB/T 32960 connections (a VIN has one session).
    public let logins: GBT32960LoginRegistry
    /// Frames, answers and errors by command, flag and reason.
    public let metrics: GBT32960Metrics
    public var logger: Logger

    /// The protocol with its settings.
    public init(
        settings: GBT32960Settings, logins: GBT32960LoginRegistry = GBT32960LoginRegistry(),
        metrics: GBT32960Metrics = GBT32960Metrics(), logger: Logger
    ) {
        self.settings = settings
        self.logins = logins
        self.metrics = metrics
        self.logger = logger
    }

    /// A data unit longer than `maxPayload` is refused from the 24 header bytes.
    public func makeDecoder(maxPayload: Int) -> GBT32960ChannelDecoder {
        GBT32960ChannelDecoder(maxDataLength: min(maxPayload, GBT32960Format.maxDataLength))
    }

    /// A vehicle certificate is its VIN; a gateway certificate is a platform (0x05 login) of its market.
    public func peer(for identity: PeerIdentity) -> Result<GBT32960Peer, SessionRefusal> { identity.gbt32960Peer }

    public func makeSession(peer: GBT32960Peer, context: SessionContext) -> GBT32960Session {
        GBT32960Session(
            peer: peer, settings: settings, logins: logins, metrics: metrics, context: context, logger: logger)
    }

    public static func consumedBytes(_ inbound: GBT32960Inbound) -> Int {
        switch inbound {
        case .frame(_, let bytes): bytes.readableBytes
        case .refused(let header, _): header.frameLength
        case .garbage(_, let skipped): skipped
        }
    }

    /// GB/T 32960 has no refusal message: a refused peer's connection is closed.
    public func encodeRefusal(_ refusal: SessionRefusal, into buffer: inout ByteBuffer) {}
}

/// One GB/T 32960 connection's protocol state: ``GBT32960SessionStateMachine`` (unchanged) plus what the
/// pipeline needs of it: the body check of each frame, the login registry, the entry a realtime or reissue
/// frame is stored as, and the answer frames (the request's header, a flag, the data unit the machine
/// names).
///
/// A class, not a struct: the connection state machine holds it in an optional, and a struct there was
/// copied out and back for every call, so the machine's arrays were shared when it wrote them and were
/// copied (two allocations and ~1,300 instructions per native frame, callgrind). One per connection.
public final class GBT32960Session: ProtocolSession {
    public typealias Inbound = GBT32960Inbound
    public typealias Peer = GBT32960Peer

    /// A stored frame's header and collection time (its answer's data unit after the commit).
    public struct Pending: Sendable {
        let header: GBT32960FrameHeader
        let time: PackedTime
    }

    /// An answer frame: the request's header, the flag and the data unit.
    public struct Answer: Sendable {
        let header: GBT32960FrameHeader
        let flag: GBT32960ResponseFlag
        let data: AnswerUnit
    }

    /// The data unit of an answer.
    enum AnswerUnit: Sendable {
        case empty
        /// The request's collection time.
        case time(PackedTime)
        /// The server's time when the answer is written.
        case serverTime
    }

    /// The protocol rules of this connection.
    public private(set) var machine: GBT32960SessionStateMachine
    private let settings: GBT32960Settings
    private let logins: GBT32960LoginRegistry
    private let metrics: GBT32960Metrics
    private let context: SessionContext
    private let logger: Logger
    private var encoded: [UInt8] = []

    init(
        peer: GBT32960Peer, settings: GBT32960Settings, logins: GBT32960LoginRegistry, metrics: GBT32960Metrics,
        context: SessionContext, logger: Logger
    ) {
        machine = GBT32960SessionStateMachine(peer: peer, maxErrors: settings.maxErrors)
        self.settings = settings
        self.logins = logins
        self.metrics = metrics
        self.context = context
        self.logger = logger
        encoded.reserveCapacity(128)
    }

    public var market: String { machine.peer.market }

    public var role: String {
        switch machine.peer {
        case .vehicle: "vehicle"
        case .platform: "platform"
        case .allowListed: "allow_listed"
        }
    }

    /// True when the VINs this peer sends are not its certificate's own (a platform; a plain-TCP unit has
    /// no certificate): the deny list's `vin:` entries are checked for each.
    private var forwardsVINs: Bool {
        if case .vehicle = machine.peer { return false }
        return true
    }

    public func received(_ inbound: GBT32960Inbound, nowMs: Int64, into output: inout SessionOutput<GBT32960Session>) {
        switch inbound {
        case .garbage(let error, _):
            metrics.error(error.name)
            apply(machine.garbage(error), header: nil, unit: .none, &output)
        case .refused(let header, let error):
            metrics.error(error.name)
            apply(machine.refused(header, error), header: header, unit: .none, &output)
        case .frame(let header, let bytes):
            metrics.frameReceived(header.command)
            let check = bytes.withUnsafeReadableBytes { raw in
                let unit = UnsafeRawBufferPointer(
                    rebasing: raw[GBT32960Format.headerSize..<(GBT32960Format.headerSize + header.dataLength)])
                return GBT32960FrameView(header: header, dataUnit: unit).check()
            }
            metrics.outOfRange(check.outOfRange)
            let action = machine.received(header, bodyError: check.error, serial: check.serial)
            if case .answer(let flag, _, _) = action, flag != .success, let reason = machine.lastRefusal {
                metrics.error(reason)
            }
            apply(action, header: header, unit: .frame(bytes), &output)
        }
    }

    public func committed(_ pending: Pending, outcome: CommitOutcome, into output: inout SessionOutput<GBT32960Session>) {
        if outcome.rejected > 0 { metrics.error("outside_horizon") }
        apply(machine.committed(stored: outcome.rejected == 0), header: pending.header, unit: .time(pending.time), &output)
    }

    public func refused(
        _ pending: Pending, revokedVIN vin: VIN, records: Int, into output: inout SessionOutput<GBT32960Session>
    ) {
        metrics.error("vin_revoked")
        apply(machine.vinRevoked(pending.header), header: pending.header, unit: .time(pending.time), &output)
    }

    public func storageRefused(_ pending: Pending, reason: String, into output: inout SessionOutput<GBT32960Session>) {
        metrics.error("server_busy")
        apply(machine.storageRefused(), header: pending.header, unit: .time(pending.time), &output)
    }

    /// The GB/T decoder reports every failure as a value; anything thrown ends the connection.
    public func decodingFailed(_ error: any Error, into output: inout SessionOutput<GBT32960Session>) {
        logger.debug("GB/T 32960 connection error", metadata: ["error": "\(error)"])
        output.close = .now
    }

    /// GB/T 32960 has no goodbye from the server: a drain or an idle timeout answers what is in flight and
    /// closes (the pipeline does both); a revoked certificate is closed at once.
    public func end(_ reason: SessionEnd, into output: inout SessionOutput<GBT32960Session>) {
        if reason == .certificateRevoked { output.close = .now }
    }

    public func closed() {
        machine.closed()
        logins.release(context.connection.id)
    }

    /// Every frame gets its own answer.
    public static func coalesce(_ previous: inout Answer, with next: Answer) -> Bool { false }

    public func encode(_ answer: Answer, nowMs: Int64, into buffer: inout ByteBuffer) {
        let offset = settings.utcOffsetSeconds
        encoded.removeAll(keepingCapacity: true)
        GBT32960Encoder.appendAnswer(to: answer.header, response: answer.flag, to: &encoded) { out in
            switch answer.data {
            case .empty: break
            case .time(let time): time.append(to: &out)
            case .serverTime: out += GBT32960Time(epochSeconds: nowMs / 1000, utcOffsetSeconds: offset).bytes
            }
        }
        metrics.answerSent(answer.header.command, answer.flag)
        buffer.writeBytes(encoded)
    }

    /// Where an answer's request bytes come from.
    private enum UnitSource {
        case none
        /// The request frame, still in the receive buffer.
        case frame(ByteBuffer)
        /// A stored frame's collection time.
        case time(PackedTime)
    }

    private func apply(
        _ action: GBT32960SessionStateMachine.Action, header: GBT32960FrameHeader?, unit: UnitSource,
        _ output: inout SessionOutput<GBT32960Session>
    ) {
        switch action {
        case .none:
            return
        case .close:
            output.close = .now
        case .answer(let flag, let data, let close):
            guard let header else { return }
            output.answer(Answer(header: header, flag: flag, data: Self.unit(data, of: header, from: unit)))
            if close {
                logger.info(
                    "GB/T 32960 connection closed after repeated errors", metadata: ["last": "\(machine.lastRefusal ?? "?")"])
                output.close = .afterAnswers
            }
            guard flag == .success else { return }
            if header.command == .vehicleLogout || header.command == .platformLogout {
                logins.release(context.connection.id, vin: header.vinField.vin)
            }
            if header.command == .vehicleLogin || header.command == .platformLogin {
                // A login answered success is this protocol's HELLO: the handshake timer (TLS and login within
                // limits.handshake_timeout_seconds) stops here and the frame idle timer alone remains.
                output.handshakeComplete = true
            }
        case .loginVehicle(let vin):
            guard let header else { return }
            if forwardsVINs && context.isVINRevoked(vin) {
                metrics.error("vin_revoked")
                output.refusedVIN = vin
                apply(machine.vinRevoked(header), header: header, unit: unit, &output)
                return
            }
            var platform = false
            if case .platform = machine.peer { platform = true }
            let fresh = logins.login(vin, connection: context.connection, platform: platform)
            if !fresh { metrics.error("vin_duplicate") }
            apply(machine.vehicleLogin(vin, duplicate: !fresh), header: header, unit: unit, &output)
        case .store(let vin):
            guard let header, case .frame(let bytes) = unit else { return }
            // The entry: version, time base, then the frame (one copy of ~300 bytes into its own buffer, so
            // the receive buffer is not kept until the commit).
            var entry = ByteBufferAllocator().buffer(capacity: GBT32960Entry.headerSize + bytes.readableBytes)
            entry.writeInteger(GBT32960Entry.version)
            entry.writeInteger(Int32(truncatingIfNeeded: settings.utcOffsetSeconds), endianness: .little)
            entry.writeImmutableBuffer(bytes)
            output.store = StoreRequest(
                pending: Pending(header: header, time: PackedTime(frame: bytes)), payload: entry, kind: .gbt32960,
                records: 1, queuedBytes: entry.readableBytes, forwardedVIN: forwardsVINs ? vin : nil)
        }
    }

    /// The answer's data unit the machine names (GB/T 32960.3 6.3.2: the request's time, the server's time
    /// or nothing), from the request's bytes or a stored frame's time.
    private static func unit(
        _ data: GBT32960SessionStateMachine.AnswerData, of header: GBT32960FrameHeader, from source: UnitSource
    ) -> AnswerUnit {
        switch (data, source) {
        case (.empty, _): return .empty
        case (.serverTime, _): return .serverTime
        case (.requestTime, .time(let time)): return .time(time)
        case (.requestTime, .frame(let bytes)):
            return header.dataLength >= GBT32960Format.timeSize ? .time(PackedTime(frame: bytes)) : .empty
        case (.requestTime, .none): return .empty
        }
    }
}

/// The six time bytes that open a GB/T 32960 data unit (year, month, day, hour, minute, second), kept in one
/// integer so a stored frame's answer needs no allocation.
struct PackedTime: Sendable, Hashable {
    private var value: UInt64 = 0

    /// The first six data-unit bytes of `frame` (zeros when it is shorter).
    init(frame: ByteBuffer) {
        frame.withUnsafeReadableBytes { raw in
            for index in 0..<6 where GBT32960Format.headerSize + index < raw.count {
                value |= UInt64(raw[GBT32960Format.headerSize + index]) << (8 * index)
            }
        }
    }

    func append(to out: inout [UInt8]) {
        for index in 0..<6 { out.append(UInt8(truncatingIfNeeded: value >> (8 * index))) }
    }
}
