import Foundation
import HorgosWire
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// How simulated units reach the server and pace their traffic.
public struct FleetSettings: Sendable {
    public var host: String
    public var port: Int
    /// TLS server name to verify (the server certificate's SAN).
    public var serverName: String
    /// When set, each unit sends (and verifies) the SNI name `<cc>.telemetry.<domain>` of its market
    /// instead of `serverName`, so a load balancer in TLS passthrough can route it to the node that
    /// owns the region (Deploy/haproxy/horgos.cfg). The server certificate then needs that name, for
    /// example `*.telemetry.<domain>`.
    public var sniDomain: String? = nil
    /// Milliseconds between two readings of a vehicle; 0 = as fast as acknowledgements allow.
    public var reportIntervalMs: Int
    /// Records in one TELEMETRY frame.
    public var recordsPerFrame: Int
    public var initialBackoffMs: Int
    public var maxBackoffMs: Int
    public var nowMs: @Sendable () -> Int64
    public var monotonicNanos: @Sendable () -> UInt64
    /// When set, every acknowledged record is entered here (VIN and device time): the fleet's ACK
    /// ledger, which tests compare with what the shards and the stream hold.
    public var ackLedger: AckLedger? = nil

    public init(host: String = "127.0.0.1", port: Int = 7443, serverName: String = "localhost",
                reportIntervalMs: Int = 1000, recordsPerFrame: Int = 1, initialBackoffMs: Int = 1000,
                maxBackoffMs: Int = 30_000) {
        self.host = host
        self.port = port
        self.serverName = serverName
        self.reportIntervalMs = reportIntervalMs
        self.recordsPerFrame = recordsPerFrame
        self.initialBackoffMs = initialBackoffMs
        self.maxBackoffMs = maxBackoffMs
        self.nowMs = { Int64(Date().timeIntervalSince1970 * 1000) }
        self.monotonicNanos = { DispatchTime.now().uptimeNanoseconds }
    }
}

/// Who the simulated fleet is: how many vehicles, in which regions, over which kind of connection.
public struct FleetPlan: Sendable {
    /// One connection per vehicle, or a number of gateway connections carrying all vehicles.
    public enum Mode: Sendable, Hashable {
        case vehicles
        case gateways(Int)
    }

    public var mode: Mode
    public var vehicleCount: Int
    public var regions: [SimulatedRegion]
    public var seed: UInt64
    /// Local source addresses to spread connections over (e.g. 127.0.0.2...), past the ephemeral port limit.
    public var sourceAddresses: [String]

    public init(mode: Mode, vehicleCount: Int, regions: [SimulatedRegion] = SimulatedRegion.all, seed: UInt64 = 1,
                sourceAddresses: [String] = []) {
        self.mode = mode
        self.vehicleCount = vehicleCount
        self.regions = regions
        self.seed = seed
        self.sourceAddresses = sourceAddresses
    }

    /// The vehicles of the fleet, each with its region, in a reproducible order.
    public func vehicles() -> [SimulatedVehicle] {
        var result: [SimulatedVehicle] = []
        result.reserveCapacity(vehicleCount)
        for (region, count) in SimulatedRegion.apportion(vehicleCount, over: regions) {
            for _ in 0..<count {
                let index = result.count
                result.append(SimulatedVehicle(vin: VINFactory.vin(index: index, seed: seed), region: region,
                                               seed: seed &+ UInt64(index) &* 7919))
            }
        }
        return result
    }
}

/// Makes the TLS client contexts the simulated units present (one per vehicle, or per gateway).
public protocol FleetCredentials: Sendable {
    func vehicleContext(vin: VIN, market: String) throws -> NIOSSLContext
    func gatewayContext(name: String, market: String) throws -> NIOSSLContext
}

/// The outcome of a fleet run.
public struct FleetReport: Sendable, Codable {
    public var mode: String
    public var vehicles: Int
    public var connections: Int
    public var seconds: Double
    public var framesPerSecond: Double
    public var recordsPerSecond: Double
    /// Frames generated but never acknowledged when the run ended (0 after a clean drain).
    public var outstandingFrames: Int
    public var vehiclesByRegion: [String: Int]
    public var totals: FleetSnapshot
}

/// Runs a simulated fleet against a server and measures it.
public final class FleetRunner: Sendable {
    let plan: FleetPlan
    let settings: FleetSettings
    let credentials: any FleetCredentials
    let group: MultiThreadedEventLoopGroup
    public let stats = FleetStats()

    public init(plan: FleetPlan, settings: FleetSettings, credentials: any FleetCredentials, threads: Int = 0) {
        self.plan = plan
        self.settings = settings
        self.credentials = credentials
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: threads > 0 ? threads : System.coreCount)
    }

    /// Connects the fleet (waiting at most `rampTimeout` for every unit), streams for `duration`, drains (waits for every ACK up to `drainTimeout`),
    /// and reports. `progress` is called about once a second; `churnPerMinute` is the fraction of
    /// connections dropped abruptly each minute (they reconnect and resend).
    public func run(
        duration: Duration, connectRatePerSecond: Int = 2000, churnPerMinute: Double = 0,
        drainTimeout: Duration = .seconds(30), rampTimeout: Duration = .seconds(60), progress: @Sendable (FleetSnapshot, Double) -> Void = { _, _ in },
        phase: @Sendable (FleetPhase, FleetSnapshot) -> Void = { _, _ in }
    ) async throws -> FleetReport {
        let vehicles = plan.vehicles()
        let startTime = settings.nowMs() - (settings.reportIntervalMs == 0 ? 3_600_000 : 0)
        var units: [NIOLoopBound<SimulatedUnit>] = []
        var index = 0
        // One report timer per event loop for every unit on it (interval mode).
        var wheels: [ObjectIdentifier: NIOLoopBound<ReportWheel>] = [:]
        if settings.reportIntervalMs > 0 {
            for loop in group.makeIterator() {
                let interval = settings.reportIntervalMs
                wheels[ObjectIdentifier(loop)] = try await loop.submit {
                    NIOLoopBound(ReportWheel(eventLoop: loop, intervalMs: interval), eventLoop: loop)
                }.get()
            }
        }
        func makeUnit(name: String, kind: Hello.ClientKind, members: [SimulatedVehicle], context: NIOSSLContext)
            async throws -> NIOLoopBound<SimulatedUnit>
        {
            let loop = group.next()
            let source = plan.sourceAddresses.isEmpty
                ? nil : try SocketAddress(ipAddress: plan.sourceAddresses[index % plan.sourceAddresses.count], port: 0)
            let settings = self.settings
            let stats = self.stats
            let seed = plan.seed &+ UInt64(index)
            let wheel = wheels[ObjectIdentifier(loop)]
            index += 1
            return try await loop.submit {
                NIOLoopBound(
                    SimulatedUnit(name: name, kind: kind, vehicles: members, startTimeMs: startTime, eventLoop: loop,
                                  settings: settings, sslContext: context, stats: stats, localAddress: source, seed: seed,
                                  wheel: wheel?.value),
                    eventLoop: loop)
            }.get()
        }
        switch plan.mode {
        case .vehicles:
            for vehicle in vehicles {
                let context = try credentials.vehicleContext(vin: vehicle.vin, market: vehicle.region.code)
                units.append(try await makeUnit(name: vehicle.vin.description, kind: .vehicle, members: [vehicle],
                                                context: context))
            }
        case .gateways(let count):
            // Each gateway serves one market: spread the gateways over regions by weight, then the
            // vehicles of each region over its gateways.
            let byRegion = Dictionary(grouping: vehicles, by: \.region.code)
            let gatewayShares = SimulatedRegion.apportion(max(1, count), over: plan.regions).filter { $0.1 > 0 }
            for (region, gateways) in gatewayShares {
                let members = byRegion[region.code] ?? []
                for gateway in 0..<gateways {
                    let slice = stride(from: gateway, to: members.count, by: gateways).map { members[$0] }
                    guard !slice.isEmpty else { continue }
                    let name = "gw-\(region.code.lowercased())-\(gateway + 1)"
                    let context = try credentials.gatewayContext(name: name, market: region.code)
                    units.append(try await makeUnit(name: name, kind: .gateway, members: slice, context: context))
                }
            }
        }
        let clock = ContinuousClock()
        // Connect at a bounded rate so the server sees a realistic ramp, not a SYN flood.
        let perTick = max(1, connectRatePerSecond / 10)
        for (offset, unit) in units.enumerated() {
            unit.eventLoop.execute { unit.value.connect() }
            if offset % perTick == perTick - 1 { try await Task.sleep(for: .milliseconds(100)) }
        }
        // The measured phase starts once the fleet is connected (or the ramp took too long).
        let rampStarted = clock.now
        while stats.snapshot().connected < units.count && clock.now - rampStarted < rampTimeout {
            try await Task.sleep(for: .milliseconds(50))
        }
        let started = clock.now
        stats.setMeasuring(true)
        phase(.measuring, stats.snapshot())
        var random = SimRandom(seed: plan.seed ^ 0xC0FFEE)
        while clock.now - started < duration {
            try await Task.sleep(for: .seconds(1))
            progress(stats.snapshot(), seconds(clock.now - started))
            if churnPerMinute > 0 {
                let drops = Int((Double(units.count) * churnPerMinute / 60).rounded(.up))
                for _ in 0..<min(drops, units.count) {
                    let unit = units[Int(random.next() % UInt64(units.count))]
                    unit.eventLoop.execute { unit.value.dropConnection() }
                }
            }
        }
        let generationSeconds = seconds(clock.now - started)
        stats.setMeasuring(false)
        phase(.draining, stats.snapshot())
        for unit in units { unit.eventLoop.execute { unit.value.stopGenerating() } }
        let drainStarted = clock.now
        while stats.finishedUnits < units.count && clock.now - drainStarted < drainTimeout {
            try await Task.sleep(for: .milliseconds(100))
        }
        var outstanding = 0
        for unit in units {
            outstanding += try await unit.eventLoop.submit {
                let frames = unit.value.outstandingFrames
                unit.value.stopNow()
                return frames
            }.get()
        }
        let totals = stats.snapshot()
        try await group.shutdownGracefully()
        var byRegion: [String: Int] = [:]
        for vehicle in vehicles { byRegion[vehicle.region.code, default: 0] += 1 }
        let modeName: String
        switch plan.mode {
        case .vehicles: modeName = "vehicle"
        case .gateways: modeName = "gateway"
        }
        return FleetReport(
            mode: modeName, vehicles: vehicles.count, connections: units.count, seconds: generationSeconds,
            framesPerSecond: Double(totals.framesAcked) / generationSeconds,
            recordsPerSecond: Double(totals.recordsAcked) / generationSeconds, outstandingFrames: outstanding,
            vehiclesByRegion: byRegion, totals: totals)
    }

    private func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

/// The phases of a fleet run that `FleetRunner.run` announces (the load run samples the daemon at each).
public enum FleetPhase: String, Sendable {
    /// Every unit is connected (or the ramp timed out): the measured phase starts.
    case measuring
    /// The measured phase is over: units stop generating and wait for their last ACKs.
    case draining
}

/// Every record a simulated fleet saw acknowledged: per VIN, the device times (ms) of its acknowledged
/// records. Thread-safe; filled by the units on their event loops.
public final class AckLedger: Sendable {
    private let records = Mutex<[String: Set<Int64>]>([:])
    private let times = Mutex<[UInt64]>([])

    public init() {}

    /// Enters the records of one acknowledged frame.
    public func acknowledged(vin: String, timestampsMs: [Int64]) {
        records.withLock { $0[vin, default: []].formUnion(timestampsMs) }
        let now = DispatchTime.now().uptimeNanoseconds
        times.withLock { $0.append(now) }
    }

    /// When each acknowledged frame was entered (`DispatchTime` uptime ns), in order: a gap is a time
    /// without ACKs (a failover's recovery time).
    public var acknowledgementTimesNs: [UInt64] { times.withLock { $0 } }

    /// The ledger now: VIN to the device times of its acknowledged records.
    public var entries: [String: Set<Int64>] { records.withLock { $0 } }

    /// Acknowledged records in all.
    public var count: Int { records.withLock { $0.values.reduce(0) { $0 + $1.count } } }
}
