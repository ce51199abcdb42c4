import Foundation
import HorgosGBT32960
import HorgosWire
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// How a simulated GB/T 32960 fleet runs (`horgos-sim --protocol gbt32960`).
public struct GBT32960FleetSettings: Sendable {
    public var host = "127.0.0.1"
    public var port = 7325
    public var serverName = "localhost"
    /// Simulated vehicles.
    public var vehicles = 10
    /// Platform connections carrying all vehicles (0: one connection per vehicle).
    public var platforms = 0
    /// Milliseconds between two realtime reports of a vehicle (at least 1,000: one collection time a second).
    public var intervalMs = 1000
    /// Realtime frames after which a unit drops its connection, reconnects, logs in again and
    /// reissues (0x03) every frame still unanswered (0: never).
    public var reconnectEvery = 0
    /// A heartbeat every this many report rounds.
    public var heartbeatEvery = 30
    public var regions: [SimulatedRegion] = SimulatedRegion.all
    public var seed: UInt64 = 1
    /// The units' time base (seconds east of UTC; the standard's Beijing time by default).
    public var utcOffsetSeconds = GBT32960Format.beijingUTCOffsetSeconds
    /// The edition the units speak: 2016 (`##`) or 2025 (`$$`: its login, data layout and a
    /// placeholder signature, which Horgos reads but does not verify).
    public var edition = GBT32960Edition.edition2016
    /// `edition` by its year, 2016 or 2025 (the simulator's `--gbt-edition`).
    public var editionYear: Int {
        get { edition == .edition2025 ? 2025 : 2016 }
        set { edition = newValue == 2025 ? .edition2025 : .edition2016 }
    }

    public init() {}
}

/// The outcome of a GB/T 32960 fleet run.
public struct GBT32960FleetReport: Sendable, Codable {
    public var mode: String
    public var vehicles: Int
    public var connections: Int
    public var seconds: Double
    public var framesSent: Int
    /// Realtime and reissue frames answered success (each one durable on the server).
    public var framesAnswered: Int
    public var reissued: Int
    public var logins: Int
    public var heartbeats: Int
    public var reconnects: Int
    /// Error answers and failures by name.
    public var errors: [String: Int]
    /// Realtime/reissue frames never answered.
    public var outstandingFrames: Int
    public var framesPerSecond: Double
    public var answerLatencyP99Ms: Double
}

/// Counters shared by the units of a run.
final class GBT32960FleetCounters: Sendable {
    struct Values {
        var sent = 0, answered = 0, reissued = 0, logins = 0, heartbeats = 0, reconnects = 0
        var errors: [String: Int] = [:]
        var latenciesUs: [UInt64] = []
    }
    let values = Mutex(Values())
    func update(_ body: (inout Values) -> Void) { values.withLock { body(&$0) } }
}

/// Runs a simulated GB/T 32960 fleet: vehicles (each its own certificate) or platforms (gateway
/// certificates, 0x05 login, many VINs each); login, realtime every interval, heartbeats, and
/// after a reconnect a reissue of everything not yet answered, as real units keep it in flash.
public final class GBT32960FleetRunner: Sendable {
    let settings: GBT32960FleetSettings
    let credentials: any FleetCredentials
    let group: MultiThreadedEventLoopGroup

    public init(settings: GBT32960FleetSettings, credentials: any FleetCredentials, threads: Int = 0) {
        self.settings = settings
        self.credentials = credentials
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads > 0 ? threads : System.coreCount)
    }

    /// Generates traffic for `duration`, then waits up to `drainTimeout` for every answer.
    public func run(duration: Duration, drainTimeout: Duration) async throws -> GBT32960FleetReport {
        let counters = GBT32960FleetCounters()
        var units: [GBT32960SimulatedUnit] = []
        let apportioned = SimulatedRegion.apportion(settings.vehicles, over: settings.regions)
        var index = 0
        for (region, count) in apportioned where count > 0 {
            let vehicles = (0..<count).map { offset -> SimulatedVehicle in
                let vin = VINFactory.vin(index: index + offset, seed: settings.seed &+ 0x3296)
                return SimulatedVehicle(vin: vin, region: region, seed: settings.seed &+ UInt64(index + offset))
            }
            index += count
            if settings.platforms > 0 {
                let perRegion = max(1, min(count, settings.platforms * count / max(1, settings.vehicles)))
                for part in 0..<perRegion {
                    let share = stride(from: part, to: vehicles.count, by: perRegion).map { vehicles[$0] }
                    let context = try credentials.gatewayContext(name: "gbt-platform-\(region.code)-\(part)", market: region.code)
                    units.append(GBT32960SimulatedUnit(
                        vehicles: share, platform: true, context: context, settings: settings, counters: counters,
                        eventLoop: group.next()))
                }
            } else {
                for vehicle in vehicles {
                    let context = try credentials.vehicleContext(vin: vehicle.vin, market: region.code)
                    units.append(GBT32960SimulatedUnit(
                        vehicles: [vehicle], platform: false, context: context, settings: settings, counters: counters,
                        eventLoop: group.next()))
                }
            }
        }
        let clock = ContinuousClock()
        let started = clock.now
        for unit in units { unit.start() }
        try await Task.sleep(for: duration)
        // Stopped on each unit's own loop before the drain looks: no round may start after the check.
        for unit in units { try await unit.stopGenerating() }
        let deadline = clock.now + drainTimeout
        while clock.now < deadline, units.contains(where: { $0.outstanding > 0 }) {
            try await Task.sleep(for: .milliseconds(50))
        }
        let elapsed = clock.now - started
        let outstanding = units.reduce(0) { $0 + $1.outstanding }
        for unit in units { unit.close() }
        try? await group.shutdownGracefully()
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return counters.values.withLock { v in
            let sorted = v.latenciesUs.sorted()
            let p99 = sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
            return GBT32960FleetReport(
                mode: settings.platforms > 0 ? "platforms" : "vehicles", vehicles: settings.vehicles,
                connections: units.count, seconds: seconds, framesSent: v.sent, framesAnswered: v.answered,
                reissued: v.reissued, logins: v.logins, heartbeats: v.heartbeats, reconnects: v.reconnects,
                errors: v.errors, outstandingFrames: outstanding, framesPerSecond: Double(v.answered) / seconds,
                answerLatencyP99Ms: Double(p99) / 1000)
        }
    }
}

/// One simulated GB/T 32960 connection (a vehicle's TBox, or a platform carrying many vehicles).
/// Everything runs on its event loop.
final class GBT32960SimulatedUnit: @unchecked Sendable {
    var vehicles: [SimulatedVehicle]
    let platform: Bool
    let context: NIOSSLContext
    let settings: GBT32960FleetSettings
    let counters: GBT32960FleetCounters
    let eventLoop: any EventLoop
    var channel: (any Channel)?
    /// Unanswered realtime/reissue frames by (VIN, collection time): bytes and send time.
    var pending: [[UInt8]: (frame: [UInt8], sentNs: UInt64)] = [:]
    var generating = true
    var rounds = 0
    var sinceReconnect = 0
    var lastSecond: Int64 = 0
    var buffer: [UInt8] = []
    let outstandingCount = Atomic<Int>(0)

    init(
        vehicles: [SimulatedVehicle], platform: Bool, context: NIOSSLContext, settings: GBT32960FleetSettings,
        counters: GBT32960FleetCounters, eventLoop: any EventLoop
    ) {
        self.vehicles = vehicles
        self.platform = platform
        self.context = context
        self.settings = settings
        self.counters = counters
        self.eventLoop = eventLoop
        // Spread the reconnects over the interval: a whole fleet reconnecting at once is a handshake storm.
        if settings.reconnectEvery > 0 { sinceReconnect = -Int.random(in: 0..<settings.reconnectEvery) }
    }

    var outstanding: Int { outstandingCount.load(ordering: .relaxed) }

    func start() { eventLoop.execute { self.connect(reissue: false) } }

    func stopGenerating() async throws { try await eventLoop.submit { self.generating = false }.get() }

    func close() { eventLoop.execute { self.channel?.close(promise: nil) } }

    func connect(reissue: Bool) {
        let handler = GBT32960SimulatedUnitHandler(unit: self)
        ClientBootstrap(group: eventLoop)
            .channelInitializer { [context, settings] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        try NIOSSLClientHandler(context: context, serverHostname: settings.serverName))
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: settings.host, port: settings.port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    self.channel = channel
                    self.loggedIn(reissue: reissue)
                case .failure(let error):
                    self.counters.update { $0.errors["connect: \(type(of: error))", default: 0] += 1 }
                    self.eventLoop.scheduleTask(in: .seconds(1)) { self.connect(reissue: reissue) }
                }
            }
    }

    func now() -> GBT32960Time {
        GBT32960Time(epochSeconds: Int64(Date().timeIntervalSince1970), utcOffsetSeconds: settings.utcOffsetSeconds)
    }

    func frame(_ command: GBT32960Command, vin: GBT32960VINField, _ body: (inout [UInt8]) -> Void = { _ in }) -> [UInt8] {
        var out: [UInt8] = []
        GBT32960Encoder.appendFrame(edition: settings.edition, command: command, vin: vin, to: &out, dataUnit: body)
        return out
    }

    func send(_ bytes: [UInt8]) {
        guard let channel else { return }
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        channel.writeAndFlush(buffer, promise: nil)
    }

    /// Logs in (platform, then every vehicle), reissues what is unanswered, and starts reporting.
    func loggedIn(reissue: Bool) {
        let time = now()
        if platform {
            send(frame(.platformLogin, vin: GBT32960VINField(padding: "HORGOSSIM")) {
                GBT32960Encoder.appendPlatformLogin(time: time, sequence: 1, username: "sim", password: "sim", to: &$0)
            })
        }
        for vehicle in vehicles {
            let iccid = Array("89860000000000000000".utf8)
            send(frame(.vehicleLogin, vin: GBT32960VINField(vehicle.vin)) {
                if settings.edition == .edition2025 {
                    GBT32960Encoder.appendVehicleLogin2025(
                        time: time, sequence: 1, iccid: iccid, packCodes: [[Array("1".utf8)]], to: &$0)
                } else {
                    GBT32960Encoder.appendVehicleLogin(
                        time: time, sequence: 1, iccid: iccid, subsystemCodes: [Array("1".utf8)], to: &$0)
                }
            })
        }
        counters.update { $0.logins += self.vehicles.count }
        if reissue {
            for (key, entry) in pending {
                var bytes = entry.frame
                if bytes[2] == GBT32960Command.realtime.rawValue {
                    bytes[2] = GBT32960Command.reissue.rawValue
                    bytes[bytes.count - 1] ^= GBT32960Command.realtime.rawValue ^ GBT32960Command.reissue.rawValue
                }
                pending[key] = (bytes, entry.sentNs)
                send(bytes)
            }
            counters.update { $0.reissued += self.pending.count }
        }
        scheduleReport()
    }

    func scheduleReport() {
        eventLoop.scheduleTask(in: .milliseconds(Int64(max(1000, settings.intervalMs)))) { self.report() }
    }

    func report() {
        guard let channel, channel.isActive else { return }
        guard generating else { return }
        let epoch = Int64(Date().timeIntervalSince1970)
        guard epoch > lastSecond else {
            scheduleReport()
            return
        }
        lastSecond = epoch
        let time = GBT32960Time(epochSeconds: epoch, utcOffsetSeconds: settings.utcOffsetSeconds)
        rounds += 1
        for index in vehicles.indices {
            let record = vehicles[index].step(seconds: Double(max(1000, settings.intervalMs)) / 1000)
            let values = Self.values(record, seed: index + rounds, time: time, edition: settings.edition)
            let vin = GBT32960VINField(vehicles[index].vin)
            let bytes = frame(.realtime, vin: vin) { values.appendDataUnit(to: &$0) }
            pending[vin.bytes + time.bytes] = (bytes, NIODeadline.now().uptimeNanoseconds)
            send(bytes)
        }
        outstandingCount.store(pending.count, ordering: .relaxed)
        counters.update { $0.sent += self.vehicles.count }
        if settings.heartbeatEvery > 0, rounds % settings.heartbeatEvery == 0 {
            send(frame(.heartbeat, vin: GBT32960VINField(vehicles[0].vin)))
            counters.update { $0.heartbeats += 1 }
        }
        sinceReconnect += 1
        if settings.reconnectEvery > 0, sinceReconnect >= settings.reconnectEvery {
            sinceReconnect = 0
            counters.update { $0.reconnects += 1 }
            let old = channel
            self.channel = nil
            old.close(promise: nil)
            connect(reissue: true)
            return
        }
        scheduleReport()
    }

    /// A realtime report from the simulated vehicle's record (the GB/T fields Horgos's record has
    /// filled from it, the rest typical).
    static func values(
        _ r: TelemetryRecord, seed: Int, time: GBT32960Time, edition: GBT32960Edition = .edition2016
    ) -> GBT32960RealtimeValues {
        let is2025 = edition == .edition2025
        var values: GBT32960RealtimeValues =
            is2025 ? .typical2025(seed: seed, time: time) : .typical(seed: seed, time: time)
        values.vehicle?.speed = r.speedDkmh
        values.vehicle?.odometer = r.odometerHm
        values.vehicle?.voltage = r.packVoltageDv
        values.vehicle?.current = UInt16(clamping: Int(r.packCurrentDa) + (is2025 ? 30_000 : 10_000))
        values.vehicle?.soc = r.soc
        values.vehicle?.state = r.status & 1 == 1 ? 1 : 2
        values.vehicle?.charging = r.status & 2 != 0 ? 1 : 3
        values.position?.status = (r.latitudeE7 < 0 ? 2 : 0) | (r.longitudeE7 < 0 ? 4 : 0)
        values.position?.latitude = UInt32(abs(Int(r.latitudeE7)) / 10)
        values.position?.longitude = UInt32(abs(Int(r.longitudeE7)) / 10)
        let high = UInt8(clamping: Int(r.maxCellTemp) + 40), low = UInt8(clamping: Int(r.minCellTemp) + 40)
        values.extremes?.maxTemperature = high
        values.extremes?.minTemperature = low
        if is2025 {  // no extremes block: the probes carry the record's highest and lowest temperature
            values.probeSubsystems?[0].temperatures = (0..<16).map {
                $0 == 0 ? high : $0 == 1 ? low : low / 2 + high / 2
            }
        }
        values.alarms?.flags = r.alarmFlags
        values.alarms?.maxLevel = r.maxAlarmLevel == 0xFF ? 0 : r.maxAlarmLevel
        return values
    }

    /// An answer from the server.
    func answered(_ frame: [UInt8]) {
        let command = frame[2], flag = frame[3]
        if flag != GBT32960ResponseFlag.success.rawValue {
            counters.update { $0.errors["answer 0x0\(flag) to 0x0\(command)", default: 0] += 1 }
        }
        guard command == GBT32960Command.realtime.rawValue || command == GBT32960Command.reissue.rawValue,
            frame.count >= 31
        else { return }
        let key = Array(frame[4..<21]) + Array(frame[24..<30])
        guard let entry = pending.removeValue(forKey: key) else { return }
        outstandingCount.store(pending.count, ordering: .relaxed)
        let latency = (NIODeadline.now().uptimeNanoseconds - entry.sentNs) / 1000
        if flag == GBT32960ResponseFlag.success.rawValue {
            counters.update {
                $0.answered += 1
                if $0.latenciesUs.count < 1_000_000 { $0.latenciesUs.append(latency) }
            }
        }
    }

    func disconnected(_ channel: any Channel) {
        guard self.channel === channel else { return }
        self.channel = nil
        guard generating || !pending.isEmpty else { return }
        counters.update { $0.reconnects += 1 }
        eventLoop.scheduleTask(in: .milliseconds(500)) { self.connect(reissue: true) }
    }
}

/// Reads the server's answers off a simulated unit's connection.
final class GBT32960SimulatedUnitHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let unit: GBT32960SimulatedUnit
    var pending: [UInt8] = []

    init(unit: GBT32960SimulatedUnit) { self.unit = unit }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        pending += unwrapInboundIn(data).readableBytesView
        while true {
            let length: Int? = pending.withUnsafeBytes { raw in
                guard case .frame(let header)? = try? GBT32960Decoder().scan(raw) else { return nil }
                return header.frameLength
            }
            guard let length else { break }
            unit.answered(Array(pending[0..<length]))
            pending.removeFirst(length)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        unit.disconnected(context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // An error on a connection the unit already left (it closed it to reconnect) is expected.
        if unit.channel === context.channel {
            unit.counters.update { $0.errors["connection: \(error)".prefix(80).description, default: 0] += 1 }
        }
        context.close(promise: nil)
    }
}
