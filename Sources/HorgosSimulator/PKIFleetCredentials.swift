import HorgosPKI
import HorgosWire
import NIOSSL

/// Mints a certificate for each simulated vehicle or gateway from a fleet CA, in memory, and wraps
/// it in a TLS client context that trusts the same CA and checks the server's name.
///
/// This is what a factory provisioning line does for real units; here it lets a simulated fleet of
/// thousands of vehicles connect with distinct identities without writing thousands of files.
public struct PKIFleetCredentials: FleetCredentials {
    let authority: FleetPKI
    let trustRoot: NIOSSLCertificate

    public init(authority: FleetPKI) throws {
        self.authority = authority
        self.trustRoot = try NIOSSLCertificate(bytes: Array(try authority.caCertificatePEM.utf8), format: .pem)
    }

    public func vehicleContext(vin: VIN, market: String) throws -> NIOSSLContext {
        try context(for: try authority.issueVehicleCertificate(vin: vin.description, market: market))
    }

    public func gatewayContext(name: String, market: String) throws -> NIOSSLContext {
        try context(for: try authority.issueGatewayCertificate(name: name, market: market))
    }

    func context(for issued: IssuedCertificate) throws -> NIOSSLContext {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.trustRoots = .certificates([trustRoot])
        tls.certificateVerification = .fullVerification
        tls.certificateChain = [.certificate(try NIOSSLCertificate(bytes: try issued.certificateDER, format: .der))]
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(issued.privateKeyPEM.utf8), format: .pem))
        return try NIOSSLContext(configuration: tls)
    }
}
