import Analysis
import Faces
import Failures
import Foundation
import Specs

/// `lab dataset inspect`: what is in a dataset folder, and what is wrong with it.
public enum DatasetInspection {
    public static func report(root: URL, imageSize: Int, threads: Int, status: (String) -> Void) throws -> (text: String, set: FaceSet) {
        let index = try RAFDB.index(root: root)
        let (set, report) = try FaceLoader.load(index, imageSize: imageSize, cacheDirectory: nil, collectProblems: true,
                                                threads: threads, progress: status)
        var out = ["dataset \(root.path)", "  layout         \(index.layout.rawValue)", "  label file     \(index.labelFile)",
                   "  labels         " + (set.distributions != nil ? "soft (crowd distribution from \(index.distributionFile!))"
                                                           : "hard (no distribution file)"),
                   "  fingerprint    \(set.fingerprint)"]
        let listed = index.records.count
        out.append("  listed         \(listed) images (\(index.records.filter { $0.split == .train }.count) train, "
            + "\(index.records.filter { $0.split == .test }.count) test)")
        out.append("  neutral        \(set.excludedNeutral[.train] ?? 0) train, \(set.excludedNeutral[.test] ?? 0) test (excluded)")
        let landmarks = index.records.filter { $0.landmarksPath != nil }.count, masks = index.records.filter { $0.maskPath != nil }.count
        out.append("  landmarks      \(landmarks) of \(listed) images; region masks \(masks) of \(listed)")
        out.append("  image sizes    (decoded, neutral excluded) " + set.sourceSizes.sorted { $0.value > $1.value }.map { "\($0.key): "
            + "\($0.value)" }.joined(separator: ", "))
        out.append("")
        let train = set.counts(.train), test = set.counts(.test)
        let rows = Emotion.allCases.map { e in [e.name, "\(e.rafCode)", "\(train[e.rawValue])", "\(test[e.rawValue])"] }
            + [["total", "", "\(train.reduce(0, +))", "\(test.reduce(0, +))"]]
        out.append(TextTable.render(["class", "RAF code"] + Split.allCases.map(\.rawValue), rows, rightAligned: [1, 2, 3]))
        out.append("")
        if report.problems.isEmpty {
            out.append("no missing or corrupt images")
        } else {
            out.append("\(report.problems.count) problem\(report.problems.count == 1 ? "" : "s") (missing or corrupt images, excluded "
                + "above):")
            out += report.problems.prefix(20).map { "  " + $0 }
            if report.problems.count > 20 { out.append("  ... and \(report.problems.count - 20) more") }
        }
        return (out.joined(separator: "\n"), set)
    }

    /// Eight training faces, each as loaded and then in seven augmented draws
    /// (the spec's default augmentation), so augmentation can be looked at.
    public static func writeAugmentationPreview(root: URL, to file: URL, threads: Int) throws {
        let (set, _) = try FaceLoader.load(try RAFDB.index(root: root), imageSize: 64, cacheDirectory: nil, collectProblems: true,
                                           threads: threads)
        let picks = Array((0..<set.count).filter { set.splits[$0] == .train }.prefix(8))
        let sheet = ContactSheet.augmented(set, indices: picks, perRow: 7, augmentation: AugmentSpec().augmentation, seed: 1)
        do { try Data(JPEG.encode(sheet, quality: 92)).write(to: file) } catch {
            throw Failure(.data, "cannot write \(file.path): \(error.localizedDescription)")
        }
    }
}
