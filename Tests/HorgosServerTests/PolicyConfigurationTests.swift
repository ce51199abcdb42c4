import Foundation
import HorgosConfig
import Testing

/// The per-region policy keys (`policy.<CC>.*`) and `audit.path` (issue 22).
@Suite struct PolicyConfigurationTests {
    static func load(_ env: [String: String]) async throws(HorgosConfigurationError) -> HorgosConfiguration {
        try await HorgosConfiguration.load(filePath: nil, environment: env)
    }

    @Test func everyRegionHasTheDefaultPolicyUnlessItsKeysSaySo() async throws {
        let c = try await Self.load(["HORGOS_REGIONS": "AE,DE,RU", "HORGOS_STORE_RETENTION_DAYS": "60"])
        #expect(c.policies.isEmpty)
        #expect(c.policy(for: "DE") == RegionPolicy(retentionDays: 60, stream: true, backup: true, positionDecimals: 7))
        #expect(c.effectiveAuditPath == "./horgos-state/audit.log")
    }

    @Test func policyKeysFromYAMLAndTheEnvironmentOverrideTheDefaultsPerRegion() async throws {
        let path = NSTemporaryDirectory() + "horgos-policy-\(UUID().uuidString).yaml"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try """
            state_directory: /srv/horgos
            regions: [AE, DE, RU]
            store:
              retention_days: 90
            policy:
              RU:
                stream: false
                backup: false
              DE:
                retention_days: 30
            audit:
              path: /var/log/horgos/audit.log
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let c = try await HorgosConfiguration.load(
            filePath: path, environment: ["HORGOS_POLICY_AE_POSITION_DECIMALS": "3"])
        #expect(c.policy(for: "RU") == RegionPolicy(retentionDays: 90, stream: false, backup: false))
        #expect(c.policy(for: "DE") == RegionPolicy(retentionDays: 30))
        #expect(c.policy(for: "AE") == RegionPolicy(retentionDays: 90, positionDecimals: 3))
        #expect(c.policy(for: "AE").summary == "retention 90 d, stream yes, backup yes, positions 3 decimals")
        #expect(c.effectiveAuditPath == "/var/log/horgos/audit.log")
    }

    @Test(arguments: [
        ("HORGOS_POLICY_DE_RETENTION_DAYS", "0", "policy.DE.retention_days", "use an integer in 1...36500"),
        ("HORGOS_POLICY_DE_RETENTION_DAYS", "thirty", "policy.DE.retention_days", "use an integer in 1...36500"),
        ("HORGOS_POLICY_DE_STREAM", "sometimes", "policy.DE.stream", "use true or false"),
        ("HORGOS_POLICY_DE_BACKUP", "2", "policy.DE.backup", "use true or false"),
        ("HORGOS_POLICY_DE_POSITION_DECIMALS", "8", "policy.DE.position_decimals", "use 0...7 decimal places"),
    ])
    func aBadPolicyValueIsRefusedNamingTheKey(variable: String, value: String, key: String, allowed: String) async {
        do {
            _ = try await Self.load(["HORGOS_REGIONS": "AE,DE", variable: value])
            Issue.record("\(key): \(value) must be refused")
        } catch {
            #expect(error.code == .invalidValue && error.key == key)
            #expect(error.description.hasPrefix("\(key): \"\(value)\" is not allowed; \(allowed)"))
        }
    }
}
