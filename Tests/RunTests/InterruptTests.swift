import Foundation
import XCTest
@testable import Training

/// Ctrl-C handling: one signal is one request, however often install() ran.
final class InterruptTests: XCTestCase {
    override func setUp() { Interrupt.reset() }
    override func tearDown() { Interrupt.reset() }

    /// `lab sweep` installs the handlers in the command and again in its
    /// pool; a second set of handlers would see one signal twice, take it
    /// for the second Ctrl-C and exit at once (this test process with it).
    func testInstallingTwiceCountsOneSignalOnce() throws {
        Interrupt.install()
        Interrupt.install()
        XCTAssertEqual(Interrupt.state.withLock { $0.sources.count }, 3, "one source per signal")
        raise(SIGUSR1)
        let deadline = Date().addingTimeInterval(5)
        while !Interrupt.requested && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        Thread.sleep(forTimeInterval: 0.2)   // a second handler, if there were one, would have run by now
        XCTAssertTrue(Interrupt.requested)
        XCTAssertEqual(Interrupt.requestedBy, "SIGUSR1 (Slurm: time limit near)")
    }
}
