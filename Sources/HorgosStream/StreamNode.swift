import Foundation
import HorgosNATS
import HorgosStore
import HorgosWire
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// Everything the stream needs from the node's configuration.
public struct StreamNodeSettings: Sendable {
    public var servers: [NATSServerAddress]
    public var tls: TLSConfiguration?
    public var node: String
    public var subjectPrefix: String
    public var definition: StreamDefinition
    public var maxLagBytes: Int
    public var maxOutstanding: Int
    public var ackTimeout: TimeAmount
    /// `store.durability: replicated`: ACKs wait for JetStream's acknowledgement.
    public var replicated: Bool
    public var stateDirectory: String
    public var regions: [Region]
    public var followRegions: [Region]
    public var catchUpTimeout: TimeAmount?
    public var horizon: TimeHorizon
    /// Whether a region's entries may leave the node (issue 22's policy); default all.
    public var streams: @Sendable (Region) -> Bool

    public init(
        servers: [NATSServerAddress], tls: TLSConfiguration?, node: String, subjectPrefix: String,
        definition: StreamDefinition, maxLagBytes: Int, maxOutstanding: Int, ackTimeout: TimeAmount, replicated: Bool,
        stateDirectory: String, regions: [Region], followRegions: [Region], catchUpTimeout: TimeAmount?,
        horizon: TimeHorizon, streams: @escaping @Sendable (Region) -> Bool = { _ in true }
    ) {
        self.servers = servers
        self.tls = tls
        self.node = node
        self.subjectPrefix = subjectPrefix
        self.definition = definition
        self.maxLagBytes = maxLagBytes
        self.maxOutstanding = maxOutstanding
        self.ackTimeout = ackTimeout
        self.replicated = replicated
        self.stateDirectory = stateDirectory
        self.regions = regions
        self.followRegions = followRegions
        self.catchUpTimeout = catchUpTimeout
        self.horizon = horizon
        self.streams = streams
    }
}

/// The stream side of a node: one NATS connection on its own event-loop thread (so publishing never
/// competes with the vehicles' sessions for a loop), the publisher, and the follower when the node
/// follows regions. Made before the store (its hooks go into the store's configuration), started once
/// the store is open, stopped before the store.
public final class StreamNode: @unchecked Sendable {
    public let settings: StreamNodeSettings
    public let connection: NATSConnection
    public let publisher: StreamPublisher
    public let follower: StreamFollower?
    private let group: MultiThreadedEventLoopGroup
    private let persistence: any DispatchSourceTimer
    private let logger: Logger

    public init(settings: StreamNodeSettings, logger: Logger) throws {
        self.settings = settings
        self.logger = logger
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var options = NATSConnection.Options(
            servers: settings.servers, name: "horgosd \(settings.node)", tls: settings.tls)
        options.connectTimeout = .seconds(3)
        do {
            connection = try NATSConnection(options: options, eventLoop: group.next(), logger: logger)
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
        publisher = StreamPublisher(
            settings: .init(
                node: settings.node, subjectPrefix: settings.subjectPrefix, streamName: settings.definition.name,
                stateDirectory: settings.stateDirectory, regions: settings.regions,
                maxOutstanding: settings.maxOutstanding, maxLagBytes: settings.maxLagBytes,
                ackTimeout: settings.ackTimeout, horizon: settings.horizon, definition: settings.definition,
                streams: settings.streams),
            connection: connection, replicated: settings.replicated, logger: logger)
        if settings.followRegions.isEmpty {
            follower = nil
        } else {
            var followSettings = StreamFollower.Settings(
                node: settings.node, subjectPrefix: settings.subjectPrefix, streamName: settings.definition.name,
                regions: settings.followRegions)
            followSettings.catchUpTimeout = settings.catchUpTimeout
            follower = StreamFollower(settings: followSettings, connection: connection, logger: logger)
        }
        persistence = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "horgos-stream-published"))
        let publisher = self.publisher
        persistence.schedule(deadline: .now() + .milliseconds(250), repeating: .milliseconds(250))
        persistence.setEventHandler { publisher.persistIfChanged() }
    }

    /// What the store's configuration gets: the publisher's retention hold, its wake-up and, when
    /// `replicated`, its acknowledgement gate.
    public var journalHooks: JournalHooks {
        JournalHooks(holds: [publisher.hold], gate: publisher.gate, durable: publisher.durableCallback)
    }

    /// Connects and starts publishing and following (the store must be open).
    public func start(store: ShardStore) {
        publisher.start(store: store)
        follower?.start(store: store)
        persistence.resume()
        logger.notice(
            "stream: publishing to NATS JetStream",
            metadata: [
                "servers": "\(settings.servers.map(\.description))", "stream": "\(settings.definition.name)",
                "node": "\(settings.node)", "replicated": "\(settings.replicated)",
                "follow": "\(settings.followRegions.map(\.code))",
            ])
    }

    /// Stops following and publishing, writes the published LSNs, closes the connection and its thread.
    public func stop() async {
        if let follower { try? await follower.stop().get() }
        try? await publisher.stop().get()
        persistence.cancel()
        publisher.persistIfChanged()
        try? await connection.close().get()
        try? await group.shutdownGracefully()
    }

    /// Whether `region`'s copy may serve (`/health/CC`): true unless this node follows it and has not
    /// caught up with the stream yet.
    public func isCaughtUp(_ region: Region) -> Bool { follower?.isCaughtUp(region) ?? true }
}

/// Runs a `StreamNode` in the daemon's ServiceGroup: started after the store (whose files it reads),
/// stopped before it, after the listeners drained (so `replicated` ACKs of the drain still complete).
public struct StreamService: Service, CustomStringConvertible {
    public let node: StreamNode
    public let store: ShardStore

    public init(node: StreamNode, store: ShardStore) {
        self.node = node
        self.store = store
    }

    public var description: String { "NATS JetStream stream (\(node.settings.definition.name))" }

    public func run() async throws {
        node.start(store: store)
        try? await gracefulShutdown()
        await node.stop()
    }
}
