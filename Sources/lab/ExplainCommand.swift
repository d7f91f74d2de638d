import ArgumentParser
import Explain
import Faces
import Foundation
import Registry
import Specs
import Training

extension Lab {
    struct ExplainCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "explain",
            abstract: "Grad-CAM / Grad-CAM++ overlays for a run, with faithfulness and localization scores.",
            discussion: """
                Scores (stored in runs.db for split images): share of map energy inside the expressive regions, \
                pointing-game hits, deletion and insertion AUC, confidence drop keeping the top 20% of the map, \
                the same for a centre prior and a random map, and a cascading randomization check.
                """)

        @Argument(help: ArgumentHelp("Run id (any unique prefix).", valueName: "run"))
        var runID: String

        @Option(help: "Which class activation maps.")
        var method = MethodChoice.both

        @Option(help: ArgumentHelp("Layer to explain: a convolution (default: the last one, e.g. block3.conv3), a block's output "
                                   + "(block3: after attention and the shortcut) or a projection shortcut (block3.shortcut)."))
        var layer: String?

        @Option(help: "The split whose images are explained.")
        var split = EvalSplit.val

        @Option(help: "Number of split images (spread over the split).")
        var images = 32

        @Option(name: .customLong("image"), parsing: .singleValue, help: "Explain these JPEG files instead of split images.",
                completion: .file(extensions: ["jpg", "jpeg"]))
        var imagePaths: [String] = []

        @Option(name: .customLong("class"), help: "Class to explain: predicted, true, or a class name.")
        var targetClass = "predicted"

        @Option(help: "Output folder for overlays and the contact sheet.", completion: .directory)
        var out: String?

        @OptionGroup var moved: MovedDataOption

        @OptionGroup var registry: RegistryOptions
        @OptionGroup var compute: ComputeOptions

        func validate() throws {
            guard images >= 1 else { throw ValidationError("--images must be at least 1") }
            guard ["predicted", "true"].contains(targetClass) || Emotion(name: targetClass) != nil else {
                throw ValidationError("--class must be predicted, true or one of \(Emotion.allCases.map(\.name).joined(separator: ", "))")
            }
        }

        func run() throws {
            var o = ExplainOptions()
            o.methods = method.methods
            o.layer = layer; o.split = split; o.images = images; o.imagePaths = imagePaths
            o.targetClass = targetClass; o.out = out; o.data = moved.data; o.threads = compute.threads
            let report = try ExplainRunner.run(try registry.open(), run: runID, options: o, reporter: reporter)
            Progress.done()
            print(report.text)
        }
    }
}
