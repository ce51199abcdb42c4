#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Names the calling thread for the kernel, so `top -H`, `ps -L` and `/proc/PID/task/*/comm` show
/// `horgos-journal` instead of the name the runtime gave the thread.
///
/// Foundation's `Thread.name` does not reach the kernel on Linux, and Swift's Glibc module does not
/// export `pthread_setname_np` (a GNU extension): it is looked up once with `dlsym`. Linux keeps at
/// most 15 bytes of a name; longer names are cut to 15. Call it from the thread itself.
public enum ThreadName {
    private typealias SetName = @convention(c) (pthread_t, UnsafePointer<CChar>) -> Int32

    #if os(Linux)
        private static let setName: SetName? = {
            // RTLD_DEFAULT is the null handle on glibc.
            guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "pthread_setname_np") else { return nil }
            return unsafeBitCast(symbol, to: SetName.self)
        }()
    #endif

    /// Sets the calling thread's name (first 15 bytes); false when the system refused or has no call.
    @discardableResult
    public static func setCurrent(_ name: String) -> Bool {
        let bytes = Array(name.utf8.prefix(15))
        let cut = String(decoding: bytes, as: UTF8.self)
        #if os(Linux)
            guard let setName else { return false }
            return setName(pthread_self(), cut) == 0
        #elseif canImport(Darwin)
            return pthread_setname_np(cut) == 0
        #else
            return false
        #endif
    }
}
