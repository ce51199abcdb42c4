import Dispatch
import Synchronization
import Testing

@testable import HorgosServer

@Suite struct RegionFlowControlTests {
    @Test func theQueueCountsBytesAndReportsTheHighWatermark() {
        let flow = RegionFlowControl(region: "AE", highWatermark: 100, lowWatermark: 50)
        #expect(!flow.add(60))
        #expect(flow.add(60))
        #expect(flow.queuedBytes == 120)
        flow.remove(120)
        #expect(flow.queuedBytes == 0)
    }

    @Test func aWaiterIsResumedOnceBelowTheLowWatermarkAndNotBefore() {
        let flow = RegionFlowControl(region: "AE", highWatermark: 100, lowWatermark: 50)
        _ = flow.add(150)
        let resumes = Atomic<Int>(0)
        let session = Atomic<Int>(0)
        #expect(flow.waitForRoom(ObjectIdentifier(session)) { resumes.wrappingAdd(1, ordering: .relaxed) })
        #expect(flow.waitingSessions == 1)
        flow.remove(90)  // 60 left: above the low mark
        #expect(resumes.load(ordering: .relaxed) == 0)
        flow.remove(20)  // 40 left
        #expect(resumes.load(ordering: .relaxed) == 1)
        #expect(flow.waitingSessions == 0)
        // Below the low mark a session does not wait at all.
        #expect(!flow.waitForRoom(ObjectIdentifier(session)) { resumes.wrappingAdd(1, ordering: .relaxed) })
        flow.remove(40)
        #expect(resumes.load(ordering: .relaxed) == 1)
    }

    @Test func aCancelledWaiterIsNotResumed() {
        let flow = RegionFlowControl(region: "AE", highWatermark: 100, lowWatermark: 50)
        _ = flow.add(150)
        let resumes = Atomic<Int>(0)
        let session = Atomic<Int>(0)
        #expect(flow.waitForRoom(ObjectIdentifier(session)) { resumes.wrappingAdd(1, ordering: .relaxed) })
        flow.cancelWait(ObjectIdentifier(session))
        flow.remove(150)
        #expect(resumes.load(ordering: .relaxed) == 0)
        #expect(flow.waitingSessions == 0)
    }

    /// The lock-free path must not lose a wake-up: a session that starts waiting while a commit
    /// empties the queue on another thread is either told to keep reading or resumed.
    @Test func aSessionStartingToWaitWhileACommitEmptiesTheQueueIsNeverLeftWaiting() {
        for _ in 0..<3_000 {
            let flow = RegionFlowControl(region: "AE", highWatermark: 100, lowWatermark: 50)
            _ = flow.add(200)
            let resumed = Atomic<Bool>(false)
            let waiting = Atomic<Bool>(false)
            let session = Atomic<Int>(0)
            let id = ObjectIdentifier(session)
            DispatchQueue.concurrentPerform(iterations: 2) { index in
                if index == 0 {
                    flow.remove(200)
                } else if flow.waitForRoom(id, resume: { resumed.store(true, ordering: .sequentiallyConsistent) }) {
                    waiting.store(true, ordering: .sequentiallyConsistent)
                }
            }
            let left = waiting.load(ordering: .sequentiallyConsistent) && !resumed.load(ordering: .sequentiallyConsistent)
            #expect(!left, "a session waits for room although the queue is empty")
            if left { return }
            #expect(flow.queuedBytes == 0)
        }
    }
}
