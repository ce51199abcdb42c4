import HorgosConfig
import Testing

/// Issue 20's keys: defaults that need no NATS, and exit-78 refusals that name the key.
@Suite struct StreamConfigurationTests {
    static func load(_ env: [String: String]) async throws(HorgosConfigurationError) -> HorgosConfiguration {
        try await HorgosConfiguration.load(filePath: nil, environment: env)
    }

    static func refusal(_ env: [String: String]) async -> HorgosConfigurationError? {
        do {
            _ = try await load(env)
            return nil
        } catch {
            return error
        }
    }

    @Test func withoutStreamServersThereIsNoStreamAndDiskStaysTheDefault() async throws {
        let configuration = try await Self.load([:])
        #expect(!configuration.stream.isEnabled && configuration.stream.servers.isEmpty)
        #expect(configuration.store.durability == .disk)
        #expect(configuration.stream.subjectPrefix == "horgos" && configuration.stream.name == "HORGOS")
        #expect(configuration.stream.replicas == 3 && configuration.stream.maxOutstanding == 1024)
        #expect(configuration.stream.maxLagBytes == 256 << 20 && configuration.stream.followRegions.isEmpty)
        #expect(StreamSettingsProbe.isIdentifier(configuration.stream.nodeID), "the host name as node.id")
    }

    @Test func theStreamKeysAreReadFromTheEnvironment() async throws {
        let configuration = try await Self.load([
            "HORGOS_REGIONS": "AE,SA,MX", "HORGOS_STREAM_SERVERS": "nats://10.0.0.1:4222,tls://u:p@nats-2:4223",
            "HORGOS_NODE_ID": "node-a", "HORGOS_STORE_DURABILITY": "replicated",
            "HORGOS_STREAM_SUBJECT_PREFIX": "fleet.eu",
            "HORGOS_STREAM_NAME": "FLEET_EU", "HORGOS_STREAM_REPLICAS": "5", "HORGOS_STREAM_MAX_LAG_BYTES": "1048576",
            "HORGOS_STREAM_MAX_OUTSTANDING": "64", "HORGOS_FOLLOW_REGIONS": "SA,MX",
            "HORGOS_FOLLOW_CATCH_UP_TIMEOUT_SECONDS": "0",
        ])
        #expect(configuration.stream.servers == ["nats://10.0.0.1:4222", "tls://u:p@nats-2:4223"])
        #expect(configuration.stream.nodeID == "node-a" && configuration.store.durability == .replicated)
        #expect(configuration.stream.subjectPrefix == "fleet.eu" && configuration.stream.name == "FLEET_EU")
        #expect(configuration.stream.replicas == 5 && configuration.stream.maxLagBytes == 1_048_576)
        #expect(configuration.stream.followRegions == ["SA", "MX"] && configuration.stream.catchUpTimeoutSeconds == 0)
    }

    @Test(
        arguments: [
            (["HORGOS_STORE_DURABILITY": "replicated"], "store.durability"),
            (["HORGOS_STORE_DURABILITY": "quorum"], "store.durability"),
            (["HORGOS_STREAM_SERVERS": "http://nats:4222"], "stream.servers"),
            (["HORGOS_STREAM_SERVERS": "nats://nats:99999"], "stream.servers"),
            (["HORGOS_NODE_ID": "node a"], "node.id"),
            (["HORGOS_NODE_ID": String(repeating: "n", count: 33)], "node.id"),
            (["HORGOS_STREAM_SUBJECT_PREFIX": "horgos.*"], "stream.subject_prefix"),
            (["HORGOS_STREAM_SUBJECT_PREFIX": "a..b"], "stream.subject_prefix"),
            (["HORGOS_STREAM_NAME": "HOR.GOS"], "stream.name"),
            (["HORGOS_STREAM_REPLICAS": "0"], "stream.replicas"),
            (["HORGOS_STREAM_MAX_LAG_BYTES": "2147483648"], "stream.max_lag_bytes"),
            (["HORGOS_STREAM_MAX_OUTSTANDING": "0"], "stream.max_outstanding"),
            (["HORGOS_STREAM_TLS_CA_CERTIFICATE": "/nonexistent/ca.pem"], "stream.tls_ca_certificate"),
            (["HORGOS_STREAM_SERVERS": "nats://n:4222", "HORGOS_FOLLOW_REGIONS": "ZZ"], "follow.regions"),
            (["HORGOS_FOLLOW_REGIONS": "AE"], "follow.regions"),
        ] as [([String: String], String)])
    func aBadStreamKeyIsRefusedNamingTheKey(environment: [String: String], key: String) async throws {
        let error = try #require(await Self.refusal(environment))
        #expect(error.code == .invalidValue && error.key == key, "\(error)")
    }
}

/// `StreamSettings`' identifier rule, as the tests need it.
enum StreamSettingsProbe {
    static func isIdentifier(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 32
            && text.unicodeScalars.allSatisfy { CharacterSetProbe.idCharacters.contains($0) }
    }
}

enum CharacterSetProbe {
    static let idCharacters: Set<Unicode.Scalar> = Set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_".unicodeScalars)
}
