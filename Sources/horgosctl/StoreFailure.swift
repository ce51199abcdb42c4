import HorgosStore
import HorgosWire

extension CtlError {
    /// The exit status and advice for a store error met while reading `region`'s shards.
    ///
    /// Missing files are "not found" (4); every other store failure while reading is a data problem
    /// (5): a damaged or foreign file, a schema from a newer Horgos, or a file this user cannot read.
    init(_ error: StoreError, region: Region, stateDirectory: String) {
        let location = "\(stateDirectory)/\(region.code)"
        if error.kind == .notFound {
            self.init(
                .notFound, "no shard data for region \(region.code) in \(location)",
                remedy: "check --state (or state_directory in the configuration); a region's files appear with "
                    + "its first stored record")
            return
        }
        let remedy: String
        switch error.fault {
        case .corrupt:
            remedy =
                "run horgosctl shards --check --region \(region.code), then restore the damaged file from a "
                + "backup (RUNBOOK.md, \"Back up and restore a region\")"
        case .readOnly, .ioError:
            remedy =
                "run as the daemon's user or a member of its group (sudo -u horgos horgosctl ...); readers need "
                + "read access to the files and write access to their -shm files"
        case .incompatibleFile:
            remedy =
                "the file was written by a newer Horgos or belongs elsewhere: use a matching horgosctl, or move "
                + "the file out of \(location)"
        case .locked:
            remedy = "another process holds a lock on the file; retry in a moment"
        case .diskFull, .other:
            remedy = "run horgosctl shards --check --region \(region.code) and look at the daemon's journal"
        }
        self.init(
            .dataProblem, "cannot read the shards of region \(region.code): \(error.description)", remedy: remedy)
    }
}
