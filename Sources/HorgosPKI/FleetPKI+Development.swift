import Foundation

/// The file names of a development PKI inside its directory (`<state>/pki`): the names of the
/// production layout (`horgosctl pki init`, Deploy/pki-bootstrap.sh, Proto/PROTOCOL.md section 1.1).
public struct DevelopmentPKIPaths: Sendable, Hashable {
    /// The directory holding the files (mode 0700).
    public var directory: String
    /// `ca.crt`
    public var caCertificate: String { directory + "/ca.crt" }
    /// `ca.key` (mode 0600)
    public var caPrivateKey: String { directory + "/ca.key" }
    /// `server.crt`
    public var serverCertificate: String { directory + "/server.crt" }
    /// `server.key` (mode 0600)
    public var serverKey: String { directory + "/server.key" }
    /// The names an older daemon gave the same four files (`ca.pem`, `ca-key.pem`, `server.pem`,
    /// `server-key.pem`): renamed to the current ones on the first start that finds them.
    public var formerNames: [(former: String, current: String)] {
        [
            (directory + "/ca.pem", caCertificate), (directory + "/ca-key.pem", caPrivateKey),
            (directory + "/server.pem", serverCertificate), (directory + "/server-key.pem", serverKey),
        ]
    }
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
        // A state directory made before the files had their production names keeps its CA (the
        // vehicle certificates issued from it stay valid): the files are renamed, not remade.
        for (former, current) in paths.formerNames
        where files.fileExists(atPath: former) && !files.fileExists(atPath: current) {
            do {
                try files.moveItem(atPath: former, toPath: current)
            } catch {
                throw FleetPKIError(.fileSystem, "cannot rename \(former) to \(current): \(error)")
            }
        }
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

extension FleetPKI {
    /// The CA of a CA directory: `ca.crt` + `ca.key` (the layout of `horgosctl pki init` and of the
    /// development PKI), else the former development names `ca.pem` + `ca-key.pem`.
    public static func authority(inDirectory directory: String) throws(FleetPKIError) -> FleetPKI {
        let paths = DevelopmentPKIPaths(directory: directory)
        let files = FileManager.default
        if !files.fileExists(atPath: paths.caCertificate), files.fileExists(atPath: directory + "/ca.pem") {
            return try FleetPKI(caCertificatePath: directory + "/ca.pem", caPrivateKeyPath: directory + "/ca-key.pem")
        }
        return try FleetPKI(caCertificatePath: paths.caCertificate, caPrivateKeyPath: paths.caPrivateKey)
    }
}
