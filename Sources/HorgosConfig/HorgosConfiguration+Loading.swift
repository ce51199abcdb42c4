import HorgosPKI
import Configuration
import Foundation
import HorgosWire
import Logging
import Synchronization
import SystemPackage
import Yams

extension HorgosConfiguration {
    /// Where the daemon looks for its file when `--config` is not given.
    public static let defaultFilePath = "/etc/horgos/horgosd.yaml"

    /// Reads the configuration: `HORGOS_...` environment variables override the YAML file, which overrides
    /// the defaults.
    ///
    /// - Parameters:
    ///   - filePath: an explicitly chosen file (`--config`), which must exist; nil means
    ///     ``defaultFilePath``, which may be missing (defaults are used then).
    ///   - environment: the process environment; only `HORGOS_` variables are read.
    ///   - warn: told of each `HORGOS_` variable that names no key (with the closest key): a warning, not an
    ///     error, since scripts set `HORGOS_` variables of their own.
    /// - Throws: ``HorgosConfigurationError`` naming the key, the value and what is allowed; a key in the
    ///   file that is not a configuration key is ``HorgosConfigurationError/Code/unknownKey``, naming the
    ///   closest valid key (a misspelled key would otherwise leave its default in force unnoticed).
    public static func load(
        filePath: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        warn: (String) -> Void = { _ in }
    ) async throws(HorgosConfigurationError) -> HorgosConfiguration {
        let path = filePath ?? defaultFilePath
        let explicit = filePath != nil
        let exists = FileManager.default.fileExists(atPath: path)
        if explicit && !exists {
            throw HorgosConfigurationError(
                code: .fileNotFound, key: path, value: nil,
                allowed: "give an existing YAML file to --config, or leave it out to use the defaults")
        }
        var providers: [any ConfigProvider] = [
            EnvironmentVariablesProvider(environmentVariables: environment).prefixKeys(with: "horgos")
        ]
        var fileKeys: [String] = []
        if exists {
            do {
                providers.append(try await FileProvider<YAMLSnapshot>(filePath: FilePath(path)))
                fileKeys = try ConfigurationKeys.keys(ofYAML: String(contentsOfFile: path, encoding: .utf8))
            } catch {
                throw HorgosConfigurationError(
                    code: .unreadableFile, key: path, value: String(describing: error),
                    allowed: "fix the YAML (a mapping of the documented keys)")
            }
        }
        let known = ConfigurationKeys()
        let configuration = try HorgosConfiguration(reader: ConfigReader(providers: providers), keys: known)
        try known.check(fileKeys)
        for warning in known.environmentWarnings(environment) { warn(warning) }
        return configuration
    }

    /// Builds and validates a configuration from any swift-configuration reader (keys as documented on
    /// ``HorgosConfiguration``); missing keys take their defaults.
    public init(reader: ConfigReader) throws(HorgosConfigurationError) {
        try self.init(reader: reader, keys: ConfigurationKeys())
    }

    /// As ``init(reader:)``, noting every key read in `known` (the set of valid keys, see
    /// ``ConfigurationKeys``).
    init(reader: ConfigReader, keys known: ConfigurationKeys) throws(HorgosConfigurationError) {
        let keys = KeyReader(reader: reader, known: known)
        let defaults = HorgosConfiguration()
        self = defaults

        stateDirectory = try keys.string("state_directory", default: defaults.stateDirectory)
        if stateDirectory.isEmpty {
            throw .invalid("state_directory", stateDirectory, "use a non-empty directory path")
        }
        regions = try keys.regions("regions", default: defaults.regions)

        listen.telemetry = try keys.address("listen.telemetry", default: defaults.listen.telemetry)
        if listen.telemetry.unixSocketPath != nil {
            throw .invalid(
                "listen.telemetry", listen.telemetry.description, "use host:port (vehicles connect over TCP)")
        }
        listen.admin = try keys.address("listen.admin", default: defaults.listen.admin)
        let proxyText = try keys.string("listen.proxy_protocol", default: defaults.listen.proxyProtocol.rawValue)
        guard let proxyMode = ProxyProtocolMode(rawValue: proxyText) else {
            throw .invalid("listen.proxy_protocol", proxyText, "use off or v2")
        }
        listen.proxyProtocol = proxyMode

        tls.caCertificate = try keys.string("tls.ca_certificate", default: "")
        tls.serverCertificate = try keys.string("tls.server_certificate", default: "")
        tls.serverKey = try keys.string("tls.server_key", default: "")
        tls.revocationList = try keys.string("tls.revocation_list", default: "")
        tls.crlFiles = try keys.strings("tls.crl")
        if tls.crlFiles.contains(where: \.isEmpty) {
            throw .invalid("tls.crl", tls.crlFiles.joined(separator: ","), "list CRL file paths, none empty")
        }
        tls.development = try keys.bool("tls.development", default: false)
        let groupNames = try keys.strings("tls.key_exchange_groups")
        if !groupNames.isEmpty {
            var groups: [KeyExchangeGroup] = []
            for name in groupNames {
                guard let group = KeyExchangeGroup(rawValue: name.lowercased()), !groups.contains(group) else {
                    throw .invalid(
                        "tls.key_exchange_groups", name,
                        "list each of " + KeyExchangeGroup.allCases.map(\.rawValue).joined(separator: ", ")
                            + " at most once")
                }
                groups.append(group)
            }
            tls.keyExchangeGroups = groups
        }
        if !tls.usesDevelopmentPKI {
            for (key, value) in [
                ("tls.ca_certificate", tls.caCertificate), ("tls.server_certificate", tls.serverCertificate),
                ("tls.server_key", tls.serverKey),
            ] where value.isEmpty {
                throw .invalid(
                    key, value,
                    "set tls.ca_certificate, tls.server_certificate and tls.server_key together, "
                        + "or leave all three empty for a development PKI")
            }
        }

        let l = defaults.limits
        limits.handshakeTimeoutSeconds = try keys.int(
            "limits.handshake_timeout_seconds", default: l.handshakeTimeoutSeconds, in: 1...3600)
        limits.heartbeatIntervalSeconds = try keys.int(
            "limits.heartbeat_interval_seconds", default: l.heartbeatIntervalSeconds, in: 1...3600)
        limits.idleTimeoutSeconds = try keys.int(
            "limits.idle_timeout_seconds", default: l.idleTimeoutSeconds, in: 1...86400)
        if limits.idleTimeoutSeconds <= limits.heartbeatIntervalSeconds {
            throw .invalid(
                "limits.idle_timeout_seconds", String(limits.idleTimeoutSeconds),
                "use more than limits.heartbeat_interval_seconds (\(limits.heartbeatIntervalSeconds))")
        }
        limits.maxPayloadBytes = try keys.int(
            "limits.max_payload_bytes", default: l.maxPayloadBytes, in: 1024...1_048_576)
        limits.maxConnections = try keys.int(
            "limits.max_connections", default: l.maxConnections, in: 1...10_000_000)
        limits.maxConnectionsPerAddress = try keys.int(
            "limits.max_connections_per_address", default: l.maxConnectionsPerAddress, in: 1...limits.maxConnections)
        limits.ackWindow = try keys.int("limits.ack_window", default: l.ackWindow, in: 1...1024)
        limits.adminMaxConnections = try keys.int(
            "limits.admin_max_connections", default: l.adminMaxConnections, in: 1...1024)
        limits.adminIdleTimeoutSeconds = try keys.int(
            "limits.admin_idle_timeout_seconds", default: l.adminIdleTimeoutSeconds, in: 1...3600)
        limits.maxBufferedBytes = try keys.int(
            "limits.max_buffered_bytes", default: l.maxBufferedBytes, in: (1 << 20)...(1 << 40))

        queue.highWatermarkBytes = try keys.int(
            "queue.high_watermark_bytes", default: defaults.queue.highWatermarkBytes, in: 1024...(1 << 34))
        queue.lowWatermarkBytes = try keys.int(
            "queue.low_watermark_bytes", default: defaults.queue.lowWatermarkBytes,
            in: 0...(queue.highWatermarkBytes - 1),
            allowed: "use an integer in 0...\(queue.highWatermarkBytes - 1) (below queue.high_watermark_bytes)")

        let durabilityText = try keys.string("store.durability", default: defaults.store.durability.rawValue)
        guard let durability = Durability(rawValue: durabilityText) else {
            throw .invalid("store.durability", durabilityText, "use disk, process or replicated")
        }
        store.durability = durability
        let s = defaults.store
        store.commitIntervalMilliseconds = try keys.int(
            "store.commit_interval_ms", default: s.commitIntervalMilliseconds, in: 0...10000)
        store.commitMaxRows = try keys.int("store.commit_max_rows", default: s.commitMaxRows, in: 1...10_000_000)
        store.retentionDays = try keys.int("store.retention_days", default: s.retentionDays, in: 1...36500)
        store.lateHorizonDays = try keys.int("store.late_horizon_days", default: s.lateHorizonDays, in: 0...3650)
        store.futureHorizonHours = try keys.int(
            "store.future_horizon_hours", default: s.futureHorizonHours, in: 0...8760)
        store.applyIntervalMilliseconds = try keys.int(
            "store.apply_interval_ms", default: s.applyIntervalMilliseconds, in: 0...60000)
        store.appliers = try keys.int("store.appliers", default: s.appliers, in: 0...256)
        store.journalSegmentBytes = try keys.int(
            "journal.segment_bytes", default: s.journalSegmentBytes, in: (1 << 20)...(1 << 30))
        store.journalMaxBytes = try keys.int(
            "journal.max_bytes", default: s.journalMaxBytes, in: (2 * store.journalSegmentBytes)...(1 << 40),
            allowed: "use an integer of at least twice journal.segment_bytes (\(2 * store.journalSegmentBytes))")
        store.journalMaxDelayMicroseconds = try keys.int(
            "journal.max_delay_us", default: s.journalMaxDelayMicroseconds, in: 0...100_000)
        store.journalReserveBytes = try keys.int(
            "journal.reserve_bytes", default: min(s.journalReserveBytes, store.journalMaxBytes),
            in: 0...store.journalMaxBytes,
            allowed: "use an integer in 0...\(store.journalMaxBytes) (at most journal.max_bytes; 0 keeps no reserve)")
        store.integrityCheckIntervalSeconds = try keys.int(
            "store.integrity_check_interval_seconds", default: s.integrityCheckIntervalSeconds, in: 0...86_400)

        shutdown.drainTimeoutSeconds = try keys.int(
            "shutdown.drain_timeout_seconds", default: defaults.shutdown.drainTimeoutSeconds, in: 0...3600)

        let levelText = try keys.string("log.level", default: defaults.log.level.rawValue)
        guard let level = Logger.Level(rawValue: levelText) else {
            throw .invalid(
                "log.level", levelText, "use " + Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))
        }
        log.level = level

        gbt32960 = try GBT32960Settings(keys: keys, regions: regions)
        stream = try StreamSettings(keys: keys, regions: regions, journalMaxBytes: store.journalMaxBytes)
        if store.durability == .replicated && !stream.isEnabled {
            throw .invalid(
                "store.durability", "replicated",
                "set stream.servers (replicated waits for the NATS JetStream stream), or use disk")
        }
        for region in regions {
            let override = try RegionPolicyOverride(keys: keys, region: region)
            if !override.isEmpty { policies[region] = override }
        }
        audit.path = try keys.string("audit.path", default: "")
        known.note("nodes")
        if let list = reader.stringArray(forKey: ConfigKey("nodes")) {
            nodes = list.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        } else if let single = reader.string(forKey: ConfigKey("nodes")) {
            nodes = single.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
    }
}

/// Reads keys as text and parses them here, so every bad value gets one consistent message whether it came
/// from YAML or from the environment.
struct KeyReader {
    let reader: ConfigReader
    /// Every key read is a valid key (the strict check compares the file's keys with these).
    let known: ConfigurationKeys

    func string(_ key: String, default defaultValue: String) throws(HorgosConfigurationError) -> String {
        known.note(key)
        if let value = reader.string(forKey: ConfigKey(key)) {
            return value.trimmingCharacters(in: .whitespaces)
        }
        if let list = reader.stringArray(forKey: ConfigKey(key)) {
            throw .invalid(key, list.joined(separator: ","), "use a single value, not a list")
        }
        return defaultValue
    }

    func int(
        _ key: String, default defaultValue: Int, in range: ClosedRange<Int>, allowed: String? = nil
    ) throws(HorgosConfigurationError) -> Int {
        let text = try string(key, default: String(defaultValue))
        guard let value = Int(text), range.contains(value) else {
            throw .invalid(key, text, allowed ?? "use an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    func bool(_ key: String, default defaultValue: Bool) throws(HorgosConfigurationError) -> Bool {
        let text = try string(key, default: defaultValue ? "true" : "false")
        switch text.lowercased() {
        case "true", "yes", "1": return true
        case "false", "no", "0": return false
        default: throw .invalid(key, text, "use true or false")
        }
    }

    /// A list: a YAML sequence, or one comma-separated string (the environment's form); absent: empty.
    func strings(_ key: String) throws(HorgosConfigurationError) -> [String] {
        known.note(key)
        if let list = reader.stringArray(forKey: ConfigKey(key)) {
            return list.map { $0.trimmingCharacters(in: .whitespaces) }
        }
        if let single = reader.string(forKey: ConfigKey(key)) {
            return single.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        return []
    }

    func address(_ key: String, default defaultValue: ListenAddress) throws(HorgosConfigurationError)
        -> ListenAddress
    {
        let text = try string(key, default: defaultValue.description)
        guard let address = ListenAddress(parsing: text) else {
            throw .invalid(key, text, "use host:port or [ipv6]:port with a port in 0...65535, or unix:/absolute/path")
        }
        return address
    }

    func regions(_ key: String, default defaultValue: [String]) throws(HorgosConfigurationError) -> [String] {
        known.note(key)
        let raw: [String]
        if let list = reader.stringArray(forKey: ConfigKey(key)) {
            raw = list
        } else if let single = reader.string(forKey: ConfigKey(key)) {
            raw = single.split(separator: ",").map(String.init)
        } else {
            return defaultValue
        }
        var seen: Set<String> = []
        var result: [String] = []
        for entry in raw {
            let code = entry.trimmingCharacters(in: .whitespaces)
            guard Region.isValidCode(code) else {
                throw .invalid(key, code, "use ISO 3166-1 alpha-2 codes in upper case, such as AE or MX")
            }
            guard seen.insert(code).inserted else {
                throw .invalid(key, code, "list each region once")
            }
            result.append(code)
        }
        if result.isEmpty {
            throw .invalid(key, raw.joined(separator: ","), "list at least one region")
        }
        return result
    }
}
