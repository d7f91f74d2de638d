import Foundation
import XCTest
@testable import Faces

final class JPEGTests: XCTestCase {
    func testRoundTripIsClose() throws {
        let img = DatasetFixture.image(code: 3, k: 5)
        let back = try JPEG.decode(JPEG.encode(img, quality: 95))
        XCTAssertEqual(back.width, 100); XCTAssertEqual(back.height, 100)
        let err = zip(img.pixels, back.pixels).map { abs(Int($0) - Int($1)) }.reduce(0, +)
        XCTAssertLessThan(Double(err) / Double(img.pixels.count), 3.0, "mean abs error per channel")
    }

    func testCorruptAndTruncatedJPEGAreErrors() throws {
        let good = JPEG.encode(DatasetFixture.image(code: 1, k: 1))
        XCTAssertThrowsError(try JPEG.decode(Array("not a jpeg at all".utf8))) {
            XCTAssertTrue("\($0)".hasPrefix("not a JPEG file"), "\($0)")
        }
        XCTAssertThrowsError(try JPEG.decode(Array(good.prefix(good.count / 2)))) {
            XCTAssertTrue("\($0)".lowercased().contains("premature end"), "\($0)")
        }
        XCTAssertThrowsError(try JPEG.decode([]))
    }
}

final class ImageTests: XCTestCase {
    func testResizeAntialiasesACheckerboard() {
        // 1-pixel checkerboard at 100 -> 64: a proper low-pass gives flat grey;
        // point sampling would give a beat pattern of black and white.
        var px = [UInt8](repeating: 0, count: 100 * 100 * 3)
        for y in 0..<100 { for x in 0..<100 where (x + y) % 2 == 0 { for c in 0..<3 { px[(y * 100 + x) * 3 + c] = 255 } } }
        let small = RGBImage(width: 100, height: 100, pixels: px).resized(width: 64, height: 64)
        let v = small.pixels.map(Int.init)
        XCTAssertLessThan(v.max()! - v.min()!, 60, "range \(v.min()!)...\(v.max()!)")
        XCTAssertEqual(Double(v.reduce(0, +)) / Double(v.count), 127.5, accuracy: 3)
    }

    func testResizeKeepsAConstantImage() {
        let img = RGBImage(width: 100, height: 100, pixels: [UInt8](repeating: 77, count: 30000))
        XCTAssertTrue(img.resized(width: 64, height: 64).pixels.allSatisfy { $0 == 77 })
    }

    func testPGMRoundTrip() throws {
        let px: [UInt8] = (0..<12).map { UInt8($0 * 20) }
        let d = try PGM.decode(PGM.encode(width: 4, height: 3, pixels: px))
        XCTAssertEqual(d.width, 4); XCTAssertEqual(d.height, 3); XCTAssertEqual(d.pixels, px)
    }
}

final class EmotionTests: XCTestCase {
    func testRAFCodesMapByName() {
        let expected: [Int: Emotion?] = [1: .surprise, 2: .fear, 3: .disgust, 4: .happiness, 5: .sadness, 6: .anger, 7: nil]
        for (code, e) in expected { XCTAssertEqual(Emotion(rafCode: code), e, "code \(code)") }
        XCTAssertNil(Emotion(rafCode: 0)); XCTAssertNil(Emotion(rafCode: 8))
        XCTAssertEqual(Emotion.allCases.map(\.name), ["happiness", "surprise", "sadness", "anger", "disgust", "fear"])
        for e in Emotion.allCases { XCTAssertEqual(Emotion.rafNames[e.rafCode - 1], e.name) }
    }
}

final class RAFDBTests: XCTestCase {
    func testOfficialLayoutRoundTrips() throws {
        let fx = try DatasetFixture(); defer { fx.remove() }
        try fx.writeOfficial(trainPerCode: [1: 3, 2: 2, 3: 2, 4: 5, 5: 3, 6: 2, 7: 4], testPerCode: 1)
        let index = try RAFDB.index(root: fx.root)
        XCTAssertEqual(index.layout, .official)
        XCTAssertEqual(index.records.count, 21 + 7)
        XCTAssertEqual(index.distributionFile, "EmoLabel/distribution.txt")
        let (set, report) = try FaceLoader.load(index, imageSize: 64, cacheDirectory: nil)
        XCTAssertTrue(report.problems.isEmpty)
        XCTAssertEqual(set.count, 17 + 6, "neutral excluded")
        XCTAssertEqual(set.excludedNeutral[.train], 4)
        XCTAssertEqual(set.excludedNeutral[.test], 1)
        // Train counts in class order: happiness(4) 5, surprise(1) 3, sadness(5) 3, anger(6) 2, disgust(3) 2, fear(2) 2.
        XCTAssertEqual(set.counts(.train), [5, 3, 3, 2, 2, 2])
        XCTAssertEqual(set.counts(.test), [1, 1, 1, 1, 1, 1])
        XCTAssertEqual(set.pixels.count, 23 * 64 * 64 * 3)
        // The first train image is code 1 (surprise), its red channel encodes the code (30).
        XCTAssertEqual(set.names[0], "train_00001.jpg")
        XCTAssertEqual(set.classes[0], Emotion.surprise.rawValue)
        XCTAssertEqual(Double(set.pixels[0]), 30, accuracy: 4)
        // Soft labels: neutral's 4 votes dropped, renormalized over six classes, in class order.
        let d = try XCTUnwrap(set.distributions?[0])
        XCTAssertEqual(d.reduce(0, +), 1, accuracy: 1e-5)
        XCTAssertEqual(d[Emotion.surprise.rawValue], 28.0 / 38.0, accuracy: 1e-5)
        XCTAssertEqual(d[Emotion.fear.rawValue], 2.0 / 38.0, accuracy: 1e-5)
        var t = [Float](repeating: 0, count: 6)
        set.target(0, mode: .soft, into: &t)
        XCTAssertEqual(t, d)
        set.target(0, mode: .hard(smoothing: 0), into: &t)
        XCTAssertEqual(t, [0, 1, 0, 0, 0, 0])
        set.target(0, mode: .hard(smoothing: 0.12), into: &t)
        XCTAssertEqual(t[1], 0.9, accuracy: 1e-6); XCTAssertEqual(t[0], 0.02, accuracy: 1e-6)
        XCTAssertEqual(set.fingerprint.count, 64)
    }

    func testWithoutDistributionFileLabelsAreHard() throws {
        let fx = try DatasetFixture(); defer { fx.remove() }
        try fx.writeOfficial(trainPerCode: [1: 1, 4: 1], testPerCode: 0, distribution: false, labelFile: "list_partition_label.txt")
        let (set, _) = try FaceLoader.load(try RAFDB.index(root: fx.root), imageSize: 32, cacheDirectory: nil)
        XCTAssertNil(set.distributions)
        XCTAssertEqual(set.effectiveLabelMode(.soft), .hard(smoothing: 0))
    }

    func testFolderLayout() throws {
        let fx = try DatasetFixture(); defer { fx.remove() }
        var train = ["image,label"], test = ["image,label"]
        for (i, code) in [4, 4, 1, 7, 2].enumerated() {
            let name = String(format: "train_%05d_aligned.jpg", i + 1)
            train.append("\(name),\(code)")
            try fx.write("DATASET/train/\(code)/\(name)", JPEG.encode(DatasetFixture.image(code: code, k: i)))
        }
        test.append("test_00001_aligned.jpg,5")
        try fx.write("DATASET/test/5/test_00001_aligned.jpg", JPEG.encode(DatasetFixture.image(code: 5, k: 9)))
        try fx.write("train_labels.csv", text: train.joined(separator: "\n"))
        try fx.write("test_labels.csv", text: test.joined(separator: "\r\n"))
        let index = try RAFDB.index(root: fx.root)
        XCTAssertEqual(index.layout, .folders)
        let (set, _) = try FaceLoader.load(index, imageSize: 64, cacheDirectory: nil)
        XCTAssertEqual(set.count, 5)
        XCTAssertEqual(set.counts(.train), [2, 1, 0, 0, 0, 1])
        XCTAssertEqual(set.counts(.test), [0, 0, 1, 0, 0, 0])
    }

    func testSplitIsStratifiedDisjointAndStable() throws {
        let fx = try DatasetFixture(); defer { fx.remove() }
        try fx.writeOfficial(trainPerCode: [1: 10, 2: 10, 3: 10, 4: 30, 5: 20, 6: 10, 7: 5], testPerCode: 2)
        let (set, _) = try FaceLoader.load(try RAFDB.index(root: fx.root), imageSize: 16, cacheDirectory: nil, threads: 2)
        let a = set.split(validationFraction: 0.1, seed: 42)
        XCTAssertEqual(a.validation.count, 1 + 1 + 1 + 3 + 2 + 1)
        XCTAssertTrue(Set(a.train).isDisjoint(with: a.validation))
        XCTAssertEqual(Set(a.train + a.validation).count, set.counts(.train).reduce(0, +))
        XCTAssertTrue(a.test.allSatisfy { set.splits[$0] == .test })
        var perClass = [Int](repeating: 0, count: 6)
        for i in a.validation { perClass[set.classes[i]] += 1 }
        XCTAssertEqual(perClass, [3, 1, 2, 1, 1, 1], "10% of each class")
        let b = set.split(validationFraction: 0.1, seed: 42)
        XCTAssertEqual(a.validation, b.validation)
        XCTAssertNotEqual(a.validation, set.split(validationFraction: 0.1, seed: 43).validation)
    }

    func testDiskCacheServesASecondLoadAndNoticesEdits() throws {
        let fx = try DatasetFixture(); defer { fx.remove() }
        try fx.writeOfficial(trainPerCode: [1: 2, 4: 2], testPerCode: 1)
        let cache = fx.root.appendingPathComponent(".cache")
        let (a, ra) = try FaceLoader.load(try RAFDB.index(root: fx.root), imageSize: 32, cacheDirectory: cache)
        XCTAssertFalse(ra.fromCache)
        let (b, rb) = try FaceLoader.load(try RAFDB.index(root: fx.root), imageSize: 32, cacheDirectory: cache)
        XCTAssertTrue(rb.fromCache)
        XCTAssertEqual(a.pixels, b.pixels); XCTAssertEqual(a.fingerprint, b.fingerprint)
        XCTAssertEqual(a.distributions, b.distributions); XCTAssertEqual(a.classes, b.classes)
        try fx.write("Image/aligned/train_00001_aligned.jpg", JPEG.encode(DatasetFixture.image(code: 6, k: 99)))
        let (c, rc) = try FaceLoader.load(try RAFDB.index(root: fx.root), imageSize: 32, cacheDirectory: cache)
        XCTAssertFalse(rc.fromCache)
        XCTAssertNotEqual(c.fingerprint, a.fingerprint)
    }
}

final class BadInputTests: XCTestCase {
    func error(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch { return "\(error)" }
    }

    func testEachProblemIsOneLineNamingTheFile() throws {
        let fx = try DatasetFixture(); defer { fx.remove() }
        let labels = fx.root.appendingPathComponent("EmoLabel/list_patition_label.txt").path
        let empty = fx.root.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        XCTAssertTrue(error { _ = try RAFDB.index(root: empty) }.hasPrefix("no RAF-DB dataset at \(empty.path): expected EmoLabel/list_patition_label.txt"))
        XCTAssertEqual(error { _ = try RAFDB.index(root: fx.root.appendingPathComponent("nope")) },
                       "dataset folder \(fx.root.appendingPathComponent("nope").path) does not exist")

        try fx.writeOfficial(trainPerCode: [1: 2, 4: 2], testPerCode: 1)
        let good = try String(contentsOfFile: labels, encoding: .utf8)
        try fx.write("EmoLabel/list_patition_label.txt", text: good + "train_00099.jpg 9\n")
        XCTAssertEqual(error { _ = try RAFDB.index(root: fx.root) },
                       "\(labels):12: unknown label code 9 for train_00099.jpg (RAF-DB codes are 1..7)")
        try fx.write("EmoLabel/list_patition_label.txt", text: good + "train_00099.jpg\n")
        XCTAssertEqual(error { _ = try RAFDB.index(root: fx.root) },
                       "\(labels):12: expected '<image> <label 1-7>', got 'train_00099.jpg'")

        // Listed but missing.
        try fx.write("EmoLabel/list_patition_label.txt", text: good + "train_00099.jpg 4\n")
        let missing = fx.root.appendingPathComponent("Image/aligned/train_00099_aligned.jpg").path
        XCTAssertEqual(error { _ = try FaceLoader.load(try RAFDB.index(root: fx.root), imageSize: 32, cacheDirectory: nil) },
                       "\(missing): listed in EmoLabel/list_patition_label.txt but missing")
        try fx.write("EmoLabel/list_patition_label.txt", text: good)

        // Malformed distribution row.
        let dist = fx.root.appendingPathComponent("EmoLabel/distribution.txt").path
        let goodDist = try String(contentsOfFile: dist, encoding: .utf8)
        try fx.write("EmoLabel/distribution.txt", text: goodDist + "train_00001.jpg 0.1 0.2 abc\n")
        XCTAssertTrue(error { _ = try RAFDB.index(root: fx.root) }.hasPrefix("\(dist):12: expected an image name and 7"))
        try fx.write("EmoLabel/distribution.txt", text: goodDist)

        // Corrupt and truncated JPEGs: named, and the others are untouched.
        let img = "Image/aligned/train_00002_aligned.jpg"
        try fx.write(img, Array(repeating: 0x42, count: 500))
        let msg = error { _ = try FaceLoader.load(try RAFDB.index(root: fx.root), imageSize: 32, cacheDirectory: nil) }
        XCTAssertTrue(msg.hasPrefix(fx.root.appendingPathComponent(img).path + ": not a JPEG file"), msg)
        XCTAssertFalse(msg.contains("\n"))
        let bytes = JPEG.encode(DatasetFixture.image(code: 1, k: 2))
        try fx.write(img, Array(bytes.prefix(bytes.count / 2)))
        let (_, report) = try FaceLoader.load(try RAFDB.index(root: fx.root), imageSize: 32, cacheDirectory: nil, collectProblems: true)
        XCTAssertEqual(report.problems.count, 1)
        XCTAssertTrue(report.problems[0].contains("train_00002_aligned.jpg") && report.problems[0].lowercased().contains("premature end"), report.problems[0])
    }
}

final class AugmentTests: XCTestCase {
    func makeSet() throws -> (FaceSet, DatasetFixture) {
        let fx = try DatasetFixture("augment")
        try fx.writeOfficial(trainPerCode: [1: 2, 4: 2, 5: 1], testPerCode: 1)
        let (set, _) = try FaceLoader.load(try RAFDB.index(root: fx.root), imageSize: 64, cacheDirectory: nil)
        return (set, fx)
    }

    func testNoAugmentationIsExactNormalization() throws {
        let (set, fx) = try makeSet(); defer { fx.remove() }
        var x = [Float](repeating: 0, count: 64 * 64 * 3), t = [Float](repeating: 0, count: 6)
        Augmenter.assemble(x: &x, targets: &t, set: set, indices: [1], augmentation: nil, labelMode: .soft,
                           normalization: Normalization(), seed: 1)
        for p in 0..<x.count { XCTAssertEqual(x[p], Float(set.pixels[64 * 64 * 3 + p]) / 127.5 - 1, accuracy: 1e-6) }
        XCTAssertTrue(x.allSatisfy { $0 >= -1 && $0 <= 1 })
    }

    func testFlipOnlyMirrors() throws {
        let (set, fx) = try makeSet(); defer { fx.remove() }
        // Draw seeds until the flip coin comes up heads, then compare with the mirror image.
        var x = [Float](repeating: 0, count: 64 * 64 * 3), t = [Float](repeating: 0, count: 6)
        var flipped = 0
        for seed in 0..<20 {
            Augmenter.assemble(x: &x, targets: &t, set: set, indices: [0], augmentation: Augmentation(flip: true, rotation: 0, translation: 0),
                               labelMode: .soft, normalization: Normalization(), seed: UInt64(seed))
            let mirrored = (0..<64).allSatisfy { y in (0..<64).allSatisfy { xx in
                abs(x[(y * 64 + xx) * 3 + 1] - (Float(set.pixels[(y * 64 + 63 - xx) * 3 + 1]) / 127.5 - 1)) < 1e-4 } }
            if mirrored { flipped += 1 }
        }
        XCTAssertTrue((3...17).contains(flipped), "flipped \(flipped) of 20")
    }

    func testWarpIsDeterministicPerSeedAndStreamDeliversEveryImage() throws {
        let (set, fx) = try makeSet(); defer { fx.remove() }
        let order = Array((0..<set.count).reversed())
        func collect(_ seed: UInt64) -> ([Int], [Float]) {
            let s = BatchStream(set: set, order: order, batchSize: 3, augmentation: Augmentation(flip: true, rotation: 15, translation: 0.1), labelMode: .soft,
                                normalization: Normalization(), seed: seed)
            var idx = [Int](), xs = [Float]()
            while let b = s.next() {
                idx += b.indices
                xs += Array(UnsafeBufferPointer(start: b.x, count: b.count * 64 * 64 * 3))
                s.release(b)
            }
            return (idx, xs)
        }
        let a = collect(5), b = collect(5), c = collect(6)
        XCTAssertEqual(a.0, order)
        XCTAssertEqual(a.1, b.1)
        XCTAssertNotEqual(a.1, c.1)
    }
}

/// Faces from the wild: grayscale, progressive, CMYK and YCCK JPEGs (Adobe's
/// inverted ink) decode to the RGB face they were made from.
final class JPEGColourTests: XCTestCase {
    func fixture(_ name: String) throws -> [UInt8] {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: "jpg"))
        return Array(try Data(contentsOf: url))
    }

    /// Mean and largest absolute difference per channel value.
    func difference(_ a: [UInt8], _ b: [UInt8]) -> (mean: Double, max: Int) {
        var sum = 0, mx = 0
        for i in a.indices { let d = abs(Int(a[i]) - Int(b[i])); sum += d; mx = max(mx, d) }
        return (Double(sum) / Double(a.count), mx)
    }

    func testEveryEncodingDecodesToTheSameFace() throws {
        let rgb = try JPEG.decode(fixture("face_rgb"))
        XCTAssertEqual(rgb.width, 100); XCTAssertEqual(rgb.height, 100)
        for name in ["face_progressive", "face_cmyk", "face_ycck"] {
            let img = try JPEG.decode(fixture(name))
            XCTAssertEqual(img.pixels.count, rgb.pixels.count, name)
            let d = difference(img.pixels, rgb.pixels)
            XCTAssertLessThan(d.mean, 3, name)   // JPEG tolerance: quality 95 re-encoding
            XCTAssertLessThan(d.max, 48, name)
        }
        // Inverting the ink (the classic CMYK bug) would land near 255 - value: far off.
        let cmyk = try JPEG.decode(fixture("face_cmyk"))
        XCTAssertGreaterThan(difference(cmyk.pixels, rgb.pixels.map { 255 - $0 }).mean, 60)
        // Grayscale: the three channels equal, and close to the face's luma.
        let gray = try JPEG.decode(fixture("face_gray"))
        var lumaErr = 0.0
        for p in 0..<(100 * 100) {
            let g = gray.pixels[3 * p]
            XCTAssertEqual(g, gray.pixels[3 * p + 1]); XCTAssertEqual(g, gray.pixels[3 * p + 2])
            let y = 0.299 * Double(rgb.pixels[3 * p]) + 0.587 * Double(rgb.pixels[3 * p + 1]) + 0.114 * Double(rgb.pixels[3 * p + 2])
            lumaErr += abs(Double(g) - y)
        }
        // ImageMagick's Gray weighs the channels its own way (Rec. 709): a few levels from Rec. 601's luma.
        XCTAssertLessThan(lumaErr / 10_000, 8)
    }

    func testCMYKAndYCCKLoadInRAFDBLayout() throws {
        let fx = try DatasetFixture(); defer { fx.remove() }
        try fx.writeOfficial(trainPerCode: [1: 2, 4: 2], testPerCode: 1)
        // Replace three train faces with the same face in three encodings.
        let files = ["face_rgb", "face_cmyk", "face_ycck"]
        for (i, name) in files.enumerated() {
            try fx.write(String(format: "Image/aligned/train_%05d_aligned.jpg", i + 1), fixture(name))
        }
        let (set, report) = try FaceLoader.load(try RAFDB.index(root: fx.root), imageSize: 64, cacheDirectory: nil)
        XCTAssertTrue(report.problems.isEmpty, "\(report.problems)")
        let n = 64 * 64 * 3
        let faces = (0..<3).map { i -> [UInt8] in
            let k = try! XCTUnwrap(set.names.firstIndex(of: String(format: "train_%05d.jpg", i + 1)))
            return Array(set.pixels[(k * n)..<((k + 1) * n)])
        }
        for i in 1...2 { XCTAssertLessThan(difference(faces[i], faces[0]).mean, 3, files[i]) }
    }
}

final class GridTests: XCTestCase {
    /// Two framed groups on one row, 1-pixel tiles: every position worked out by hand.
    func testLayoutFramesGapsAndRepeatedLastTile() {
        func px(_ v: UInt8) -> RGBImage { RGBImage(width: 1, height: 1, pixels: [v, v, v]) }
        let g = Grid.sheet([[px(10), px(20)], [px(30)]], perRow: 2, gap: 1, frame: 1, borders: [(1, 2, 3), (4, 5, 6)])
        // Groups are 2 tiles + 2 frame = 4 wide, 1 + 2 = 3 high; 3 gaps across, 2 down.
        XCTAssertEqual([g.width, g.height], [11, 5])
        func at(_ x: Int, _ y: Int) -> [UInt8] { Array(g.pixels[((y * g.width + x) * 3)..<((y * g.width + x) * 3 + 3)]) }
        XCTAssertEqual(at(0, 0), [255, 255, 255])
        XCTAssertEqual(at(1, 1), [1, 2, 3])
        XCTAssertEqual(at(2, 2), [10, 10, 10])
        XCTAssertEqual(at(3, 2), [20, 20, 20])
        XCTAssertEqual(at(5, 2), [255, 255, 255])
        XCTAssertEqual(at(6, 3), [4, 5, 6])
        XCTAssertEqual(at(7, 2), [30, 30, 30])
        XCTAssertEqual(at(8, 2), [30, 30, 30], "a short group repeats its last tile")
    }
}

extension GridTests {
    /// The contact sheet built on Grid has the bytes of the hand-placed sheet it replaced.
    func testAugmentedContactSheetKeepsItsBytes() {
        let S = 16, gap = 2, perRow = 3, cols = perRow + 1
        let imgs = (0..<2).map { k in RGBImage(width: S, height: S, pixels: (0..<(S * S * 3)).map { UInt8(truncatingIfNeeded: $0 * (5 + k)) }) }
        let set = FaceSet.inMemory(imgs, classes: [0, 1], imageSize: S)
        let a = Augmentation(flip: true, rotation: 15, translation: 0.1)
        let sheet = ContactSheet.augmented(set, indices: [1, 0], perRow: perRow, augmentation: a, seed: 9)

        let w = cols * S + (cols + 1) * gap, h = 2 * S + 3 * gap
        var px = [UInt8](repeating: 255, count: w * h * 3)
        var buf = [Float](repeating: 0, count: S * S * 3), t = [Float](repeating: 0, count: Emotion.count)
        for (row, i) in [1, 0].enumerated() { for col in 0..<cols {
            Augmenter.assemble(x: &buf, targets: &t, set: set, indices: [i], augmentation: col == 0 ? nil : a,
                               labelMode: .hard(smoothing: 0), normalization: Normalization(), seed: 9 &+ UInt64(row * 1000 + col))
            let x0 = gap + col * (S + gap), y0 = gap + row * (S + gap)
            for y in 0..<S { for x in 0..<S { for c in 0..<3 {
                px[((y0 + y) * w + x0 + x) * 3 + c] = UInt8(max(0, min(255, (buf[(y * S + x) * 3 + c] + 1) * 127.5)))
            } } }
        } }
        XCTAssertEqual([sheet.width, sheet.height], [w, h])
        XCTAssertEqual(sheet.pixels, px)
    }

    /// An epoch that throws part-way (a failed heartbeat write, Ctrl-C, a
    /// diverged loss) must not leave the stream's producer thread blocked
    /// on buffers that never come back: it holds the stream until it ends,
    /// so the stream going away says the thread has ended.
    func testAConsumerThatThrowsLeavesNoProducerThreadBehind() throws {
        struct Stop: Error {}
        let set = FaceSet.inMemory((0..<40).map { _ in RGBImage(width: 8, height: 8, pixels: [UInt8](repeating: 9, count: 8 * 8 * 3)) },
                                   classes: (0..<40).map { $0 % Emotion.count }, imageSize: 8)
        weak var gone: BatchStream?
        var seen = 0
        do {
            let stream = BatchStream(set: set, order: Array(0..<40), batchSize: 2, augmentation: nil, labelMode: .hard(smoothing: 0),
                                     normalization: Normalization(), seed: 1)
            gone = stream
            XCTAssertThrowsError(try stream.forEach { _ in
                seen += 1
                if seen == 2 { throw Stop() }
            })
        }
        let deadline = Date().addingTimeInterval(5)
        while gone != nil && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        XCTAssertEqual(seen, 2)
        XCTAssertNil(gone, "the producer thread still holds the stream: it is blocked waiting for buffers")
    }
}
