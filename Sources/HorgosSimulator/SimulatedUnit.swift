import Histogram
import HorgosWire
import HorgosWireNIO
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// One telematics unit (a vehicle's TBox) or one gateway: a TLS connection that behaves like real
/// firmware. It keeps every frame until an ACK covers it, honours the window from WELCOME,
/// reconnects with exponential backoff and jitter after any disconnect, and resends what was not
/// acknowledged, renumbered from 1 (PROTOCOL.md section 6).
///
/// Confined to one event loop: every method runs there.
final class SimulatedUnit {
    struct PendingFrame {
        var vin: VIN
        var baseTimeMs: Int64
        var records: [TelemetryRecord]
        var sentAtNanos: UInt64 = 0
        var sequence: UInt32 = 0
        var resends = 0
    }

    struct Fleet {
        var vehicles: [SimulatedVehicle]
        /// Next record time of each vehicle (simulated clock, ms since epoch).
        var clocks: [Int64]
        /// Records collected for the next frame of each vehicle.
        var partial: [[TelemetryRecord]]
        /// Time of the first record in `partial`, the next frame's base time.
        var partialBase: [Int64]
        var nextVehicle = 0
    }

    let name: String
    let kind: Hello.ClientKind
    let eventLoop: any EventLoop
    let settings: FleetSettings
    let sslContext: NIOSSLContext
    let stats: FleetStats
    let localAddress: SocketAddress?
    var fleet: Fleet
    var random: SimRandom

    var channel: (any Channel)?
    var window = 1
    var welcomed = false
    var nextSequence: UInt32 = 1
    var pending: [PendingFrame] = []  // generated, not yet sent on this connection
    var inFlight: [PendingFrame] = []  // sent on this connection, not yet acknowledged
    var backoffMs: Int
    var generating = true
    var stopped = false
    /// The event loop's shared report timer (interval mode; nil when readings go as fast as ACKs allow).
    let wheel: ReportWheel?
    var finished: EventLoopPromise<Void>
    var isFinished = false

    init(name: String, kind: Hello.ClientKind, vehicles: [SimulatedVehicle], startTimeMs: Int64,
         eventLoop: any EventLoop, settings: FleetSettings, sslContext: NIOSSLContext, stats: FleetStats,
         localAddress: SocketAddress?, seed: UInt64, wheel: ReportWheel?) {
        self.name = name
        self.wheel = wheel
        self.kind = kind
        self.eventLoop = eventLoop
        self.settings = settings
        self.sslContext = sslContext
        self.stats = stats
        self.localAddress = localAddress
        self.fleet = Fleet(vehicles: vehicles, clocks: Array(repeating: startTimeMs, count: vehicles.count),
                           partial: Array(repeating: [], count: vehicles.count),
                           partialBase: Array(repeating: startTimeMs, count: vehicles.count))
        self.random = SimRandom(seed: seed)
        self.backoffMs = settings.initialBackoffMs
        self.finished = eventLoop.makePromise()
    }

    // MARK: Connection

    /// The SNI name of a market under a domain: `ae.telemetry.example.com` (Deploy/haproxy/horgos.cfg).
    static func sniName(market: String, domain: String) -> String {
        "\(market.lowercased()).telemetry.\(domain)"
    }

    func connect() {
        guard !stopped else { return }
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        let context = sslContext
        let market = fleet.vehicles.first?.region.code
        let serverName =
            settings.sniDomain.flatMap { domain in market.map { Self.sniName(market: $0, domain: domain) } }
            ?? settings.serverName
        var bootstrap = ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let tls = try NIOSSLClientHandler(context: context, serverHostname: serverName)
                    try channel.pipeline.syncOperations.addHandler(tls)
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(FrameChannelDecoder(maxPayload: 1 << 20)))
                    try channel.pipeline.syncOperations.addHandler(UnitHandler(unit: loopBound))
                }
            }
        if let localAddress { bootstrap = bootstrap.bind(to: localAddress) }
        bootstrap.connect(host: settings.host, port: settings.port).whenComplete { result in
            let unit = loopBound.value
            switch result {
            case .success(let channel):
                unit.channel = channel
                unit.stats.update { $0.connects += 1 }
            case .failure:
                unit.stats.update { $0.handshakeFailures += 1 }
                unit.scheduleReconnect()
            }
        }
    }

    func handshakeCompleted(_ channel: any Channel) {
        // The connect future's callback may not have run yet: take the channel from the handshake.
        self.channel = channel
        stats.update {
            $0.connected += 1
            $0.peakConnected = max($0.peakConnected, $0.connected)
        }
        var bytes: [UInt8] = []
        FrameEncoder.appendHello(
            Hello(clientKind: kind, clientTimeMs: settings.nowMs(), softwareVersion: "horgos-sim/1"), to: &bytes)
        write(bytes, flush: true)
    }

    func disconnected(wasConnected: Bool) {
        channel = nil
        welcomed = false
        if wasConnected { stats.update { $0.connected -= 1; $0.disconnects += 1 } }
        // Everything not acknowledged goes back to the front of the queue, to be renumbered and resent.
        if !inFlight.isEmpty {
            stats.update { $0.resentFrames += self.inFlight.count }
            for index in inFlight.indices { inFlight[index].resends += 1 }
            pending.insert(contentsOf: inFlight, at: 0)
            inFlight.removeAll()
        }
        nextSequence = 1
        if stopped || (!generating && pending.isEmpty) {
            finish()
        } else {
            scheduleReconnect()
        }
    }

    func scheduleReconnect() {
        guard !stopped else { return finish() }
        let jitter = 0.8 + random.unit() * 0.4
        let delay = Int64(Double(backoffMs) * jitter)
        backoffMs = min(settings.maxBackoffMs, backoffMs * 2)
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        eventLoop.scheduleTask(in: .milliseconds(delay)) { loopBound.value.connect() }
    }

    // MARK: Frames from the server

    func received(_ frame: InboundFrame) {
        let result: Result<Message?, FrameError> = frame.bytes.withUnsafeReadableBytes { raw in
            do {
                let view = FrameView(
                    header: frame.header,
                    payload: UnsafeRawBufferPointer(rebasing: raw[WireFormat.headerSize..<(frame.header.frameLength - 4)]))
                switch frame.header.type {
                case .welcome, .ack, .error, .ping, .pong, .bye: return .success(try view.message())
                default: return .success(nil)
                }
            } catch {
                return .failure(error as! FrameError)
            }
        }
        guard case .success(let message?) = result else {
            channel?.close(promise: nil)
            return
        }
        switch message {
        case .welcome(let welcome):
            window = Int(welcome.ackWindow)
            welcomed = true
            backoffMs = settings.initialBackoffMs
            startReporting()
            pump()
        case .ack(let ack):
            acknowledged(ack)
        case .error(let error):
            let name = error.knownCode?.name ?? "0x\(String(error.rawCode, radix: 16))"
            stats.update { $0.errors[name, default: 0] += 1 }
        case .ping(let opaque):
            var bytes: [UInt8] = []
            FrameEncoder.appendPing(opaque, type: .pong, to: &bytes)
            write(bytes, flush: true)
        case .bye:
            channel?.close(promise: nil)
        default:
            break
        }
    }

    func acknowledged(_ ack: Ack) {
        let now = settings.monotonicNanos()
        var frames = 0
        var records = 0
        var latencies: [UInt64] = []
        while let first = inFlight.first, first.sequence <= ack.sequence {
            inFlight.removeFirst()
            frames += 1
            records += first.records.count
            latencies.append((now - first.sentAtNanos) / 1000)
            settings.ackLedger?.acknowledged(
                vin: first.vin.description,
                timestampsMs: first.records.map { first.baseTimeMs + Int64($0.timeOffsetMs) })
        }
        stats.update {
            $0.framesAcked += frames
            $0.recordsAcked += records
            $0.recordsRejected += Int(ack.rejectedRecords)
            stats.recordLatencies(latencies, in: &$0)
        }
        pump()
        if !generating && pending.isEmpty && inFlight.isEmpty { sayBye() }
    }

    // MARK: Generating and sending

    func startReporting() {
        guard generating, settings.reportIntervalMs > 0, let wheel else { return }
        wheel.add(self, phase: random.unit())
    }

    /// Interval mode: every vehicle of the unit takes one reading.
    func reportTick() {
        guard generating else { return }
        for index in fleet.vehicles.indices { takeReading(vehicle: index) }
        pump()
    }

    func takeReading(vehicle index: Int) {
        let seconds = Double(max(settings.reportIntervalMs, 1000)) / 1000
        let time = fleet.clocks[index]
        fleet.clocks[index] += Int64(seconds * 1000)
        if fleet.partial[index].isEmpty { fleet.partialBase[index] = time }
        let base = fleet.partialBase[index]
        fleet.partial[index].append(fleet.vehicles[index].step(seconds: seconds, timeOffsetMs: UInt32(time - base)))
        stats.update { $0.recordsGenerated += 1 }
        if fleet.partial[index].count >= settings.recordsPerFrame {
            pending.append(PendingFrame(vin: fleet.vehicles[index].vin, baseTimeMs: base, records: fleet.partial[index]))
            fleet.partial[index].removeAll(keepingCapacity: true)
        }
    }

    /// Sends queued frames while the window has room; in fast mode, makes frames to fill it.
    func pump() {
        guard welcomed, channel != nil else { return }
        var bytes: [UInt8] = []
        while inFlight.count < window {
            if pending.isEmpty {
                guard generating, settings.reportIntervalMs == 0, !fleet.vehicles.isEmpty else { break }
                let index = fleet.nextVehicle
                fleet.nextVehicle = (index + 1) % fleet.vehicles.count
                for _ in 0..<settings.recordsPerFrame { takeReading(vehicle: index) }
                if pending.isEmpty { break }
            }
            var frame = pending.removeFirst()
            frame.sequence = nextSequence
            nextSequence += 1
            frame.sentAtNanos = settings.monotonicNanos()
            FrameEncoder.appendTelemetry(vin: frame.vin, baseTimeMs: frame.baseTimeMs, records: frame.records,
                                         sequence: frame.sequence, to: &bytes)
            inFlight.append(frame)
            stats.update { $0.framesSent += 1 }
        }
        if !bytes.isEmpty { write(bytes, flush: true) }
    }

    func write(_ bytes: [UInt8], flush: Bool) {
        guard let channel else { return }
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        if flush { channel.writeAndFlush(buffer, promise: nil) } else { channel.write(buffer, promise: nil) }
    }

    // MARK: Churn and stopping

    /// Drops the connection abruptly (no BYE), as a unit losing coverage would.
    func dropConnection() {
        channel?.close(promise: nil)
    }

    /// Stops generating; the unit keeps sending until everything is acknowledged, then says BYE.
    func stopGenerating() {
        generating = false
        wheel?.remove(self)
        if pending.isEmpty && inFlight.isEmpty { sayBye() }
    }

    /// Gives up: closes now whatever is outstanding.
    func stopNow() {
        stopped = true
        generating = false
        wheel?.remove(self)
        if let channel { channel.close(promise: nil) } else { finish() }
    }

    func sayBye() {
        stopped = true
        guard let channel else { return finish() }
        guard welcomed else {
            // The session never started (no WELCOME yet): BYE would not be the first frame; just close.
            channel.close(promise: nil)
            return
        }
        var bytes: [UInt8] = []
        FrameEncoder.appendBye(Bye(reason: .normal), to: &bytes)
        write(bytes, flush: true)
        eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
    }

    func finish() {
        stopped = true
        guard !isFinished else { return }
        isFinished = true
        stats.update { $0.finishedUnits += 1 }
        finished.succeed(())
    }

    /// Frames generated and not yet acknowledged.
    var outstandingFrames: Int { pending.count + inFlight.count }
}

/// The channel handler of a simulated unit: forwards events to the unit on its event loop.
final class UnitHandler: ChannelInboundHandler {
    typealias InboundIn = InboundFrame

    let unit: NIOLoopBound<SimulatedUnit>
    var handshakeDone = false

    init(unit: NIOLoopBound<SimulatedUnit>) { self.unit = unit }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls {
            handshakeDone = true
            unit.value.handshakeCompleted(context.channel)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        unit.value.received(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        unit.value.disconnected(wasConnected: handshakeDone)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !handshakeDone { unit.value.stats.update { $0.handshakeFailures += 1 } }
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension UnitHandler: Sendable {}
