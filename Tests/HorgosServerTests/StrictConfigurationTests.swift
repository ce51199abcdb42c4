import Foundation
import HorgosConfig
import Testing

/// Configuration keys are strict (issue 19): a key in the file that the daemon does not read stops startup
/// with exit 78 naming it and the closest valid key; an unknown `HORGOS_*` variable is a warning that names
/// the closest key. The shipped configuration still loads.
@Suite struct StrictConfigurationTests {
    static func write(_ yaml: String) throws -> String {
        let directory = try makeTemporaryDirectory()
        let path = directory + "/horgosd.yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test(arguments: [
        ("store:\n  duribility: process\n", "store.duribility", "store.durability"),
        ("limits:\n  ack_windw: 32\n", "limits.ack_windw", "limits.ack_window"),
        ("stor:\n  durability: disk\n", "stor.durability", "store.durability"),
        ("regoins: [AE]\n", "regoins", "regions"),
        ("listen:\n  gbt3296: 127.0.0.1:7325\n", "listen.gbt3296", "listen.gbt32960"),
        ("gbt32960:\n  max_error: 5\n", "gbt32960.max_error", "gbt32960.max_errors"),
    ])
    func aMisspelledKeyIsRefusedNamingItAndTheClosestValidKey(yaml: String, key: String, nearest: String) async throws {
        let path = try Self.write(yaml)
        do {
            _ = try await HorgosConfiguration.load(filePath: path, environment: [:])
            Issue.record("\(key) was accepted")
        } catch {
            #expect(error.code == .unknownKey)
            #expect(error.key == key)
            #expect(error.description == "\(key): unknown key; the nearest valid key is \(nearest) (see Deploy/horgosd.yaml)")
        }
    }

    @Test func aSectionWithEveryKeyCommentedOutIsNotAMistake() async throws {
        let path = try Self.write("gbt32960:\n  # max_errors: 3\nstore:\n  durability: process\n")
        let configuration = try await HorgosConfiguration.load(filePath: path, environment: [:])
        #expect(configuration.store.durability == .process)
    }

    @Test func anUnknownHorgosVariableIsAWarningNamingTheClosestKey() async throws {
        var warnings: [String] = []
        let configuration = try await HorgosConfiguration.load(
            filePath: nil,
            environment: [
                "HORGOS_STORE_DURIBILITY": "process", "HORGOS_LIMITS_ACK_WINDOW": "32", "HORGOS_TEST_HOOKS": "1",
                "PATH": "/usr/bin",
            ]
        ) { warnings.append($0) }
        #expect(configuration.store.durability == .disk)  // the misspelled variable was not applied
        #expect(configuration.limits.ackWindow == 32)
        #expect(warnings == [
            "environment variable HORGOS_STORE_DURIBILITY is not a configuration key and is ignored; the nearest "
                + "is HORGOS_STORE_DURABILITY (store.durability)"
        ])
    }

    @Test func theShippedConfigurationLoadsStrictly() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let shipped = root.appendingPathComponent("Deploy/horgosd.yaml").path
        var warnings: [String] = []
        let configuration = try await HorgosConfiguration.load(filePath: shipped, environment: [:]) {
            warnings.append($0)
        }
        #expect(configuration.stateDirectory == "/var/lib/horgos")
        #expect(warnings.isEmpty)
        // Every key the shipped file documents is one the loader reads: none is silently ignored.
        let keys = try ConfigurationKeys.keys(ofYAML: String(contentsOfFile: shipped, encoding: .utf8))
        #expect(keys.count >= 30)
    }
}
