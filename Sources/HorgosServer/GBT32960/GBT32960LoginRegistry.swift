import HorgosWire
import Synchronization

/// The VINs logged in on live GB/T 32960 connections.
///
/// A vehicle certificate's VIN logging in on a new connection takes the VIN over: the older
/// connection (a unit that reconnected before the server saw the old one die) is closed. The same VIN
/// from two different platforms is a real duplicate: the second login is answered 0x03 until the
/// first connection closes or logs out.
public final class GBT32960LoginRegistry: Sendable {
    private let sessions = Mutex<[VIN: (connection: ConnectionReference, platform: Bool)]>([:])

    public init() {}

    /// Records `vin` for `connection`; false when another platform has it. A vehicle's older connection is
    /// closed and replaced.
    func login(_ vin: VIN, connection: ConnectionReference, platform: Bool) -> Bool {
        let (accepted, replaced): (Bool, ConnectionReference?) = sessions.withLock { sessions in
            if let current = sessions[vin], current.connection != connection {
                if platform || current.platform { return (false, nil) }
                sessions[vin] = (connection, platform)
                return (true, current.connection)
            }
            sessions[vin] = (connection, platform)
            return (true, nil)
        }
        replaced?.close()
        return accepted
    }

    /// Forgets every VIN of the connection `owner` (close), or only `vin` (logout).
    func release(_ owner: ObjectIdentifier, vin: VIN? = nil) {
        sessions.withLock { sessions in
            if let vin {
                if sessions[vin]?.connection.id == owner { sessions[vin] = nil }
            } else {
                sessions = sessions.filter { $0.value.connection.id != owner }
            }
        }
    }
}
