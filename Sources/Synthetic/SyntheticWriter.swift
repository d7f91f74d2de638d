import Faces
import Failures
import Foundation
import Synchronization

/// Writes the built-in synthetic face set in RAF-DB basic's own layout, so
/// that it is read by the same loader as the real dataset:
///   EmoLabel/list_patition_label.txt     train_00001.jpg 4
///   EmoLabel/distribution.txt            train_00001.jpg <7 fractions, RAF code order>
///   Image/aligned/train_00001_aligned.jpg  100x100 JPEG
///   Annotation/manual/train_00001_manu_attri.txt  5 landmarks "x y" (eyes, nose, mouth corners)
///   Annotation/mask/train_00001_mask.pgm   expressive-region mask (255 inside)
public enum SyntheticWriter {
    public static let version = 1

    /// Generates the set into `out` (which must not exist, or be empty).
    public static func write(to out: URL, train: Int, test: Int, seed: UInt64, threads: Int = 2,
                             progress: (String) -> Void = { _ in }) throws {
        let fm = FileManager.default
        for d in ["EmoLabel", "Image/aligned", "Annotation/manual", "Annotation/mask"] {
            try fm.createDirectory(at: out.appendingPathComponent(d), withIntermediateDirectories: true)
        }
        let total = train + test
        let labels = SlotArray(repeating: "", count: total), dists = SlotArray(repeating: "", count: total)
        let done = Mutex(0)
        let failure = Mutex<(any Error)?>(nil)
        let chunks = max(1, threads) * 8
        concurrently(chunks) { chunk in
            var k = chunk
            while k < total {
                let isTrain = k < train
                let number = isTrain ? k + 1 : k - train + 1
                let stem = String(format: "%@_%05d", (isTrain ? Split.train : Split.test).rawValue, number)
                // Test faces come from a disjoint index range of the same generator.
                let face = SyntheticFaces.render(seed: seed, index: isTrain ? k : 10_000_000 + (k - train))
                // JPEG quality varies like a crawled image set's does.
                let quality = 70 + Int(UInt64(truncatingIfNeeded: k &* 2_654_435_761) % 26)
                do {
                    try Data(JPEG.encode(RGBImage(width: face.size, height: face.size, pixels: face.rgb), quality: quality))
                        .write(to: out.appendingPathComponent("Image/aligned/\(stem)_aligned.jpg"))
                    try Data(face.landmarks.map { String(format: "%.2f\t%.2f", $0.x, $0.y) }.joined(separator: "\n").utf8 + [0x0A])
                        .write(to: out.appendingPathComponent("Annotation/manual/\(stem)_manu_attri.txt"))
                    try Data(PGM.encode(width: face.size, height: face.size, pixels: face.mask))
                        .write(to: out.appendingPathComponent("Annotation/mask/\(stem)_mask.pgm"))
                } catch {
                    failure.withLock { $0 = $0 ?? error }
                }
                labels[k] = "\(stem).jpg \(face.label)"
                dists[k] = "\(stem).jpg " + face.distribution.map { String(format: "%.4f", $0) }.joined(separator: " ")
                let d = done.withLock { $0 += 1; return $0 }
                if d % 250 == 0 || d == total { progress("drawing synthetic faces \(d)/\(total)") }
                k += chunks
            }
        }
        if let failure = failure.withLock({ $0 }) {
            throw Failure(.data, "\(out.path): cannot write the synthetic set: \(failure.localizedDescription)")
        }
        let labelFile = out.appendingPathComponent("EmoLabel/list_patition_label.txt")
        try Data((labels.array.joined(separator: "\n") + "\n").utf8).write(to: labelFile)
        try Data((dists.array.joined(separator: "\n") + "\n").utf8).write(to: out.appendingPathComponent("EmoLabel/distribution.txt"))
        try Data("""
            lab synthetic face set v\(version): \(train) train and \(test) test images, seed \(seed).
            Procedurally drawn faces in RAF-DB basic's layout (labels 1 surprise, 2 fear, 3 disgust,
            4 happiness, 5 sadness, 6 anger, 7 neutral); distribution.txt holds simulated crowd votes,
            Annotation/manual 5 landmarks, Annotation/mask the expressive regions (PGM).

            """.utf8).write(to: out.appendingPathComponent("README.txt"))
    }

    /// The cached set for these parameters, generated on first use. Built in
    /// a temporary folder and renamed, so an interrupted generation is never
    /// mistaken for a finished one.
    public static func ensure(in cache: URL, train: Int, test: Int, seed: UInt64, threads: Int = 2,
                              progress: (String) -> Void = { _ in }) throws -> URL {
        let fm = FileManager.default
        let dir = cache.appendingPathComponent("synthetic-v\(version)-seed\(seed)-\(train)x\(test)")
        if fm.fileExists(atPath: dir.appendingPathComponent("EmoLabel/list_patition_label.txt").path) { return dir }
        try fm.createDirectory(at: cache, withIntermediateDirectories: true)
        let tmp = cache.appendingPathComponent(".tmp-\(dir.lastPathComponent)-\(ProcessInfo.processInfo.processIdentifier)")
        try? fm.removeItem(at: tmp)
        do {
            try write(to: tmp, train: train, test: test, seed: seed, threads: threads, progress: progress)
        } catch {
            try? fm.removeItem(at: tmp)
            throw error
        }
        if rename(tmp.path, dir.path) != 0 {
            // Another process finished the same set first: use theirs.
            try? fm.removeItem(at: tmp)
            guard fm.fileExists(atPath: dir.appendingPathComponent("EmoLabel/list_patition_label.txt").path) else {
                throw Failure(.data, "\(dir.path): cannot create the synthetic set")
            }
        }
        return dir
    }
}
