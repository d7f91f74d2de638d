import Foundation
import XCTest
@testable import Specs
@testable import Sweeps
import Registry

/// Sweep planning without running anything: grid parsing, task identity, array specs.
final class SweepPlanTests: XCTestCase {
    func testGridValuesSplitAtTopLevelCommasOnly() throws {
        let axis = try XCTUnwrap(GridAxis("model.widths=[8,16],[16,32]"))
        XCTAssertEqual(axis.values.map(\.text), ["model.widths=[8,16]", "model.widths=[16,32]"])
        XCTAssertEqual(GridAxis("train.lr=0.001,0.0003")?.values.map { "\($0.value)" }, ["0.001", "0.0003"])
        for bad in ["train.lr", "=1,2", "train.lr=", "train.lr=1,,2", "train..lr=1"] { XCTAssertNil(GridAxis(bad), bad) }
    }

    func testTasksAreTheCrossProductAndTheSweepIDFollowsTheTasks() throws {
        let ws = try Workspace(); defer { ws.remove() }
        let file = ws.spec()
        let grid = [GridAxis("train.lr=0.001,0.003")!, GridAxis("model.skip=true,false")!]
        let tasks = try SweepPlanner.tasks(specs: [file], seeds: [1, 2], overrides: [SpecOverride("train.max_epochs=1")!], grid: grid)
        XCTAssertEqual(tasks.count, 8)
        XCTAssertEqual(Set(tasks.map(\.experimentID)).count, 4)
        XCTAssertEqual(tasks[0].name, "tiny[train.lr=0.001,model.skip=true]")
        XCTAssertEqual(tasks[0].parent, "tiny")
        XCTAssertEqual(tasks[0].maxEpochs, 1)
        // A task's stored spec resolves back to the same experiment id the runner will record.
        XCTAssertEqual(Registry.experimentID(specJSON: try tasks[5].spec().resolvedJSON), tasks[5].experimentID)
        XCTAssertEqual(SweepPlan(tasks: tasks, command: []).id, SweepPlan(tasks: tasks, command: ["other"]).id)
        XCTAssertNotEqual(SweepPlan(tasks: tasks, command: []).id, SweepPlan(tasks: Array(tasks.dropLast()), command: []).id)
        // The same spec twice is one set of tasks.
        XCTAssertEqual(try SweepPlanner.tasks(specs: [file, file], seeds: [1], overrides: [], grid: []).count, 1)
    }

    func testArraySpecListsOnlyTheTasksToRun() {
        XCTAssertEqual(SlurmScript.array([0, 1, 2, 3], total: 4, maxParallel: 2), "0-3%2")
        XCTAssertEqual(SlurmScript.array([1, 3], total: 4, maxParallel: nil), "1,3")
    }
}
