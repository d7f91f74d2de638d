import Failures
import Foundation

/// The decoded-set cache: a JSON header line and the raw pixel (and mask)
/// bytes. Written to a temporary file and renamed, so a crash never leaves
/// a half-written cache that a later run would trust.
enum FaceCache {
    struct Header: Codable {
        var version = 1
        var imageSize: Int
        var names: [String]
        var splits: [Split]
        var classes: [Int]
        var distributions: [[Float]]?
        var hasMasks: Bool
        var excludedNeutral: [String: Int]
        var fingerprint: String
        var sourceSizes: [String: Int]
    }

    static func write(_ set: FaceSet, to url: URL) {
        let header = Header(imageSize: set.imageSize, names: set.names, splits: set.splits, classes: set.classes,
                            distributions: set.distributions, hasMasks: set.masks != nil,
                            excludedNeutral: Dictionary(uniqueKeysWithValues: set.excludedNeutral.map { ($0.key.rawValue, $0.value) }),
                            fingerprint: set.fingerprint, sourceSizes: set.sourceSizes)
        guard let json = try? JSONEncoder().encode(header) else { return }
        var data = Data("LABFACES\n".utf8)
        data.append(json)
        data.append(0x0A)
        data.append(contentsOf: set.pixels)
        if let m = set.masks { data.append(contentsOf: m) }
        try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let tmp = url.appendingPathExtension("tmp-\(ProcessInfo.processInfo.processIdentifier)")
        do {
            try data.write(to: tmp)
            guard rename(tmp.path, url.path) == 0 else { throw Failure(.data, "rename failed") }
        } catch {
            try? FileManager.default.removeItem(at: tmp)
        }
    }

    static func read(_ url: URL, root: URL, layout: FaceIndex.Layout) -> FaceSet? {
        guard let data = try? Data(contentsOf: url), data.starts(with: Data("LABFACES\n".utf8)) else { return nil }
        let body = data.dropFirst(9)
        guard let nl = body.firstIndex(of: 0x0A),
              let h = try? JSONDecoder().decode(Header.self, from: body[body.startIndex..<nl]), h.version == 1 else { return nil }
        let S = h.imageSize, n = h.names.count
        let px = body.index(after: nl)
        let needed = n * S * S * 3 + (h.hasMasks ? n * S * S : 0)
        guard data.endIndex - px == needed else { return nil }
        let pixels = [UInt8](data[px..<(px + n * S * S * 3)])
        let masks = h.hasMasks ? [UInt8](data[(px + n * S * S * 3)...]) : nil
        var excluded = [Split: Int]()
        for (k, v) in h.excludedNeutral { if let s = Split(rawValue: k) { excluded[s] = v } }
        return FaceSet(root: root, layout: layout, imageSize: S, names: h.names, splits: h.splits, classes: h.classes,
                       distributions: h.distributions, pixels: pixels, masks: masks, excludedNeutral: excluded,
                       fingerprint: h.fingerprint, sourceSizes: h.sourceSizes)
    }
}
