/// An error made of a kind (`code`, a string-backed enum the caller can switch on) and details for
/// the operator (`reason`), printed as `code: reason`.
///
/// The PKI, identity and TLS errors are this shape with their own code enums: `FleetPKIError`
/// (`FleetPKIErrorCode`), `PeerIdentityError` (`PeerIdentityErrorCode`) and `TelemetryTLSError`
/// (`TelemetryTLSErrorCode`).
public struct CodedError<Code: RawRepresentable & Hashable & Sendable>: Error, Hashable, Sendable,
    CustomStringConvertible
where Code.RawValue == String {
    /// What kind of failure.
    public var code: Code
    /// Details for the operator or the log line.
    public var reason: String

    /// An error from its parts.
    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    /// `code: reason`.
    public var description: String { "\(code.rawValue): \(reason)" }
}
