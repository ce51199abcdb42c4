import HorgosProxyProtocol

/// One libFuzzer input through the PROXY v2 parser, with the properties that must hold for any
/// input asserted with `precondition` (a failure is a crash).
///
/// Checked: the parser never claims more bytes than it was given nor more than its bound; every
/// strict prefix of an accepted header asks for more bytes (and, once the fixed part is there, for
/// exactly the header's length); an accepted PROXY header over INET or INET6 re-encodes to the very
/// bytes it was parsed from; the client address text exists exactly for PROXY over INET/INET6.
func fuzzOneInput(_ data: UnsafeRawBufferPointer) {
    // The input's length picks the bound, so that the limit itself is exercised.
    let parser = data.count % 3 == 0 ? ProxyHeaderParser(maxLength: 64) : ProxyHeaderParser()
    let scan: ProxyHeaderScan
    do {
        scan = try parser.parse(data)
    } catch {
        precondition(!error.reason.isEmpty)
        return
    }
    switch scan {
    case .needMoreBytes(let needed):
        if let needed { precondition(needed > data.count && needed <= parser.maxLength) }
    case .header(let header):
        precondition(header.length <= data.count && header.length <= parser.maxLength)
        precondition(header.length >= ProxyHeaderParser.fixedLength)
        for split in [0, 1, 11, 12, 13, 15, 16, header.length / 2, header.length - 1] where split < header.length {
            let prefix = UnsafeRawBufferPointer(rebasing: data[0..<split])
            guard case .needMoreBytes(let needed) = try? parser.parse(prefix) else {
                preconditionFailure("a prefix of \(split) bytes of an accepted header was not a prefix")
            }
            precondition(split < 16 ? needed == nil : needed == header.length)
        }
        switch (header.command, header.source) {
        case (.proxy, .inet), (.proxy, .inet6):
            precondition(header.clientIPAddress != nil)
            precondition(header.encoded() == Array(data[0..<header.length]), "re-encoding differs")
        default:
            precondition(header.clientIPAddress == nil)
        }
    }
}
