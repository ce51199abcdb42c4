import Logging
import Testing

@testable import HorgosServer

@Suite struct JournalLogHandlerTests {
    @Test func journaldLinesCarrySyslogPriorityAndSortedMetadata() {
        let handler = JournalLogHandler(label: "horgosd", level: .info, format: .journald, write: { _ in })
        let line = handler.formatLine(
            level: .warning, message: "queue high", metadata: ["region": "AE", "bytes": "9000000"])
        #expect(line == "<4>horgosd: queue high bytes=9000000 region=AE\n")
        #expect(JournalLogHandler.syslogPriority(.critical) == 2)
        #expect(JournalLogHandler.syslogPriority(.info) == 6)
        #expect(JournalLogHandler.syslogPriority(.trace) == 7)
    }

    @Test func plainLinesHaveTimestampLevelAndStayOneLine() {
        let handler = JournalLogHandler(label: "horgosd", level: .info, format: .plain, write: { _ in })
        let line = handler.formatLine(level: .error, message: "bad\nthing", metadata: ["why": "two words"])
        #expect(line.hasSuffix(" ERROR horgosd: bad\\nthing why=\"two words\"\n"))
        #expect(line.filter { $0 == "\n" }.count == 1)
        #expect(line.first?.isNumber == true)  // 2026-...
    }

    @Test func journalStreamIsDetectedOnlyWhenItMatchesStderr() {
        let identity = JournalLogHandler.stderrStreamIdentity()
        #expect(identity != nil)
        #expect(JournalLogHandler.stderrIsJournal(environment: ["JOURNAL_STREAM": identity ?? "?"]))
        #expect(!JournalLogHandler.stderrIsJournal(environment: ["JOURNAL_STREAM": "1:2"]))
        #expect(!JournalLogHandler.stderrIsJournal(environment: [:]))
    }
}
