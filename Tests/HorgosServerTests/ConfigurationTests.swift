import HorgosPKI
import Configuration
import Foundation
import Logging
import Testing

@testable import HorgosServer

/// Reads a configuration from environment variables only (no file).
private func configuration(env: [String: String]) async throws(HorgosConfigurationError) -> HorgosConfiguration {
    try await HorgosConfiguration.load(filePath: nil, environment: env)
}

/// Asserts that loading fails with an invalid-value error for `key` and returns the message.
private func expectInvalid(
    _ env: [String: String], key: String, sourceLocation: SourceLocation = #_sourceLocation
) async -> String? {
    do {
        _ = try await configuration(env: env)
        Issue.record("expected \(key) to be refused", sourceLocation: sourceLocation)
        return nil
    } catch {
        #expect(error.code == .invalidValue, sourceLocation: sourceLocation)
        #expect(error.key == key, sourceLocation: sourceLocation)
        return error.description
    }
}

private func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "horgos-test-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite struct ConfigurationTests {
    @Test func everyKeyHasItsDocumentedDefaultWhenNothingIsConfigured() async throws {
        // The default path (/etc/horgos/horgosd.yaml) does not exist on test machines: defaults apply.
        let c = try await configuration(env: [:])
        #expect(c.stateDirectory == "./horgos-state")
        #expect(c.regions.count == 41)
        #expect(c.regions.first == "AE" && c.regions.last == "NO")
        #expect(c.listen.telemetry == ListenAddress(host: "127.0.0.1", port: 7443))
        #expect(c.listen.admin == ListenAddress(host: "127.0.0.1", port: 9477))
        #expect(c.tls.usesDevelopmentPKI)
        #expect(c.tls.revocationList == "")
        #expect(
            c.limits
                == .init(
                    handshakeTimeoutSeconds: 10, idleTimeoutSeconds: 90, heartbeatIntervalSeconds: 30,
                    maxPayloadBytes: 65536, maxConnections: 100_000, maxConnectionsPerAddress: 2000,
                    ackWindow: 64))
        #expect(c.queue.highWatermarkBytes == 8_388_608)
        #expect(c.queue.lowWatermarkBytes == 4_194_304)
        #expect(c.store.durability == .disk)
        #expect(c.store.commitIntervalMilliseconds == 20)
        #expect(c.store.commitMaxRows == 20000)
        #expect(c.store.retentionDays == 90)
        #expect(c.store.lateHorizonDays == 7)
        #expect(c.store.futureHorizonHours == 24)
        #expect(c.store.applyIntervalMilliseconds == 500)
        #expect(c.store.appliers == 0)
        #expect(c.store.journalSegmentBytes == 64 << 20)
        #expect(c.store.journalMaxBytes == 1 << 30)
        #expect(c.store.journalMaxDelayMicroseconds == 0)
        #expect(c.shutdown.drainTimeoutSeconds == 20)
        #expect(c.log.level == .info)
        #expect(c.effectiveTLSFiles.ca == "./horgos-state/pki/ca.crt")
        #expect(c.effectiveRevocationListPath == "./horgos-state/pki/revoked.txt")
    }

    @Test func environmentVariablesOverrideKeys() async throws {
        let c = try await configuration(env: [
            "HORGOS_LIMITS_ACK_WINDOW": "128",
            "HORGOS_STORE_DURABILITY": "process",
            "HORGOS_REGIONS": "AE, MX,AU",
            "HORGOS_LISTEN_TELEMETRY": "[::1]:0",
            "HORGOS_STATE_DIRECTORY": "/var/lib/horgos",
            "HORGOS_LOG_LEVEL": "debug",
            "UNRELATED_LIMITS_ACK_WINDOW": "5",
        ])
        #expect(c.limits.ackWindow == 128)
        #expect(c.store.durability == .process)
        #expect(c.regions == ["AE", "MX", "AU"])
        #expect(c.listen.telemetry == ListenAddress(host: "::1", port: 0))
        #expect(c.listen.telemetry.description == "[::1]:0")
        #expect(c.stateDirectory == "/var/lib/horgos")
        #expect(c.log.level == .debug)
    }

    @Test func yamlFileIsReadAndEnvironmentWinsOverIt() async throws {
        let directory = try temporaryDirectory()
        let path = directory + "/horgosd.yaml"
        try """
        state_directory: /srv/horgos
        regions: [KZ, UZ]
        listen:
          admin: 127.0.0.1:19477
        limits:
          ack_window: 32
          max_payload_bytes: 2048
        store:
          durability: process
          commit_interval_ms: 10
        tls:
          ca_certificate: /etc/horgos/ca.pem
          server_certificate: /etc/horgos/server.pem
          server_key: /etc/horgos/server-key.pem
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let c = try await HorgosConfiguration.load(filePath: path, environment: ["HORGOS_LIMITS_ACK_WINDOW": "256"])
        #expect(c.stateDirectory == "/srv/horgos")
        #expect(c.regions == ["KZ", "UZ"])
        #expect(c.listen.admin.port == 19477)
        #expect(c.limits.ackWindow == 256)
        #expect(c.limits.maxPayloadBytes == 2048)
        #expect(c.store.durability == .process)
        #expect(c.store.commitIntervalMilliseconds == 10)
        #expect(!c.tls.usesDevelopmentPKI)
        #expect(c.effectiveTLSFiles.key == "/etc/horgos/server-key.pem")
        #expect(c.store.retentionDays == 90)  // untouched keys keep their defaults
    }

    @Test func explicitlyGivenMissingFileIsAnError() async {
        do {
            _ = try await HorgosConfiguration.load(filePath: "/nonexistent/horgosd.yaml", environment: [:])
            Issue.record("a missing --config file must be refused")
        } catch {
            #expect(error.code == .fileNotFound)
            #expect(error.key == "/nonexistent/horgosd.yaml")
        }
    }

    @Test func malformedYAMLIsAnUnreadableFileError() async throws {
        let path = try temporaryDirectory() + "/bad.yaml"
        try "limits: [unclosed".write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try await HorgosConfiguration.load(filePath: path, environment: [:])
            Issue.record("malformed YAML must be refused")
        } catch {
            #expect(error.code == .unreadableFile)
        }
    }

    @Test func badDurabilityNamesKeyValueAndAlternatives() async {
        let message = await expectInvalid(["HORGOS_STORE_DURABILITY": "fast"], key: "store.durability")
        #expect(message == "store.durability: \"fast\" is not allowed; use disk or process")
    }

    @Test(arguments: [
        ("HORGOS_LIMITS_ACK_WINDOW", "0", "limits.ack_window"),
        ("HORGOS_LIMITS_ACK_WINDOW", "1025", "limits.ack_window"),
        ("HORGOS_LIMITS_ACK_WINDOW", "many", "limits.ack_window"),
        ("HORGOS_LIMITS_MAX_PAYLOAD_BYTES", "1023", "limits.max_payload_bytes"),
        ("HORGOS_LIMITS_MAX_PAYLOAD_BYTES", "1048577", "limits.max_payload_bytes"),
        ("HORGOS_LIMITS_HANDSHAKE_TIMEOUT_SECONDS", "0", "limits.handshake_timeout_seconds"),
        ("HORGOS_LIMITS_HEARTBEAT_INTERVAL_SECONDS", "0", "limits.heartbeat_interval_seconds"),
        ("HORGOS_LIMITS_IDLE_TIMEOUT_SECONDS", "30", "limits.idle_timeout_seconds"),  // not above heartbeat
        ("HORGOS_LIMITS_MAX_CONNECTIONS", "0", "limits.max_connections"),
        ("HORGOS_LIMITS_MAX_CONNECTIONS_PER_ADDRESS", "100001", "limits.max_connections_per_address"),
        ("HORGOS_QUEUE_LOW_WATERMARK_BYTES", "8388608", "queue.low_watermark_bytes"),  // equal to high
        ("HORGOS_QUEUE_HIGH_WATERMARK_BYTES", "10", "queue.high_watermark_bytes"),
        ("HORGOS_STORE_COMMIT_INTERVAL_MS", "-1", "store.commit_interval_ms"),
        ("HORGOS_STORE_COMMIT_MAX_ROWS", "0", "store.commit_max_rows"),
        ("HORGOS_STORE_RETENTION_DAYS", "0", "store.retention_days"),
        ("HORGOS_STORE_LATE_HORIZON_DAYS", "-3", "store.late_horizon_days"),
        ("HORGOS_STORE_FUTURE_HORIZON_HOURS", "9000", "store.future_horizon_hours"),
        ("HORGOS_STORE_APPLY_INTERVAL_MS", "60001", "store.apply_interval_ms"),
        ("HORGOS_STORE_APPLIERS", "-1", "store.appliers"),
        ("HORGOS_JOURNAL_SEGMENT_BYTES", "1000", "journal.segment_bytes"),
        ("HORGOS_JOURNAL_MAX_BYTES", "100000000", "journal.max_bytes"),  // below twice the segment size
        ("HORGOS_JOURNAL_MAX_DELAY_US", "100001", "journal.max_delay_us"),
        ("HORGOS_SHUTDOWN_DRAIN_TIMEOUT_SECONDS", "3601", "shutdown.drain_timeout_seconds"),
        ("HORGOS_LOG_LEVEL", "verbose", "log.level"),
        ("HORGOS_LISTEN_TELEMETRY", "7443", "listen.telemetry"),
        ("HORGOS_LISTEN_ADMIN", "127.0.0.1:70000", "listen.admin"),
        ("HORGOS_LISTEN_ADMIN", "::1:9477", "listen.admin"),
        ("HORGOS_STATE_DIRECTORY", " ", "state_directory"),
        ("HORGOS_REGIONS", "AE,mx", "regions"),
        ("HORGOS_REGIONS", "AE,USA", "regions"),
        ("HORGOS_REGIONS", "AE,AE", "regions"),
        ("HORGOS_TLS_CA_CERTIFICATE", "/etc/horgos/ca.pem", "tls.server_certificate"),
    ])
    func eachValidationRefusesItsBadValue(variable: String, value: String, key: String) async {
        let message = await expectInvalid([variable: value], key: key)
        #expect(message?.hasPrefix("\(key): \"") == true)
        #expect(message?.contains("is not allowed; ") == true)
    }

    @Test func rangeMessageStatesTheAllowedRange() async {
        let message = await expectInvalid(["HORGOS_LIMITS_ACK_WINDOW": "0"], key: "limits.ack_window")
        #expect(message == "limits.ack_window: \"0\" is not allowed; use an integer in 1...1024")
    }

    @Test func lowWatermarkMayBeLoweredWithHighWatermark() async throws {
        let c = try await configuration(env: [
            "HORGOS_QUEUE_HIGH_WATERMARK_BYTES": "65536", "HORGOS_QUEUE_LOW_WATERMARK_BYTES": "32768",
        ])
        #expect(c.queue.highWatermarkBytes == 65536)
        #expect(c.queue.lowWatermarkBytes == 32768)
    }

    @Test func listenAddressParsing() {
        #expect(ListenAddress(parsing: "0.0.0.0:7443") == ListenAddress(host: "0.0.0.0", port: 7443))
        #expect(ListenAddress(parsing: "[::]:1") == ListenAddress(host: "::", port: 1))
        #expect(ListenAddress(parsing: "localhost:0") == ListenAddress(host: "localhost", port: 0))
        #expect(ListenAddress(parsing: ":7443") == nil)
        #expect(ListenAddress(parsing: "[::1]7443") == nil)
        #expect(ListenAddress(parsing: "host:-1") == nil)
    }
}
