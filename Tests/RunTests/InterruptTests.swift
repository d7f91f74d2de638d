import Foundation
import XCTest
@testable import Training

/// Ctrl-C handling: one signal is one request, however often install() ran.
final class InterruptTests: XCTestCase {
    override func setUp() { Interrupt.reset() }
    override func tearDown() { Interrupt.reset() }

    /// A second set of handlers would see each signal twice, take the first
    /// Ctrl-C for the second and quit at once, unsaved. (A real signal is
    /// not sent here: this test process has threads that started before the
    /// handlers, so where a signal lands is up to the kernel; CLITests send
    /// real ones to `lab`.)
    func testInstallingTwiceKeepsOneHandlerPerSignal() throws {
        Interrupt.install()
        Interrupt.install()
        XCTAssertEqual(Interrupt.state.withLock { $0.sources.count }, 3, "one source per signal: SIGINT, SIGTERM, SIGUSR1")
        Interrupt.received(SIGUSR1)
        XCTAssertTrue(Interrupt.requested)
        XCTAssertEqual(Interrupt.requestedBy, "SIGUSR1 (Slurm: time limit near)")
    }
}
