import ArgumentParser
import Foundation
import Synthetic
import Training

extension Lab {
    struct DatasetCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dataset",
            abstract: "Write the built-in synthetic face set, or inspect a dataset folder.",
            subcommands: [Synth.self, Inspect.self])
    }
}

extension Lab.DatasetCommand {
    struct Synth: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write the synthetic face set in RAF-DB's folder layout.")

        @Option(help: "Output folder (must not exist yet, or be empty).", completion: .directory)
        var out: String

        @Option(help: "Training images.")
        var train = 6000

        @Option(help: "Test images.")
        var test = 1200

        @Option(help: "Generator seed.")
        var seed = 1

        @OptionGroup var sheet: ContactSheetOption

        @OptionGroup var compute: ComputeOptions

        func validate() throws {
            guard train >= 12, test >= 6 else { throw ValidationError("--train must be at least 12 and --test at least 6") }
            guard seed >= 0 else { throw ValidationError("--seed must be non-negative") }
            let url = URL(fileURLWithPath: out)
            if let items = try? FileManager.default.contentsOfDirectory(atPath: url.path), !items.isEmpty {
                throw ValidationError("\(out) exists and is not empty")
            }
        }

        func run() throws {
            let url = URL(fileURLWithPath: out)
            try SyntheticWriter.write(to: url, train: train, test: test, seed: UInt64(seed), threads: compute.threads,
                                      progress: Progress.show)
            Progress.done()
            print("wrote \(train + test) synthetic faces to \(out) (RAF-DB basic layout)")
            try sheet.write(root: url, threads: compute.threads)
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Count images per split and class, and list missing or corrupt files.")

        @Argument(help: "Dataset folder (RAF-DB basic, or the DATASET/ copy).", completion: .directory)
        var path: String

        @Option(help: "Image side after resizing.")
        var imageSize = 64

        @OptionGroup var sheet: ContactSheetOption

        @OptionGroup var compute: ComputeOptions

        func run() throws {
            let (text, _) = try DatasetInspection.report(root: URL(fileURLWithPath: path), imageSize: imageSize,
                                                         threads: compute.threads, status: Progress.show)
            Progress.done()
            print(text)
            try sheet.write(root: URL(fileURLWithPath: path), threads: compute.threads)
        }
    }
}

/// `--contact-sheet FILE`: eight training faces, each as loaded and then in
/// seven augmented draws, so augmentation can be looked at.
struct ContactSheetOption: ParsableArguments {
    @Option(help: "Also write a contact sheet of augmented training samples (JPEG).", completion: .file(extensions: ["jpg"]))
    var contactSheet: String?

    func write(root: URL, threads: Int) throws {
        guard let path = contactSheet else { return }
        try DatasetInspection.writeAugmentationPreview(root: root, to: URL(fileURLWithPath: path), threads: threads)
        print("contact sheet (first column as loaded, then augmented draws): \(path)")
    }
}
