import Dispatch
import Synchronization
import Testing

@testable import HorgosServer

/// A session's identity and how often it was resumed.
final class WaitingSession: Sendable {
    let resumes = Atomic<Int>(0)
    var id: ObjectIdentifier { ObjectIdentifier(self) }
    var resumed: Int { resumes.load(ordering: .sequentiallyConsistent) }
    func resume() { resumes.wrappingAdd(1, ordering: .sequentiallyConsistent) }
}

@Suite struct RegionFlowControlTests {
    /// A region (high 100, low 50 bytes) holding 150 bytes, and a session registered to wait for room.
    static func sessionWaitingAt150Bytes() -> (RegionFlowControl, WaitingSession) {
        let flow = RegionFlowControl(region: "AE", highWatermark: 100, lowWatermark: 50)
        _ = flow.add(150)
        let session = WaitingSession()
        #expect(flow.waitForRoom(session.id) { session.resume() })
        return (flow, session)
    }

    @Test func theQueueCountsBytesAndReportsTheHighWatermark() {
        let flow = RegionFlowControl(region: "AE", highWatermark: 100, lowWatermark: 50)
        #expect(!flow.add(60))
        #expect(flow.add(60))
        #expect(flow.queuedBytes == 120)
        flow.remove(120)
        #expect(flow.queuedBytes == 0)
    }

    @Test func aWaiterIsResumedOnceBelowTheLowWatermarkAndNotBefore() {
        let (flow, session) = Self.sessionWaitingAt150Bytes()
        #expect(flow.waitingSessions == 1)
        flow.remove(90)  // 60 left: above the low mark
        #expect(session.resumed == 0)
        flow.remove(20)  // 40 left
        #expect(session.resumed == 1)
        #expect(flow.waitingSessions == 0)
        // Below the low mark a session does not wait at all.
        #expect(!flow.waitForRoom(session.id) { session.resume() })
        flow.remove(40)
        #expect(session.resumed == 1)
    }

    @Test func aCancelledWaiterIsNotResumed() {
        let (flow, session) = Self.sessionWaitingAt150Bytes()
        flow.cancelWait(session.id)
        flow.remove(150)
        #expect(session.resumed == 0)
        #expect(flow.waitingSessions == 0)
    }

    /// The lock-free path must not lose a wake-up: a session that starts waiting while a commit
    /// empties the queue on another thread is either told to keep reading or resumed.
    @Test func aSessionStartingToWaitWhileACommitEmptiesTheQueueIsNeverLeftWaiting() {
        for _ in 0..<3_000 {
            let flow = RegionFlowControl(region: "AE", highWatermark: 100, lowWatermark: 50)
            _ = flow.add(200)
            let session = WaitingSession()
            let waiting = WaitingSession()  // resumed = the session registered as waiting
            DispatchQueue.concurrentPerform(iterations: 2) { index in
                if index == 0 {
                    flow.remove(200)
                } else if flow.waitForRoom(session.id, resume: { session.resume() }) {
                    waiting.resume()
                }
            }
            let left = waiting.resumed == 1 && session.resumed == 0
            #expect(!left, "a session waits for room although the queue is empty")
            if left { return }
            #expect(flow.queuedBytes == 0)
        }
    }
}
