import HorgosStore
import HorgosWire
import NIOCore
import Synchronization

/// The publisher's retention hold: segments stay until every entry in them is on the stream, and a
/// region whose unpublished bytes reached `stream.max_lag_bytes` gets backpressure (its frames wait
/// before the journal, never dropped) until the publisher catches up.
public final class StreamRetentionHold: JournalRetentionHold {
    /// Every entry at or below this LSN is published (or is never to be published).
    let watermark: Atomic<UInt64>
    private let admitted: [Region: AdmissionFlag]

    final class AdmissionFlag: Sendable {
        let open = Atomic<Bool>(true)
    }

    init(published: UInt64, regions: [Region]) {
        watermark = Atomic(published)
        var flags: [Region: AdmissionFlag] = [:]
        for region in regions { flags[region] = AdmissionFlag() }
        admitted = flags
    }

    public var heldLSN: UInt64 { watermark.load(ordering: .acquiring) }

    public func admits(_ region: Region) -> Bool { admitted[region]?.open.load(ordering: .relaxed) ?? true }

    /// Opens or closes a region's admission; returns true when it opened (the journal should be woken).
    func setAdmitted(_ region: Region, _ open: Bool) -> Bool {
        guard let flag = admitted[region] else { return false }
        let old = flag.open.exchange(open, ordering: .relaxed)
        return open && !old
    }

    /// Regions currently held back (for `/status`).
    var heldRegions: [Region] { admitted.filter { !$0.value.open.load(ordering: .relaxed) }.map(\.key).sorted() }
}

/// `store.durability: replicated`: each durable round's ACKs wait here until the publisher's watermark
/// (every entry at or below it acknowledged by JetStream) reaches their LSN. Entries of regions the
/// stream does not carry (their policy forbids it) are acknowledged at once, as in `disk`.
public final class StreamAcknowledgementGate: JournalAcknowledgementGate {
    private let pending = Mutex(CircularBuffer<GatedCompletion>(initialCapacity: 1024))
    private let acknowledged: Atomic<UInt64>
    private let releasing = Mutex(())
    private let streams: @Sendable (Region) -> Bool

    init(published: UInt64, streams: @escaping @Sendable (Region) -> Bool) {
        acknowledged = Atomic(published)
        self.streams = streams
    }

    /// ACKs waiting for the stream now.
    public var waiting: Int { pending.withLock { $0.count } }

    public func hold(_ completions: [GatedCompletion]) {
        var now: [GatedCompletion] = []
        pending.withLock { queue in
            for completion in completions {
                if streams(completion.region) { queue.append(completion) } else { now.append(completion) }
            }
        }
        // Regions the stream does not carry: acknowledged as in `disk` (their sessions see no other order).
        for completion in now { completion.run() }
        // The watermark may already cover the round: release what it covers.
        release()
    }

    /// The stream acknowledged every entry at or below `lsn`.
    func advance(to lsn: UInt64) {
        acknowledged.store(lsn, ordering: .releasing)
        release()
    }

    /// Runs the completions the watermark covers, in LSN order. Serialized (the journal thread and the
    /// publisher's loop both release): a session's ACKs must leave in the order of its frames.
    private func release() {
        releasing.withLock { _ in
            let acked = acknowledged.load(ordering: .acquiring)
            let ready: [GatedCompletion] = pending.withLock { queue in
                var ready: [GatedCompletion] = []
                while let first = queue.first, first.lsn <= acked { ready.append(queue.removeFirst()) }
                return ready
            }
            for completion in ready { completion.run() }
        }
    }
}
