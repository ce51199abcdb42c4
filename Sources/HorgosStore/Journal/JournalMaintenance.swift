import Foundation
import HorgosWire
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What `horgosctl journal check` found: every segment, every damaged byte range with the LSNs it
/// held and the regions that still need them, and every LSN range missing between segments.
public struct JournalCheckReport: Sendable, Hashable, Encodable {
    /// One segment file.
    public struct Segment: Sendable, Hashable, Encodable {
        public var name: String
        public var firstLSN: UInt64
        /// LSN of the last valid entry (firstLSN - 1 when none).
        public var lastLSN: UInt64
        public var bytes: Int
        public var entries: Int
        /// The header says LSNs before this segment were lost or never written (a salvage, a restart
        /// past the high-water mark).
        public var followsGap: Bool
        public var headerValid: Bool
    }

    /// A byte range of a segment that is not valid entries.
    public struct Damage: Sendable, Hashable, Encodable {
        public var segment: String
        /// Byte offset of the first damaged byte, and how many bytes up to the next valid entry.
        public var offset: Int
        public var length: Int
        /// LSN of the last valid entry before the damage.
        public var afterLSN: UInt64
        /// First LSN found again after it (in this segment or the next); nil at the journal's end.
        public var resumesAtLSN: UInt64?
        /// Entries lost in the damaged bytes (`afterLSN + 1 ..< resumesAtLSN`); nil when unknown (a tail).
        public var lostEntries: UInt64?
        /// At the tail of the newest segment: a write a crash interrupted, which a start cuts by itself.
        public var tornTail: Bool
        /// Regions whose shards hold everything up to `resumesAtLSN - 1` (they lose nothing here), and
        /// the regions that would replay into this range (they lose what of theirs was in it).
        public var regionsAppliedPast: [String]
        public var regionsNotAppliedPast: [String]
    }

    /// LSNs between two segments that no segment holds.
    public struct Gap: Sendable, Hashable, Encodable {
        public var afterLSN: UInt64
        public var beforeLSN: UInt64
        /// The later segment's header accepts the jump (`followsGap`); otherwise a segment is missing.
        public var accepted: Bool
    }

    /// Where a region's replay would start, and from what.
    public struct RegionPosition: Sendable, Hashable, Encodable {
        public var region: String
        /// The applied LSN in its registry's `meta`.
        public var appliedLSN: UInt64
        /// The LSN its shards were last fsynced at (`journal/durable`), nil when not recorded.
        public var durableLSN: UInt64?
        /// Entries after this are replayed at the next start (applied LSN, or the durable LSN after a reboot).
        public var replayAfterLSN: UInt64
    }

    public var directory: String
    public var segments: [Segment] = []
    public var damage: [Damage] = []
    public var gaps: [Gap] = []
    public var regions: [RegionPosition] = []

    /// No damage a start would refuse and no missing segment.
    public var ok: Bool { damage.allSatisfy(\.tornTail) && gaps.allSatisfy(\.accepted) }
}

/// What `horgosctl journal salvage` did.
public struct JournalSalvageReport: Sendable, Hashable, Encodable {
    /// The journal before the salvage.
    public var before: JournalCheckReport
    /// Where the original files of every segment rewritten were copied first.
    public var backupDirectory: String?
    /// Segment files replaced (original names) and written (new names).
    public var segmentsReplaced: [String] = []
    public var segmentsWritten: [String] = []
    /// Segments whose header now accepts the LSN jump before them.
    public var segmentsMarkedFollowingGap: [String] = []
    /// Valid entries kept in the rewritten segments.
    public var entriesKept = 0
    /// Damaged bytes dropped.
    public var bytesDropped = 0
    /// Regions that had not applied every entry of a damaged range (they may miss records of theirs
    /// that were in it; their units resend only what was never acknowledged).
    public var regionsMissingEntries: [String] = []
}

/// `horgosctl journal check` and `salvage`: the journal of a state directory read past damage.
///
/// The check reads every segment (read-only; safe while the daemon runs) and lists each damaged byte
/// range by segment and offset with the LSNs it held, and which regions have applied past it. The
/// salvage (the daemon stopped: it takes the journal's lock) keeps every intact entry: a damaged
/// segment is rewritten as one segment file per run of valid entries (re-framed from the next valid
/// entry header), the damaged bytes are dropped, and each file after a dropped range is marked as
/// following a gap so a start accepts it. The originals are copied aside first. LSNs are never
/// reused: the next start begins past the high-water mark (`JournalHighWater`).
public enum JournalMaintenance {
    /// Checks the journal of `stateDirectory`; `regions` are the configured ones (their positions are
    /// read from their registries).
    public static func check(stateDirectory: String, regions: [Region]) throws(StoreError) -> JournalCheckReport {
        try Inspection(stateDirectory: stateDirectory, regions: regions).report
    }

    /// Salvages the journal of `stateDirectory` (see the type's comment). `backupDirectory` receives the
    /// original segment files (default `<state>/journal-damaged-<ms>`). Throws `.inUse` while the daemon runs.
    public static func salvage(
        stateDirectory: String, regions: [Region], backupDirectory: String? = nil, nowMs: Int64 = StoreClock.systemMs()
    ) throws(StoreError) -> JournalSalvageReport {
        let directory = "\(stateDirectory)/journal"
        let lock = try JournalLock(directory: directory)
        defer { lock.release() }
        let inspection = try Inspection(stateDirectory: stateDirectory, regions: regions)
        var result = JournalSalvageReport(before: inspection.report)
        let backup = backupDirectory ?? "\(stateDirectory)/journal-damaged-\(nowMs)"
        var lastLSN: UInt64? = nil
        for file in inspection.files {
            let damaged = !file.scan.damage.isEmpty
            if damaged {
                if result.backupDirectory == nil {
                    try StoreFiles.createDirectory(backup)
                    result.backupDirectory = backup
                }
                try writeDurably(file.segment.bytes(0, file.scan.size), to: "\(backup)/\(file.name)")
                let written = try rewrite(file, directory: directory, after: lastLSN)
                result.segmentsReplaced.append(file.name)
                result.segmentsWritten += written
                result.entriesKept += file.scan.entries.count
                result.bytesDropped += file.scan.damage.reduce(0) { $0 + $1.length }
            } else if let lastLSN, file.firstLSN != lastLSN + 1, file.scan.flags & JournalFormat.followsGapFlag == 0 {
                try markFollowsGap(file.path)
                result.segmentsMarkedFollowingGap.append(file.name)
            }
            if let last = file.scan.entries.last?.lsn { lastLSN = last }
        }
        try Journal.syncDirectory(directory)
        var missing = Set<String>()
        for damage in inspection.report.damage where !damage.tornTail {
            missing.formUnion(damage.regionsNotAppliedPast)
        }
        result.regionsMissingEntries = missing.sorted()
        return result
    }

    /// Writes one segment file per run of consecutive valid entries of `file`, then removes the original
    /// (unless the first run kept its name). Returns the names written.
    private static func rewrite(
        _ file: Inspection.File, directory: String, after lastLSN: UInt64?
    ) throws(StoreError) -> [String] {
        var runs: [[JournalFormat.DecodedEntry]] = []
        for entry in file.scan.entries {
            if let last = runs.last?.last, last.lsn + 1 == entry.lsn {
                runs[runs.count - 1].append(entry)
            } else {
                runs.append([entry])
            }
        }
        var written: [String] = []
        var previous = lastLSN
        var keptOriginalName = false
        for run in runs {
            let first = run[0].lsn
            var flags: UInt32 = 0
            if first == file.firstLSN && file.scan.headerValid {
                flags = file.scan.flags
            } else if previous != nil {
                flags = JournalFormat.followsGapFlag
            }
            if let previous, first != previous + 1 { flags |= JournalFormat.followsGapFlag }
            var bytes = JournalFormat.segmentHeader(flags: flags)
            for entry in run { bytes += file.segment.bytes(entry.offset, entry.length) }
            let name = JournalFormat.segmentFileName(firstLSN: first)
            try writeDurably(bytes, to: "\(directory)/\(name)")
            if name == file.name { keptOriginalName = true }
            written.append(name)
            previous = run.last!.lsn
        }
        if !keptOriginalName { unlink(file.path) }
        return written
    }

    private static func writeDurably(_ bytes: [UInt8], to path: String) throws(StoreError) {
        var failure: StoreError?
        bytes.withUnsafeBytes { raw in
            do throws(StoreError) { try writeDurably(raw, to: path) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    private static func writeDurably(_ bytes: UnsafeRawBufferPointer, to path: String) throws(StoreError) {
        let temporary = path + ".salvage"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw JournalDiskSpace.error(errno, context: "create \(temporary)") }
        let ok = JournalSegment.writeFully(fd, bytes) && fsync(fd) == 0
        let code = errno
        close(fd)
        guard ok, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw JournalDiskSpace.error(ok ? errno : code, context: "write \(path)")
        }
    }

    private static func markFollowsGap(_ path: String) throws(StoreError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw JournalDiskSpace.error(errno, context: "open \(path)") }
        defer { close(fd) }
        let flag = JournalFormat.followsGapFlag.littleEndian
        let ok = withUnsafeBytes(of: flag) { pwrite(fd, $0.baseAddress, 4, 12) == 4 } && fsync(fd) == 0
        guard ok else { throw JournalDiskSpace.error(errno, context: "write \(path)") }
    }

    /// Every segment of a journal read past damage, and the report about it.
    struct Inspection {
        struct File {
            let name: String
            let path: String
            let firstLSN: UInt64
            /// The file, mapped read-only.
            let segment: JournalSegment
            let scan: JournalSegmentScan
        }

        var files: [File] = []
        var report: JournalCheckReport

        init(stateDirectory: String, regions: [Region]) throws(StoreError) {
            let directory = "\(stateDirectory)/journal"
            report = JournalCheckReport(directory: directory)
            let durable = DurableLSNFile.read(directory: directory)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            let found = names.compactMap { name in JournalFormat.firstLSN(segmentFileName: name).map { (name, $0) } }
                .sorted { $0.1 < $1.1 }
            for (name, first) in found {
                let path = "\(directory)/\(name)"
                let segment = try JournalSegment.openExisting(path: path, firstLSN: first)
                let scan = JournalSegmentScan(
                    segment.bytes(0, segment.size.load(ordering: .relaxed)), firstLSN: first, pastDamage: true)
                files.append(File(name: name, path: path, firstLSN: first, segment: segment, scan: scan))
            }
            // The regions that can need the journal: configured ones with shards, a recorded position or
            // entries in it (a configured region that never stored anything has nothing to lose).
            let inJournal = Set(files.flatMap { $0.scan.entries.map(\.region) })
            for region in regions.sorted() {
                let applied = ShardStore.appliedLSN(stateDirectory: stateDirectory, region: region)
                let durableLSN = durable.lsns[region]
                let hasShards = StoreFiles.exists(StoreFiles.regionDirectory(stateDirectory, region))
                guard hasShards || durableLSN != nil || inJournal.contains(region) else { continue }
                report.regions.append(
                    JournalCheckReport.RegionPosition(
                        region: region.code, appliedLSN: applied, durableLSN: durableLSN,
                        replayAfterLSN: durable.replayAfter(region, applied: applied)))
            }
            var previousLast: UInt64? = nil
            var previousEndedDamaged = false
            for (index, file) in files.enumerated() {
                let scan = file.scan
                report.segments.append(
                    JournalCheckReport.Segment(
                        name: file.name, firstLSN: file.firstLSN, lastLSN: scan.lastLSN, bytes: scan.size,
                        entries: scan.entries.count, followsGap: scan.flags & JournalFormat.followsGapFlag != 0,
                        headerValid: scan.headerValid))
                // (After a damaged tail the jump is that damage's, reported below.)
                if let previousLast, file.firstLSN > previousLast + 1, !previousEndedDamaged {
                    report.gaps.append(
                        JournalCheckReport.Gap(
                            afterLSN: previousLast, beforeLSN: file.firstLSN,
                            accepted: scan.headerValid && scan.flags & JournalFormat.followsGapFlag != 0))
                }
                let isLast = index == files.count - 1
                for damage in scan.damage {
                    let resumes = damage.nextLSN ?? (isLast ? nil : files[index + 1].firstLSN)
                    let torn = isLast && damage.nextLSN == nil
                    let lastLost = resumes.map { $0 &- 1 }
                    let applied = report.regions.filter { region in
                        guard let lastLost else { return region.replayAfterLSN > damage.afterLSN }
                        return region.replayAfterLSN >= lastLost
                    }.map(\.region)
                    report.damage.append(
                        JournalCheckReport.Damage(
                            segment: file.name, offset: damage.offset, length: damage.length,
                            afterLSN: damage.afterLSN, resumesAtLSN: resumes,
                            lostEntries: resumes.map { $0 > damage.afterLSN + 1 ? $0 - damage.afterLSN - 1 : 0 },
                            tornTail: torn, regionsAppliedPast: torn ? [] : applied,
                            regionsNotAppliedPast: torn
                                ? [] : report.regions.map(\.region).filter { !applied.contains($0) }))
                }
                if let last = scan.entries.last?.lsn {
                    previousLast = last
                } else if previousLast == nil {
                    previousLast = file.firstLSN &- 1
                }
                previousEndedDamaged = scan.damage.last.map { $0.nextLSN == nil } ?? false
            }
        }
    }
}
