import Crypto
import Failures
import Foundation
import LabRandom
import Synchronization

public enum LabelMode: Equatable, Sendable {
    /// The crowd distribution, neutral dropped, renormalized (needs a distribution file).
    case soft
    /// One-hot majority labels, optionally smoothed: (1 - e) * onehot + e / 6.
    case hard(smoothing: Float)

    public var name: String {
        switch self {
        case .soft: return "soft"
        case .hard(let e): return e > 0 ? "hard (smoothing \(e))" : "hard"
        }
    }
}

/// Images decoded, resized to `imageSize` and kept as 8-bit RGB, with
/// their labels. Neutral images are excluded (counted in `excludedNeutral`).
public final class FaceSet: Sendable {
    public let root: URL
    public let layout: FaceIndex.Layout
    public let imageSize: Int
    public let count: Int
    public let names: [String]
    public let splits: [Split]
    public let classes: [Int]            // majority label, Emotion raw value
    public let distributions: [[Float]]? // 6 per image in class order, when the dataset has them
    public let pixels: [UInt8]           // [count, S, S, 3]
    public let masks: [UInt8]?           // [count, S, S] region masks (synthetic set)
    public let excludedNeutral: [Split: Int]
    /// SHA-256 over the label files and every listed image's bytes.
    public let fingerprint: String
    public let sourceSizes: [String: Int] // "100x100" -> count

    init(root: URL, layout: FaceIndex.Layout, imageSize: Int, names: [String], splits: [Split], classes: [Int],
         distributions: [[Float]]?, pixels: [UInt8], masks: [UInt8]?, excludedNeutral: [Split: Int],
         fingerprint: String, sourceSizes: [String: Int]) {
        self.root = root; self.layout = layout; self.imageSize = imageSize; count = names.count
        self.names = names; self.splits = splits; self.classes = classes; self.distributions = distributions
        self.pixels = pixels; self.masks = masks; self.excludedNeutral = excludedNeutral
        self.fingerprint = fingerprint; self.sourceSizes = sourceSizes
    }

    /// Images per (split, class).
    public func counts(_ split: Split) -> [Int] {
        var c = [Int](repeating: 0, count: Emotion.count)
        for i in 0..<count where splits[i] == split { c[classes[i]] += 1 }
        return c
    }

    /// The label mode actually available: soft asked for but no
    /// distribution file falls back to hard (and says so in `name`).
    public func effectiveLabelMode(_ asked: LabelMode) -> LabelMode {
        if case .soft = asked, distributions == nil { return .hard(smoothing: 0) }
        return asked
    }

    /// Training target of image i (6 entries summing to 1).
    public func target(_ i: Int, mode: LabelMode, into out: UnsafeMutablePointer<Float>) {
        switch effectiveLabelMode(mode) {
        case .soft:
            let d = distributions![i]
            for k in 0..<Emotion.count { out[k] = d[k] }
        case .hard(let e):
            for k in 0..<Emotion.count { out[k] = e / Float(Emotion.count) }
            out[classes[i]] += 1 - e
        }
    }

    /// Stratified, seeded validation split of the official training images:
    /// the same (fraction, seed) gives the same split on every machine.
    public func split(validationFraction: Double, seed: UInt64) -> (train: [Int], validation: [Int], test: [Int]) {
        var train = [Int](), val = [Int]()
        for cls in 0..<Emotion.count {
            var members = (0..<count).filter { splits[$0] == .train && classes[$0] == cls }
            var rng = RNG(seed: seed &+ UInt64(cls) &* 0x9E37_79B9)
            members.shuffle(using: &rng)
            let nVal = Int((Double(members.count) * validationFraction).rounded())
            val += members.prefix(nVal)
            train += members.dropFirst(nVal)
        }
        return (train.sorted(), val.sorted(), (0..<count).filter { splits[$0] == .test })
    }
}

/// Problems found while decoding, one line each, file named.
public struct LoadReport: Sendable {
    public var problems: [String] = []
    public var fromCache = false
}

public enum FaceLoader {
    /// Decodes every non-neutral image of `index` to `imageSize`, using (and
    /// filling) a disk cache keyed by the files' names, sizes and times.
    /// Throws on the first unreadable image unless `collectProblems`.
    public static func load(_ index: FaceIndex, imageSize: Int, cacheDirectory: URL?,
                            collectProblems: Bool = false, threads: Int = 2,
                            progress: (String) -> Void = { _ in }) throws -> (FaceSet, LoadReport) {
        let fm = FileManager.default
        var report = LoadReport()
        let key = try cacheKey(index, imageSize: imageSize)
        let cacheFile = cacheDirectory?.appendingPathComponent("faces-\(key.prefix(24))-\(imageSize).bin")
        if let cacheFile, let set = FaceCache.read(cacheFile, root: index.root, layout: index.layout) {
            report.fromCache = true
            return (set, report)
        }

        let kept = index.records.filter { $0.emotion != nil }
        var excluded = [Split: Int]()
        for r in index.records where r.emotion == nil { excluded[r.split, default: 0] += 1 }
        let S = imageSize
        var pixels = [UInt8](repeating: 0, count: kept.count * S * S * 3)
        let hasMasks = !kept.isEmpty && kept.allSatisfy { $0.maskPath != nil }
        var masks = hasMasks ? [UInt8](repeating: 0, count: kept.count * S * S) : nil
        let digests = SlotArray(repeating: "", count: kept.count)
        let problems = SlotArray<String?>(repeating: nil, count: kept.count)
        let sizes = SlotArray(repeating: "", count: kept.count)
        let done = Mutex(0)
        pixels.withUnsafeMutableBufferPointer { px in
            let px = px
            let chunks = max(1, threads) * 8
            concurrently(chunks) { chunk in
                var i = chunk
                while i < kept.count {
                    let rec = kept[i]
                    let path = index.root.appendingPathComponent(rec.imagePath).path
                    do {
                        guard let data = fm.contents(atPath: path) else {
                            throw Failure(.data, "\(path): listed in \(index.labelFile) but missing")
                        }
                        let bytes = [UInt8](data)
                        digests[i] = SHA256.hash(data: bytes).hex
                        let img: RGBImage
                        do { img = try JPEG.decode(bytes) } catch { throw Failure(.data, "\(path): \(error)") }
                        sizes[i] = "\(img.width)x\(img.height)"
                        let small = img.resized(width: S, height: S)
                        small.pixels.withUnsafeBufferPointer { src in
                            (px.baseAddress! + i * S * S * 3).update(from: src.baseAddress!, count: S * S * 3)
                        }
                    } catch {
                        problems[i] = "\(error)"
                    }
                    i += chunks
                    let d = done.withLock { $0 += 1; return $0 }
                    if d % 500 == 0 { progress("decoding images \(d)/\(kept.count)") }
                }
            }
        }
        if hasMasks {
            for (i, rec) in kept.enumerated() {
                let path = index.root.appendingPathComponent(rec.maskPath!).path
                guard let data = fm.contents(atPath: path), let m = try? PGM.decode([UInt8](data)) else {
                    problems[i] = problems[i] ?? "\(path): unreadable mask"
                    continue
                }
                let img = RGBImage(width: m.width, height: m.height, pixels: m.pixels.flatMap { [$0, $0, $0] }).resized(width: S, height: S)
                for p in 0..<(S * S) { masks![i * S * S + p] = img.pixels[p * 3] >= 128 ? 255 : 0 }
            }
        }
        report.problems = problems.array.compactMap { $0 }
        if !report.problems.isEmpty && !collectProblems {
            let more = report.problems.count > 1
                ? " (and \(report.problems.count - 1) more problems; `lab dataset inspect \(index.root.path)` lists them)" : ""
            throw Failure(.data, report.problems[0] + more)
        }
        // Soft labels: neutral dropped, renormalized over the six classes, in class order.
        var distributions: [[Float]]? = nil
        if kept.allSatisfy({ $0.distribution != nil }) && !kept.isEmpty {
            distributions = kept.map { rec in
                let d = rec.distribution!
                var six = Emotion.allCases.map { d[$0.rafCode - 1] }
                let s = six.reduce(0, +)
                if s > 0 { six = six.map { $0 / s } } else { six = Emotion.allCases.map { $0 == rec.emotion! ? 1 : 0 } }
                return six
            }
        }
        var hasher = SHA256()
        for rel in index.labelFiles {
            if let d = fm.contents(atPath: index.root.appendingPathComponent(rel).path) { hasher.update(data: d) }
        }
        for (rec, dig) in zip(kept, digests.array) { hasher.update(data: Data("\(rec.name) \(dig)\n".utf8)) }
        var sourceSizes = [String: Int]()
        for s in sizes.array where !s.isEmpty { sourceSizes[s, default: 0] += 1 }
        let set = FaceSet(root: index.root, layout: index.layout, imageSize: S, names: kept.map(\.name),
                          splits: kept.map(\.split), classes: kept.map { $0.emotion!.rawValue },
                          distributions: distributions, pixels: pixels, masks: masks, excludedNeutral: excluded,
                          fingerprint: hasher.finalize().hex, sourceSizes: sourceSizes)
        if let cacheFile, report.problems.isEmpty { FaceCache.write(set, to: cacheFile) }
        return (set, report)
    }

    /// Names, sizes and modification times of everything the set is made of:
    /// cheap to compute (stat only), and any edit changes it.
    static func cacheKey(_ index: FaceIndex, imageSize: Int) throws -> String {
        let fm = FileManager.default
        var h = SHA256()
        h.update(data: Data("v1 \(imageSize) \(index.root.standardizedFileURL.path)\n".utf8))
        for rel in index.labelFiles {
            if let d = fm.contents(atPath: index.root.appendingPathComponent(rel).path) { h.update(data: d) }
        }
        for r in index.records {
            for rel in [r.imagePath, r.maskPath].compactMap({ $0 }) {
                let a = try? fm.attributesOfItem(atPath: index.root.appendingPathComponent(rel).path)
                let size = (a?[.size] as? NSNumber)?.intValue ?? -1
                let mtime = (a?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? -1
                h.update(data: Data("\(rel) \(size) \(mtime)\n".utf8))
            }
        }
        return h.finalize().hex
    }
}

extension Sequence where Element == UInt8 {
    var hex: String { map { String(format: "%02x", $0) }.joined() }
}

extension SHA256.Digest {
    var hex: String { Array(self).hex }
}

extension FaceSet {
    /// A set held only in memory (benchmarks, tests): every image is a
    /// training image of the given class, resized to `imageSize`.
    public static func inMemory(_ images: [RGBImage], classes: [Int], imageSize S: Int, names: [String]? = nil) -> FaceSet {
        var pixels = [UInt8]()
        pixels.reserveCapacity(images.count * S * S * 3)
        for img in images { pixels += img.resized(width: S, height: S).pixels }
        return FaceSet(root: URL(fileURLWithPath: "/dev/null"), layout: .official, imageSize: S,
                       names: names ?? images.indices.map { "memory_\($0).jpg" }, splits: images.map { _ in .train }, classes: classes,
                       distributions: nil, pixels: pixels, masks: nil, excludedNeutral: [:],
                       fingerprint: "in-memory", sourceSizes: [:])
    }
}
