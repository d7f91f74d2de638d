import Analysis
import ArgumentParser
import Foundation
import Registry
import Specs
import Training

extension Lab {
    struct CompareCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "compare",
            abstract: "Experiments side by side against the experiment each extends (validation by default).")

        @Argument(help: "Experiment names or run ids (default: every experiment with completed runs).")
        var targets: [String] = []

        @Option(help: "Compare everything against this experiment instead of each one's parent.")
        var baseline: String?

        @Option(help: "The split compared (test: only runs evaluated on test).")
        var split = EvalSplit.val

        @Option(help: "Only runs with these seeds, e.g. 1,2,3 (arms of equal size when a baseline has more runs).",
                transform: SeedList.parse)
        var seeds: [Int]?

        @Flag(help: "CSV on stdout instead of a table.")
        var csv = false

        @OptionGroup var registry: RegistryOptions

        func run() throws {
            let reg = try registry.open()
            var all = try Compare.load(reg, split: split)
            if let seeds { all = Compare.restricted(all, toSeeds: seeds) }
            if all.isEmpty {
                print("no completed runs with \(split.name) predictions in \(registry.path)")
                return
            }
            var names = [String]()
            for t in targets {
                if all[t] != nil { names.append(t); continue }
                let row = try RunRow.one(reg, t)
                names.append(row.experiment)
            }
            let rows = try Compare.rows(all, only: names.uniqued(), baseline: baseline)
            print(csv ? Compare.csv(rows, split: split) : Compare.text(rows, split: split), terminator: csv ? "" : "\n")
        }
    }

    struct CalibrateCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "calibrate",
            abstract: "A/A check of lab compare: split one experiment's runs into two arms many times and count how often it calls "
                + "them different.",
            discussion: "Every split compares a spec with itself, so a sound 5% test rejects in about 5% of them. "
                + "Also prints the run-to-run spread and how many runs per arm a 1-point difference needs.")

        @Argument(help: "An experiment with at least twice --arm completed runs.")
        var experiment: String

        @Option(help: "Runs per arm.")
        var arm = 3

        @Option(help: "Random splits (fewer when the runs allow fewer distinct ones).")
        var splits = 200

        @Option(help: "The split whose predictions are compared.")
        var split = EvalSplit.val

        @OptionGroup var registry: RegistryOptions

        func validate() throws {
            guard arm >= 2 else { throw ValidationError("--arm must be at least 2: a one-run arm cannot separate a change from its seed") }
            guard splits >= 1 else { throw ValidationError("--splits must be at least 1") }
        }

        func run() throws {
            let reg = try registry.open()
            let runs = try Compare.latestRuns(of: experiment, in: Compare.load(reg, split: split))
            print(try Calibration(experiment: experiment, correct: Compare.correctness(runs), arm: arm, splits: splits).text)
        }
    }

    struct ReportCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "report",
            abstract: "Write the full report: Markdown with SVG figures, or the tables as CSV.")

        @Flag(help: "Markdown report with learning curves and confusion matrices (the default).")
        var markdown = false

        @Flag(help: "CSV tables instead.")
        var csv = false

        @Option(help: "Output file (Markdown, default reports/report.md) or folder (CSV, default reports/csv).")
        var out: String?

        @OptionGroup var registry: RegistryOptions

        func validate() throws {
            if markdown && csv { throw ValidationError("choose one of --markdown and --csv") }
        }

        func run() throws {
            let reg = try registry.open()
            if csv {
                let files = try Report.csv(reg, to: URL(fileURLWithPath: out ?? "reports/csv"))
                for f in files { print(f.path) }
            } else {
                print(try Report.markdown(reg, to: URL(fileURLWithPath: out ?? "reports/report.md"), pictures: GradCAMPictures.pairs).path)
            }
        }
    }

    struct ExportCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export",
            abstract: "Tidy CSVs of the registry and a ready Jupyter notebook.")

        @Option(help: "Output folder.")
        var out = "notebooks-export"

        @OptionGroup var registry: RegistryOptions

        func run() throws {
            for f in try Export.write(try registry.open(), to: URL(fileURLWithPath: out)) { print(f.path) }
        }
    }
}
