import Faces
import Foundation
import Synchronization

/// Finds a face file from what the registry names: the run's dataset folder
/// and the image's name in that dataset's own label file. Nothing from the
/// request is ever part of the path.
final class ImageFinder: Sendable {
    private let indexes = Mutex([String: [String: String]?]())   // root -> image name -> path relative to root

    func file(root: String?, image: String) -> URL? {
        guard let root, let rel = index(root)?[image] else { return nil }
        let base = URL(fileURLWithPath: root).standardizedFileURL
        let url = base.appendingPathComponent(rel).standardizedFileURL
        // A label file that names "../x" must not lead outside the dataset.
        guard url.path.hasPrefix(base.path + "/"), FileManager.default.isReadableFile(atPath: url.path) else { return nil }
        return url
    }

    /// The label file is read once per dataset folder (RAF-DB lists 15,339 faces).
    private func index(_ root: String) -> [String: String]? {
        indexes.withLock { indexes in
            if let known = indexes[root] { return known }
            let found = (try? RAFDB.index(root: URL(fileURLWithPath: root))).map { idx in
                Dictionary(idx.records.map { ($0.name, $0.imagePath) }, uniquingKeysWith: { a, _ in a })
            }
            indexes[root] = found
            return found
        }
    }

    static func contentType(_ url: URL) -> String {
        switch url.pathExtension.lowercased() {
        case "png": return "image/png"
        case "pgm", "ppm": return "image/x-portable-anymap"
        default: return "image/jpeg"
        }
    }
}
