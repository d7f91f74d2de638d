import Foundation
import XCTest
import Registry

/// A temporary folder with a cache, a registry path and tiny specs.
final class Workspace {
    let dir: URL
    var db: String { dir.appendingPathComponent("runs.db").path }

    init(_ name: String = #function) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("lab-ws-\(name.filter(\.isLetter).prefix(30))-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        setenv("LAB_CACHE", dir.appendingPathComponent("cache").path, 1)
    }

    func remove() { try? FileManager.default.removeItem(at: dir) }

    /// A small model on a small synthetic set: a few seconds per run.
    func spec(_ name: String = "tiny", extra: String = "", epochs: Int = 3, test: Bool = false) -> String {
        let path = dir.appendingPathComponent("\(name).json").path
        let json = """
        {
          "name": "\(name)",
          "dataset": { "source": "synthetic", "image_size": 16, "synthetic": { "train": 120, "test": 36, "seed": 3 } },
          "model": { "widths": [4, 8], "convs_per_block": [1, 2], "hidden": 8, "dropout": 0.25 },
          "train": { "batch_size": 16, "max_epochs": \(epochs), "early_stopping": { "patience": 5 } \(extra) },
          "evaluate": { "test": \(test) }
        }
        """
        _ = FileManager.default.createFile(atPath: path, contents: Data(json.utf8))
        return path
    }

    func registry() throws -> Registry { try Registry(path: db) }
}
