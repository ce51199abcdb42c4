import CSQLite
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What `horgosctl shards salvage` recovered from a damaged SQLite file.
public struct ShardSalvageReport: Sendable, Hashable, Encodable {
    /// Rows recovered per table.
    public struct Table: Sendable, Hashable, Encodable {
        public var name: String
        public var rows: Int
    }

    public var source: String
    public var destination: String
    public var pageSize: Int
    public var pages: Int
    /// Pages a b-tree pointed to that did not parse as b-tree pages (the damage); their rows are lost.
    public var damagedPages: [Int] = []
    /// Leaf pages no intact b-tree reached (their parent was damaged), whose rows were read anyway and
    /// matched to their table by the shape of their records.
    public var orphanPagesRead = 0
    public var tables: [Table] = []
    /// Whether the file's WAL (moved aside with it) was folded in first.
    public var walApplied = false

    public var totalRows: Int { tables.reduce(0) { $0 + $1.rows } }
}

/// Salvages the rows of a damaged SQLite shard file into a new file, page by page, with the project's
/// own reading of SQLite's file format (sqlite.org/fileformat2.html) rather than the `sqlite3` shell's
/// `.recover` (which Debian 12's 3.40.1 cannot run: it lacks the `sqlite_dbpage` table it needs).
///
/// How: the file and its `-wal` are copied and the WAL is checkpointed into the copy (SQLite's own
/// checkpoint, which copies pages without reading the b-trees); the schema is read from page 1; every
/// table's b-tree is walked from its root, and a page that does not parse is counted as damaged and
/// skipped (with everything only it points to); then every page no tree reached, not on the freelist,
/// that is a leaf is read as well and its rows go to the one table whose records have that shape
/// (a leaf page under a damaged interior page is not lost). Rows keep their rowids (the `chunks` index
/// stays right), and go into a new file created from the damaged file's own schema (`meta` included,
/// so it is still a self-describing Horgos file). Limits: page 1 (the schema) must be readable; a page
/// with one cell that does not parse is dropped whole (never a half-read row); indexes are rebuilt,
/// not read.
public enum ShardSalvage {
    /// Reads `source` (with `source-wal` if present, never modified) and writes every recoverable row
    /// into `destination`, which must not exist.
    public static func salvage(file source: String, to destination: String) throws(StoreError) -> ShardSalvageReport {
        SQLiteProcessSetup.ensure()
        guard StoreFiles.exists(source) else {
            throw StoreError(.notFound, message: "no such file", context: "salvage \(source)")
        }
        guard !StoreFiles.exists(destination) else {
            throw StoreError(
                .fileSystem, message: "already exists; choose a new name", context: "salvage into \(destination)")
        }
        // A working copy with its WAL folded in.
        let work = destination + ".salvage-work"
        try? StoreFiles.deleteDatabase(work)
        defer { try? StoreFiles.deleteDatabase(work) }
        try copy(source, to: work)
        var walApplied = false
        if StoreFiles.exists(source + "-wal") {
            try copy(source + "-wal", to: work + "-wal")
            walApplied = foldWAL(work)
        }
        guard let data = FileManager.default.contents(atPath: work) else {
            throw StoreError(.fileSystem, message: "cannot read", context: "salvage \(work)")
        }
        let image = try PageImage(Array(data), path: source)
        var reader = BTreeReader(image: image)
        let schema = try reader.schema()
        var report = ShardSalvageReport(
            source: source, destination: destination, pageSize: image.pageSize, pages: image.pageCount,
            walApplied: walApplied)

        let out = try SQLiteConnection(path: destination, readOnly: false)
        try out.exec("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; BEGIN")
        var targets: [Target] = []
        for entry in schema where entry.type == "table" && !entry.name.hasPrefix("sqlite_") {
            try out.exec(entry.sql)
            targets.append(try Target(entry: entry, connection: out))
        }
        for entry in schema where entry.type == "index" && !entry.sql.isEmpty { try out.exec(entry.sql) }
        // Record widths of every index: an orphan index-shaped page of such a width may be an index's.
        var indexWidths = Set<Int>()
        for target in targets { indexWidths.formUnion(try target.indexWidths(out)) }
        // Walk every tree (indexes only to know their pages), then read the pages no tree reached.
        for target in targets { reader.walk(root: target.entry.rootPage, rowidTable: !target.withoutRowid) }
        for entry in schema where entry.type == "index" && entry.rootPage > 0 {
            reader.walk(root: entry.rootPage, rowidTable: false, keepRows: false)
        }
        reader.markFreelist()
        let orphans = reader.orphanLeaves()
        report.damagedPages = reader.damaged.sorted()
        var rows: [String: Int] = [:]
        for target in targets {
            rows[target.entry.name] = try target.insert(reader.rows[target.entry.rootPage] ?? [], into: out)
        }
        for page in orphans {
            // The one table whose records have this width (rowid tables store every column, the
            // INTEGER PRIMARY KEY as NULL); index-shaped pages only when no index has that width.
            let width = page.rows.first?.values.count ?? 0
            let candidates = targets.filter { $0.withoutRowid == !page.rowidTable && $0.columns.count == width }
            guard candidates.count == 1, page.rows.allSatisfy({ $0.values.count == width }),
                page.rowidTable || !indexWidths.contains(width)
            else { continue }
            report.orphanPagesRead += 1
            rows[candidates[0].entry.name, default: 0] += try candidates[0].insert(page.rows, into: out)
        }
        try out.exec("PRAGMA user_version = \(image.userVersion); COMMIT")
        report.tables = targets.map { ShardSalvageReport.Table(name: $0.entry.name, rows: rows[$0.entry.name] ?? 0) }
        return report
    }

    private static func copy(_ source: String, to destination: String) throws(StoreError) {
        do {
            try FileManager.default.copyItem(atPath: source, toPath: destination)
        } catch {
            throw StoreError(.fileSystem, message: "\(error)", context: "copy \(source)")
        }
    }

    /// Checkpoints `path`'s WAL into it with SQLite (the C call reads no b-tree); false when it failed.
    private static func foldWAL(_ path: String) -> Bool {
        var db: OpaquePointer?
        guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK, let db else {
            if let db { sqlite3_close_v2(db) }
            return false
        }
        defer { sqlite3_close_v2(db) }
        var log: Int32 = 0
        var done: Int32 = 0
        let rc = sqlite3_wal_checkpoint_v2(db, nil, SQLITE_CHECKPOINT_TRUNCATE, &log, &done)
        return rc == SQLITE_OK && done >= log
    }

    /// One table of the destination and how a record of the source maps onto its columns.
    struct Target {
        let entry: BTreeReader.SchemaEntry
        let withoutRowid: Bool
        /// Column names in record order.
        let columns: [String]
        /// Index (in record order) of the INTEGER PRIMARY KEY column, stored as NULL (the rowid).
        let rowidAlias: Int?

        init(entry: BTreeReader.SchemaEntry, connection: SQLiteConnection) throws(StoreError) {
            self.entry = entry
            let quoted = entry.name.replacingOccurrences(of: "\"", with: "\"\"")
            var names: [String] = []
            var pkColumns: [String] = []
            let info = try connection.prepare("PRAGMA table_info(\"\(quoted)\")")
            while try info.step() {
                names.append(info.text(1))
                if info.int64(5) > 0 { pkColumns.append(info.text(2).uppercased()) }
            }
            var pkIndex: String?
            let list = try connection.prepare("PRAGMA index_list(\"\(quoted)\")")
            while try list.step() {
                if list.text(3) == "pk" { pkIndex = list.text(1) }
            }
            withoutRowid = entry.sql.uppercased().contains("WITHOUT ROWID")
            if withoutRowid, let pkIndex {
                // The record is the primary key's columns, then the others: the PK index's full layout.
                var ordered: [String] = []
                let xinfo = try connection.prepare("PRAGMA index_xinfo(\"\(pkIndex)\")")
                while try xinfo.step() {
                    if xinfo.int64(1) >= 0 { ordered.append(xinfo.text(2)) }
                }
                columns = ordered
                rowidAlias = nil
            } else {
                columns = names
                var alias: Int?
                let types = try connection.prepare("PRAGMA table_info(\"\(quoted)\")")
                while try types.step() {
                    if types.int64(5) == 1 && types.text(2).uppercased() == "INTEGER" { alias = Int(types.int64(0)) }
                }
                rowidAlias = pkColumns.count == 1 ? alias : nil
            }
        }

        /// The record widths of this table's indexes (not the WITHOUT ROWID table's own key).
        func indexWidths(_ db: SQLiteConnection) throws(StoreError) -> Set<Int> {
            let quoted = entry.name.replacingOccurrences(of: "\"", with: "\"\"")
            var names: [String] = []
            let list = try db.prepare("PRAGMA index_list(\"\(quoted)\")")
            while try list.step() {
                if !(withoutRowid && list.text(3) == "pk") { names.append(list.text(1)) }
            }
            var widths = Set<Int>()
            for name in names {
                let xinfo = try db.prepare("PRAGMA index_xinfo(\"\(name)\")")
                var width = 0
                while try xinfo.step() { width += 1 }
                widths.insert(width)
            }
            return widths
        }

        /// Inserts rows (keeping rowids); returns how many were new.
        func insert(_ rows: [BTreeReader.Row], into db: SQLiteConnection) throws(StoreError) -> Int {
            var inserted = 0
            var statements: [Int: SQLiteStatement] = [:]
            let table = "\"" + entry.name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            for row in rows where row.values.count <= columns.count {
                let count = row.values.count
                if statements[count] == nil {
                    let names = columns.prefix(count).map { "\"\($0)\"" }
                    let list = (withoutRowid ? names : ["rowid"] + names).joined(separator: ", ")
                    let marks = Array(repeating: "?", count: withoutRowid ? count : count + 1).joined(separator: ", ")
                    statements[count] = try db.prepare("INSERT OR IGNORE INTO \(table) (\(list)) VALUES (\(marks))")
                }
                let statement = statements[count]!
                var index: Int32 = 1
                if !withoutRowid {
                    statement.bind(index, row.rowid)
                    index += 1
                }
                for (position, value) in row.values.enumerated() {
                    if position == rowidAlias, case .null = value {
                        statement.bind(index, row.rowid)
                    } else {
                        value.bind(to: statement, at: index)
                    }
                    index += 1
                }
                try statement.run()
                if db.changes > 0 { inserted += 1 }
            }
            return inserted
        }
    }
}

/// The bytes of an SQLite database file as pages.
struct PageImage {
    let bytes: [UInt8]
    let pageSize: Int
    /// Usable bytes of a page (the page size less the reserved bytes at its end).
    let usable: Int
    let pageCount: Int
    let userVersion: Int64

    init(_ bytes: [UInt8], path: String) throws(StoreError) {
        guard bytes.count >= 512, Array(bytes[0..<16]) == Array("SQLite format 3\0".utf8) else {
            throw StoreError(
                .sqlite, sqliteCode: SQLITE_NOTADB,
                message: "the file header is damaged (no SQLite magic): nothing to salvage page by page; restore it "
                    + "from a backup", context: "salvage \(path)")
        }
        self.bytes = bytes
        let raw = Int(bytes[16]) << 8 | Int(bytes[17])
        pageSize = raw == 1 ? 65_536 : raw
        guard pageSize >= 512, pageSize & (pageSize - 1) == 0 else {
            throw StoreError(
                .sqlite, sqliteCode: SQLITE_CORRUPT, message: "the file header's page size \(raw) is damaged",
                context: "salvage \(path)")
        }
        usable = pageSize - Int(bytes[20])
        pageCount = bytes.count / pageSize
        userVersion = Int64(Self.u32(bytes, 60))
    }

    static func u32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8
            | UInt32(bytes[offset + 3])
    }

    /// The byte offset of page `number` (1-based).
    func start(_ number: Int) -> Int { (number - 1) * pageSize }
}

/// Reads SQLite b-trees out of a `PageImage`, checking every page it reads, skipping damage.
struct BTreeReader {
    /// One row of the schema table.
    struct SchemaEntry {
        var type: String
        var name: String
        var rootPage: Int
        var sql: String
    }

    /// A record value.
    enum Value {
        case null
        case integer(Int64)
        case real(Double)
        case text([UInt8])
        case blob([UInt8])

        func bind(to statement: SQLiteStatement, at index: Int32) {
            switch self {
            case .null: statement.bindNull(index)
            case .integer(let value): statement.bind(index, value)
            case .real(let value): sqlite3_bind_double(statement.handle, index, value)
            case .text(let bytes):
                bytes.withUnsafeBufferPointer { buffer in
                    _ = buffer.withMemoryRebound(to: CChar.self) {
                        sqlite3_bind_text(
                            statement.handle, index, $0.baseAddress, Int32(bytes.count), horgos_sqlite_transient())
                    }
                }
            case .blob(let bytes):
                _ = bytes.withUnsafeBytes {
                    sqlite3_bind_blob(
                        statement.handle, index, $0.baseAddress, Int32(bytes.count), horgos_sqlite_transient())
                }
            }
        }
    }

    /// One row read from a leaf (or, in a WITHOUT ROWID tree, an interior) cell.
    struct Row {
        var rowid: Int64
        var values: [Value]
    }

    /// A leaf page no tree reached, and its rows.
    struct OrphanPage {
        var page: Int
        var rowidTable: Bool
        var rows: [Row]
    }

    let image: PageImage
    /// Pages some tree (or the freelist) reached.
    private(set) var visited: Set<Int> = []
    private(set) var damaged: Set<Int> = []
    /// Rows per tree, by root page.
    private(set) var rows: [Int: [Row]] = [:]

    init(image: PageImage) { self.image = image }

    /// The schema (page 1's table b-tree); throws when page 1 cannot be read.
    mutating func schema() throws(StoreError) -> [SchemaEntry] {
        walk(root: 1, rowidTable: true)
        guard !damaged.contains(1) else {
            throw StoreError(
                .sqlite, sqliteCode: SQLITE_CORRUPT,
                message: "page 1 (the schema) is damaged: the tables cannot be told apart; restore the file from a "
                    + "backup", context: "salvage")
        }
        return (rows[1] ?? []).compactMap { row in
            guard row.values.count >= 5, case .text(let type) = row.values[0], case .text(let name) = row.values[1]
            else { return nil }
            var root = 0
            if case .integer(let value) = row.values[3] { root = Int(value) }
            var sql = ""
            if case .text(let text) = row.values[4] { sql = String(decoding: text, as: UTF8.self) }
            return SchemaEntry(
                type: String(decoding: type, as: UTF8.self), name: String(decoding: name, as: UTF8.self),
                rootPage: root, sql: sql)
        }
    }

    /// Walks the tree at `root`, collecting its rows under `rows[root]` (unless `keepRows` is false).
    mutating func walk(root: Int, rowidTable: Bool, keepRows: Bool = true) {
        var stack = [root]
        var collected: [Row] = []
        while let page = stack.popLast() {
            guard page >= 1, page <= image.pageCount, visited.insert(page).inserted else { continue }
            guard let parsed = parse(page, expectTable: rowidTable) else {
                damaged.insert(page)
                continue
            }
            visited.formUnion(parsed.overflowPages)
            stack += parsed.children.reversed()
            if keepRows { collected += parsed.rows }
        }
        if keepRows { rows[root] = collected }
    }

    /// Marks the freelist's trunk and leaf pages as reached (their bytes are no rows).
    mutating func markFreelist() {
        var trunk = Int(PageImage.u32(image.bytes, 32))
        var guardCount = 0
        while trunk >= 1, trunk <= image.pageCount, guardCount < image.pageCount {
            guardCount += 1
            visited.insert(trunk)
            let start = image.start(trunk)
            let leaves = Int(PageImage.u32(image.bytes, start + 4))
            guard leaves <= (image.usable - 8) / 4 else { break }
            for index in 0..<leaves {
                let leaf = Int(PageImage.u32(image.bytes, start + 8 + index * 4))
                if leaf >= 1 && leaf <= image.pageCount { visited.insert(leaf) }
            }
            trunk = Int(PageImage.u32(image.bytes, start))
        }
    }

    /// Leaf pages (table or index) no walk reached and that parse whole.
    mutating func orphanLeaves() -> [OrphanPage] {
        var pages: [OrphanPage] = []
        for page in 1...max(1, image.pageCount) where !visited.contains(page) && !damaged.contains(page) {
            let type = image.bytes[image.start(page) + (page == 1 ? 100 : 0)]
            guard type == 0x0D || type == 0x0A, let parsed = parse(page, expectTable: type == 0x0D),
                !parsed.rows.isEmpty
            else { continue }
            pages.append(OrphanPage(page: page, rowidTable: type == 0x0D, rows: parsed.rows))
        }
        return pages
    }

    private struct ParsedPage {
        var children: [Int] = []
        var rows: [Row] = []
        var overflowPages: [Int] = []
    }

    /// Parses a b-tree page; nil when anything in it is out of shape.
    private func parse(_ page: Int, expectTable: Bool) -> ParsedPage? {
        let base = image.start(page)
        let header = base + (page == 1 ? 100 : 0)
        let bytes = image.bytes
        let type = bytes[header]
        let isTable = type == 0x05 || type == 0x0D
        let isLeaf = type == 0x0A || type == 0x0D
        guard type == 0x02 || type == 0x05 || type == 0x0A || type == 0x0D, isTable == expectTable else { return nil }
        let cells = Int(bytes[header + 3]) << 8 | Int(bytes[header + 4])
        let headerSize = isLeaf ? 8 : 12
        guard header + headerSize + cells * 2 <= base + image.usable else { return nil }
        var parsed = ParsedPage()
        for index in 0..<cells {
            let pointerAt = header + headerSize + index * 2
            let offset = Int(bytes[pointerAt]) << 8 | Int(bytes[pointerAt + 1])
            var at = base + offset
            guard offset >= (header - base) + headerSize + cells * 2, offset < image.usable else { return nil }
            let end = base + image.usable
            if !isLeaf {
                guard at + 4 <= end else { return nil }
                let child = Int(PageImage.u32(bytes, at))
                guard child >= 1 && child <= image.pageCount else { return nil }
                parsed.children.append(child)
                at += 4
                if isTable {
                    guard Self.varint(bytes, &at, end) != nil else { return nil }
                    continue
                }
            }
            guard let payloadSize = Self.varint(bytes, &at, end), payloadSize >= 0,
                payloadSize < Int64(image.usable) * Int64(image.pageCount)
            else { return nil }
            var rowid: Int64 = 0
            if isTable {
                guard let value = Self.varint(bytes, &at, end) else { return nil }
                rowid = value
            }
            guard
                let payload = self.payload(
                    size: Int(payloadSize), at: at, end: end, table: isTable, overflow: &parsed.overflowPages),
                let values = Self.record(payload)
            else { return nil }
            parsed.rows.append(Row(rowid: rowid, values: values))
        }
        if !isLeaf {
            let right = Int(PageImage.u32(bytes, header + 8))
            guard right >= 1 && right <= image.pageCount else { return nil }
            parsed.children.append(right)
        }
        return parsed
    }

    /// A cell's whole payload: the local part and its overflow chain.
    private func payload(size: Int, at: Int, end: Int, table: Bool, overflow: inout [Int]) -> [UInt8]? {
        let u = image.usable
        let maxLocal = table ? u - 35 : ((u - 12) * 64 / 255) - 23
        let minLocal = ((u - 12) * 32 / 255) - 23
        var local = size
        if size > maxLocal {
            let k = minLocal + (size - minLocal) % (u - 4)
            local = k <= maxLocal ? k : minLocal
        }
        guard at + local <= end else { return nil }
        var payload = Array(image.bytes[at..<(at + local)])
        guard local < size else { return payload }
        guard at + local + 4 <= end else { return nil }
        var next = Int(PageImage.u32(image.bytes, at + local))
        var hops = 0
        while payload.count < size {
            guard next >= 1, next <= image.pageCount, hops < image.pageCount, !damaged.contains(next) else {
                return nil
            }
            hops += 1
            overflow.append(next)
            let start = image.start(next)
            let take = min(u - 4, size - payload.count)
            payload += image.bytes[(start + 4)..<(start + 4 + take)]
            next = Int(PageImage.u32(image.bytes, start))
        }
        return payload
    }

    /// SQLite's variable-length integer at `at` (advanced past it).
    static func varint(_ bytes: [UInt8], _ at: inout Int, _ end: Int) -> Int64? {
        var value: UInt64 = 0
        for index in 0..<9 {
            guard at < end else { return nil }
            let byte = bytes[at]
            at += 1
            if index == 8 { return Int64(bitPattern: value << 8 | UInt64(byte)) }
            value = value << 7 | UInt64(byte & 0x7F)
            if byte & 0x80 == 0 { return Int64(bitPattern: value) }
        }
        return nil
    }

    /// The values of a record; nil when its header and body do not add up exactly.
    static func record(_ payload: [UInt8]) -> [Value]? {
        var at = 0
        guard let headerSize = varint(payload, &at, payload.count), headerSize >= 1, headerSize <= payload.count
        else { return nil }
        var types: [Int64] = []
        while at < Int(headerSize) {
            guard let type = varint(payload, &at, Int(headerSize)), type >= 0, type != 10, type != 11 else {
                return nil
            }
            types.append(type)
        }
        var body = Int(headerSize)
        var values: [Value] = []
        for type in types {
            let length: Int
            switch type {
            case 0, 8, 9: length = 0
            case 1, 2, 3, 4: length = Int(type)
            case 5: length = 6
            case 6, 7: length = 8
            default: length = Int((type - 12) / 2)
            }
            guard body + length <= payload.count else { return nil }
            let slice = payload[body..<(body + length)]
            switch type {
            case 0: values.append(.null)
            case 8: values.append(.integer(0))
            case 9: values.append(.integer(1))
            case 1...6:
                var value: Int64 = Int64(Int8(bitPattern: slice.first!))
                for byte in slice.dropFirst() { value = value << 8 | Int64(byte) }
                values.append(.integer(value))
            case 7:
                var bits: UInt64 = 0
                for byte in slice { bits = bits << 8 | UInt64(byte) }
                values.append(.real(Double(bitPattern: bits)))
            default:
                values.append(type % 2 == 0 ? .blob(Array(slice)) : .text(Array(slice)))
            }
            body += length
        }
        return body == payload.count ? values : nil
    }
}
