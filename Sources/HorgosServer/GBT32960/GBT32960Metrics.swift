import HorgosGBT32960
import Metrics
import Synchronization

/// The GB/T 32960 listener's metrics (swift-metrics, rendered at `/metrics`).
///
/// `horgos_gbt32960_frames_total{command}`, `horgos_gbt32960_answers_total{command,response}`,
/// `horgos_gbt32960_errors_total{reason}` (decode errors by name, and session refusals such as
/// `vin_not_allowed`, `login_required`, `vin_revoked`), `horgos_gbt32960_encrypted_refused_total`,
/// `horgos_gbt32960_values_out_of_range_total{field}` (a value outside the standard's range, stored as not
/// available). Label sets are bounded (commands, flags, reasons and fields are closed lists). Sessions,
/// refusals, records and the answer latency are the pipeline's metrics with `protocol="gbt32960"`
/// (``PipelineMetrics``).
public final class GBT32960Metrics: Sendable {
    private let frames: [UInt8: Counter]
    private let answers: [Int: Counter]
    private let errors = Mutex<[String: Counter]>([:])
    private let encrypted = Counter(label: "horgos_gbt32960_encrypted_refused_total")
    private let outOfRangeFields = GBT32960ValueField.allCases.map {
        Counter(label: "horgos_gbt32960_values_out_of_range_total", dimensions: [("field", $0.name)])
    }

    public init() {
        var frames: [UInt8: Counter] = [:]
        var answers: [Int: Counter] = [:]
        for command in GBT32960Command.allCases {
            frames[command.rawValue] = Counter(
                label: "horgos_gbt32960_frames_total", dimensions: [("command", command.name)])
            for flag in [GBT32960ResponseFlag.success, .error, .vinDuplicate] {
                answers[Int(command.rawValue) << 8 | Int(flag.rawValue)] = Counter(
                    label: "horgos_gbt32960_answers_total",
                    dimensions: [("command", command.name), ("response", Self.name(flag))])
            }
        }
        self.frames = frames
        self.answers = answers
        for name in GBT32960Error.allNames + ["vin_revoked", "vin_duplicate", "outside_horizon", "server_busy"] {
            _ = counter(errors, "horgos_gbt32960_errors_total", "reason", name)
        }
    }

    static func name(_ flag: GBT32960ResponseFlag) -> String {
        switch flag {
        case .success: "success"
        case .error: "error"
        case .vinDuplicate: "vin_duplicate"
        case .command: "command"
        }
    }

    private func counter(_ cache: borrowing Mutex<[String: Counter]>, _ label: String, _ key: String, _ value: String) -> Counter {
        cache.withLock { cache in
            if let counter = cache[value] { return counter }
            let counter = Counter(label: label, dimensions: [(key, value)])
            cache[value] = counter
            return counter
        }
    }

    func frameReceived(_ command: GBT32960Command) { frames[command.rawValue]?.increment() }

    func answerSent(_ command: GBT32960Command, _ flag: GBT32960ResponseFlag) {
        answers[Int(command.rawValue) << 8 | Int(flag.rawValue)]?.increment()
    }

    func error(_ reason: String) {
        counter(errors, "horgos_gbt32960_errors_total", "reason", reason).increment()
        if reason == "encrypted_data_unit" { encrypted.increment() }
    }

    /// Counts each field of one report that was outside its range.
    func outOfRange(_ fields: GBT32960OutOfRange) {
        guard !fields.isEmpty else { return }
        for field in GBT32960ValueField.allCases where fields.contains(field) {
            outOfRangeFields[field.rawValue].increment()
        }
    }
}
