import Failures
import Foundation

public enum Split: String, Sendable, Codable, CaseIterable {
    case train, test
}

/// One image as listed by the dataset's label file.
public struct FaceRecord: Sendable, Equatable {
    public var name: String               // as listed, e.g. "train_00001.jpg"
    public var split: Split               // official split, from the name's prefix or folder
    public var rafLabel: Int              // RAF-DB code 1...7 (majority label)
    public var imagePath: String          // relative to the dataset root
    public var distribution: [Float]?     // 7 entries, RAF code order, when a distribution file has the image
    public var landmarksPath: String?     // Annotation/manual/<stem>_manu_attri.txt, when present
    public var maskPath: String?          // Annotation/mask/<stem>_mask.pgm (synthetic set)

    public var emotion: Emotion? { Emotion(rafCode: rafLabel) }
    public var stem: String { (name as NSString).deletingPathExtension }
}

/// What was found at a dataset root, before any image is decoded.
public struct FaceIndex: Sendable {
    public enum Layout: String, Sendable { case official = "RAF-DB basic", folders = "DATASET/{train,test}/{1..7} with CSV labels" }
    public var root: URL
    public var layout: Layout
    public var labelFile: String          // relative to root
    public var distributionFile: String?  // relative to root
    public var records: [FaceRecord]

    /// Every file whose content identifies the label set, relative to root.
    var labelFiles: [String] { [labelFile] + [distributionFile].compactMap { $0 } + (layout == .folders ? ["test_labels.csv"] : []) }
}

public enum RAFDB {
    public static let labelFileNames = ["list_patition_label.txt", "list_partition_label.txt"]
    public static let distributionFileNames = ["distribution.txt", "distribution_basic.txt"]

    /// What a user is told when nothing usable is at `root`.
    public static func expectedLayout(_ root: URL) -> String {
        "no RAF-DB dataset at \(root.path): expected EmoLabel/list_patition_label.txt with Image/aligned/*_aligned.jpg "
            + "(the official basic release), or train_labels.csv and test_labels.csv with DATASET/{train,test}/{1..7}/*.jpg"
    }

    /// Reads the label files of either layout. `root` may also be the folder
    /// holding `basic/`.
    public static func index(root: URL) throws -> FaceIndex {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: root.path, isDirectory: &isDir), isDir.boolValue else {
            throw Failure(.data, "dataset folder \(root.path) does not exist")
        }
        if let name = labelFileNames.first(where: { fm.fileExists(atPath: root.appendingPathComponent("EmoLabel/\($0)").path) }) {
            return try officialIndex(root: root, labelFile: "EmoLabel/\(name)")
        }
        if fm.fileExists(atPath: root.appendingPathComponent("train_labels.csv").path) {
            return try foldersIndex(root: root)
        }
        let basic = root.appendingPathComponent("basic")
        if fm.fileExists(atPath: basic.path) { return try index(root: basic) }
        throw Failure(.data, expectedLayout(root))
    }

    static func readLines(_ root: URL, _ rel: String) throws -> [Substring] {
        guard let data = fm.contents(atPath: root.appendingPathComponent(rel).path) else {
            throw Failure(.data, "\(root.appendingPathComponent(rel).path): cannot be read")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw Failure(.data, "\(root.appendingPathComponent(rel).path): not UTF-8 text")
        }
        // isNewline also matches "\r\n", which Swift treats as one Character.
        return text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
    }

    private static let fm = FileManager.default

    static func split(ofName name: String, file: String, line: Int) throws -> Split {
        // RAF-DB names each image after its official split: train_00001.jpg, test_0001.jpg.
        if let split = Split.allCases.first(where: { name.hasPrefix($0.rawValue) }) { return split }
        throw Failure(.data, "\(file):\(line): image \(name) is neither train_* nor test_*, so its official split is unknown")
    }

    static func parseLabel(_ s: Substring, name: String, file: String, line: Int) throws -> Int {
        guard let code = Int(s) else {
            throw Failure(.data, "\(file):\(line): label '\(s)' of \(name) is not a number (RAF-DB codes are 1..7)")
        }
        guard (1...7).contains(code) else {
            throw Failure(.data, "\(file):\(line): unknown label code \(code) for \(name) (RAF-DB codes are 1..7)")
        }
        return code
    }

    static func officialIndex(root: URL, labelFile: String) throws -> FaceIndex {
        let path = root.appendingPathComponent(labelFile).path
        var records = [FaceRecord]()
        for (i, raw) in try readLines(root, labelFile).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard parts.count == 2 else {
                throw Failure(.data, "\(path):\(i + 1): expected '<image> <label 1-7>', got '\(line)'")
            }
            let name = String(parts[0])
            let stem = (name as NSString).deletingPathExtension
            records.append(FaceRecord(
                name: name, split: try split(ofName: name, file: path, line: i + 1),
                rafLabel: try parseLabel(parts[1], name: name, file: path, line: i + 1),
                imagePath: "Image/aligned/\(stem)_aligned.jpg"))
        }
        if records.isEmpty { throw Failure(.data, "\(path): lists no images") }
        var index = FaceIndex(root: root, layout: .official, labelFile: labelFile, distributionFile: nil, records: records)
        try attachAnnotations(&index)
        return index
    }

    static func foldersIndex(root: URL) throws -> FaceIndex {
        var records = [FaceRecord]()
        for split in Split.allCases {
            let file = "\(split.rawValue)_labels.csv"
            let path = root.appendingPathComponent(file).path
            guard fm.fileExists(atPath: path) else {
                throw Failure(.data, "\(path): missing (the folder layout needs train_labels.csv and test_labels.csv)")
            }
            for (i, raw) in try readLines(root, file).enumerated() {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.isEmpty || (i == 0 && line.lowercased().hasPrefix("image")) { continue }
                let parts = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2 else {
                    throw Failure(.data, "\(path):\(i + 1): expected 'image,label', got '\(line)'")
                }
                let code = try parseLabel(Substring(parts[1]), name: parts[0], file: path, line: i + 1)
                records.append(FaceRecord(name: parts[0], split: split, rafLabel: code,
                                          imagePath: "DATASET/\(split.rawValue)/\(code)/\(parts[0])"))
            }
        }
        if records.isEmpty { throw Failure(.data, "\(root.path): train_labels.csv and test_labels.csv list no images") }
        var index = FaceIndex(root: root, layout: .folders, labelFile: "train_labels.csv", distributionFile: nil, records: records)
        try attachAnnotations(&index)
        return index
    }

    /// Distribution file (soft labels), landmarks and masks, where present.
    static func attachAnnotations(_ index: inout FaceIndex) throws {
        let root = index.root
        let candidates = distributionFileNames.flatMap { ["EmoLabel/\($0)", $0] }
        if let rel = candidates.first(where: { fm.fileExists(atPath: root.appendingPathComponent($0).path) }) {
            index.distributionFile = rel
            let path = root.appendingPathComponent(rel).path
            var rows = [String: [Float]]()
            for (i, raw) in try readLines(root, rel).enumerated() {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.isEmpty { continue }
                let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," })
                let values = parts.dropFirst().compactMap { Float($0) }
                guard parts.count == 8 || parts.count == 7, values.count == parts.count - 1,
                      values.allSatisfy({ $0 >= 0 && $0.isFinite }) else {
                    throw Failure(.data, "\(path):\(i + 1): expected an image name and 7 (or 6, without neutral) non-negative numbers, "
                                  + "got '\(line)'")
                }
                // Six numbers are the six emotions in RAF order without neutral.
                rows[String(parts[0])] = values.count == 7 ? values : values + [0]
            }
            for r in index.records.indices {
                let rec = index.records[r]
                index.records[r].distribution = rows[rec.name] ?? rows[(rec.imagePath as NSString).lastPathComponent]
            }
        }
        let manual = root.appendingPathComponent("Annotation/manual")
        let masks = root.appendingPathComponent("Annotation/mask")
        let hasManual = fm.fileExists(atPath: manual.path), hasMasks = fm.fileExists(atPath: masks.path)
        if hasManual || hasMasks {
            let manualFiles = Set((try? fm.contentsOfDirectory(atPath: manual.path)) ?? [])
            let maskFiles = Set((try? fm.contentsOfDirectory(atPath: masks.path)) ?? [])
            for r in index.records.indices {
                let stem = index.records[r].stem
                if manualFiles.contains("\(stem)_manu_attri.txt") {
                    index.records[r].landmarksPath = "Annotation/manual/\(stem)_manu_attri.txt"
                }
                if maskFiles.contains("\(stem)_mask.pgm") { index.records[r].maskPath = "Annotation/mask/\(stem)_mask.pgm" }
            }
        }
    }

    /// The first five landmark lines (x y): eye centres, nose tip, mouth corners.
    public static func landmarks(root: URL, path rel: String) throws -> [SIMD2<Float>] {
        let lines = try readLines(root, rel).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        guard lines.count >= 5 else {
            throw Failure(.data, "\(root.appendingPathComponent(rel).path): needs 5 landmark lines, has \(lines.count)")
        }
        return try lines.prefix(5).enumerated().map { i, l in
            let v = l.split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { Float($0) }
            guard v.count >= 2 else {
                throw Failure(.data, "\(root.appendingPathComponent(rel).path):\(i + 1): expected 'x y', got '\(l)'")
            }
            return SIMD2(v[0], v[1])
        }
    }
}
