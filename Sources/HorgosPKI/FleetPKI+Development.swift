import Foundation

/// The file names of a development PKI inside its directory (`<state>/pki`).
public struct DevelopmentPKIPaths: Sendable, Hashable {
    /// The directory holding the files (mode 0700).
    public var directory: String
    /// `ca.pem`
    public var caCertificate: String { directory + "/ca.pem" }
    /// `ca-key.pem` (mode 0600)
    public var caPrivateKey: String { directory + "/ca-key.pem" }
    /// `server.pem`
    public var serverCertificate: String { directory + "/server.pem" }
    /// `server-key.pem` (mode 0600)
    public var serverKey: String { directory + "/server-key.pem" }
    /// `revoked.txt`, the deny list used when `tls.revocation_list` is empty (optional).
    public var revocationList: String { directory + "/revoked.txt" }

    /// Paths under `directory`.
    public init(directory: String) {
        self.directory = directory
    }
}

/// What ``FleetPKI/ensureDevelopmentPKI(in:serverNames:)`` found or made.
public struct DevelopmentPKI: Sendable {
    /// Where the files are.
    public var paths: DevelopmentPKIPaths
    /// The CA, able to issue vehicle and gateway certificates for tests and demos.
    public var authority: FleetPKI
    /// True when this call created the files (the daemon logs a warning then).
    public var created: Bool
}

extension FleetPKI {
    /// Makes sure a development CA and server certificate exist in `directory`; creates them on first use
    /// and reuses them afterwards (so vehicle certificates issued from it stay valid across restarts).
    ///
    /// Not for production: the CA key sits beside the daemon. If only some files exist (an interrupted
    /// first start), the missing server certificate is reissued from the existing CA; a missing CA means
    /// everything is made anew.
    public static func ensureDevelopmentPKI(
        in directory: String,
        serverNames: [String] = []
    ) throws(FleetPKIError) -> DevelopmentPKI {
        let paths = DevelopmentPKIPaths(directory: directory)
        let files = FileManager.default
        try PKIFiles.makeDirectory(directory)
        var created = false
        let authority: FleetPKI
        if files.fileExists(atPath: paths.caCertificate) && files.fileExists(atPath: paths.caPrivateKey) {
            authority = try FleetPKI(caCertificatePath: paths.caCertificate, caPrivateKeyPath: paths.caPrivateKey)
        } else {
            authority = try FleetPKI.createCertificateAuthority(commonName: "Horgos Fleet CA (development)")
            try authority.write(certificatePath: paths.caCertificate, privateKeyPath: paths.caPrivateKey)
            try? files.removeItem(atPath: paths.serverCertificate)
            created = true
        }
        if !(files.fileExists(atPath: paths.serverCertificate) && files.fileExists(atPath: paths.serverKey)) {
            let server = try authority.issueServerCertificate(names: serverNames)
            try server.write(certificatePath: paths.serverCertificate, privateKeyPath: paths.serverKey)
            created = true
        }
        return DevelopmentPKI(paths: paths, authority: authority, created: created)
    }
}
