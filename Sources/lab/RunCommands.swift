import Analysis
import ArgumentParser
import Foundation
import Registry
import Specs
import Training

extension Lab {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train experiment specs and record everything in the registry.",
            discussion: """
                Each spec is trained once per seed (train.seeds, or --seeds), with early stopping on the \
                validation split. The test split is evaluated only when the spec sets evaluate.test.
                """)

        @Argument(help: "Experiment spec files (JSON).", completion: .file(extensions: ["json"]))
        var specs: [String]

        @Option(name: .customLong("dataset"), help: "Override dataset.source.")
        var source: DatasetSpec.Source?

        @Option(help: "RAF-DB folder (overrides dataset.root and $LAB_RAFDB).", completion: .directory)
        var data: String?

        @Option(help: "Comma-separated seeds, overriding train.seeds (e.g. 1,2,3).", transform: SeedList.parse)
        var seeds: [Int]?

        @Option(name: .customLong("set"), help: ArgumentHelp(
            "Override a spec key after extends is merged, e.g. train.max_epochs=5 or model.widths=[16,32,64] (repeatable).",
            valueName: "key=value"))
        var overrides: [String] = []

        @OptionGroup var registry: RegistryOptions
        @OptionGroup var compute: ComputeOptions

        func validate() throws {
            if let bad = overrides.first(where: { SpecOverride($0) == nil }) {
                throw ValidationError("\(SpecOverride.usage), not '\(bad)'")
            }
        }

        func run() throws {
            // Every spec is checked before any work starts.
            let sets = overrides.compactMap(SpecOverride.init)
            let loaded = try specs.map { try SpecLoader.load($0, overrides: sets) }
            let reg = try registry.open()
            Interrupt.install()
            let runner = Runner(registry: reg, reporter: reporter)
            var ids = [String]()
            for spec in loaded {
                for seed in seeds ?? spec.train.runSeeds {
                    do {
                        let options = RunOptions(source: source, data: data, threads: compute.threads)
                        ids.append(try runner.run(spec, seed: seed, options: options))
                    } catch let e as Interrupted {
                        Progress.log("\(e)")
                        throw ExitCode(130)
                    }
                }
            }
            Progress.done()
            print(try RunTable.render(RunRow.all(reg).filter { ids.contains($0.id) }))
            let report = try loaded.contains(where: \.report.markdown)
                ? Report.markdown(reg, to: URL(fileURLWithPath: "reports/report.md"), pictures: GradCAMPictures.pairs) : nil
            print(NextSteps.text(runs: ids, registryPath: registry.path, report: report,
                                 explanations: ids.compactMap { runner.explanationFolders[$0] }))
        }
    }

    struct Resume: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Continue an interrupted or failed run from its last checkpoint.")

        @Argument(help: ArgumentHelp("Run id (any unique prefix).", valueName: "run"))
        var runID: String

        @OptionGroup var moved: MovedDataOption

        @OptionGroup var registry: RegistryOptions
        @OptionGroup var compute: ComputeOptions

        func run() throws {
            let reg = try registry.open()
            Interrupt.install()
            do {
                let options = RunOptions(data: moved.data, threads: compute.threads)
                let id = try Runner(registry: reg, reporter: reporter).resume(runID, options: options)
                Progress.done()
                print(try RunTable.render(RunRow.all(reg).filter { $0.id == id }))
            } catch let e as Interrupted {
                Progress.log("\(e)")
                throw ExitCode(130)
            }
        }
    }

    struct Test: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Evaluate on the untouched test split (the week-5 final evaluation).",
            discussion: "Takes a run id (prefix) or an experiment name (every completed run of it). Every look is recorded in "
                + "test_evaluations.")

        @Argument(help: "Run id (prefix) or experiment name.")
        var target: String

        @OptionGroup var moved: MovedDataOption

        @OptionGroup var registry: RegistryOptions
        @OptionGroup var compute: ComputeOptions

        func run() throws {
            let reg = try registry.open()
            let rows = try TestSplit.targets(reg, target)
            for row in rows {
                try TestSplit.evaluate(reg, row, data: moved.data, threads: compute.threads)
            }
            Progress.done()
            print(try RunTable.render(RunRow.all(reg).filter { r in rows.contains { $0.id == r.id } }))
        }
    }

    struct Runs: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the runs in the registry.")

        @OptionGroup var registry: RegistryOptions

        func run() throws {
            let rows = try RunRow.all(registry.open())
            print(rows.isEmpty ? "no runs in \(registry.path) yet; start one with: lab run "
                + "experiments/quickstart.json" : RunTable.render(rows))
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one run: resolved spec, epochs, confusion matrices, timings.")

        @Argument(help: ArgumentHelp("Run id (any unique prefix).", valueName: "run"))
        var runID: String

        @OptionGroup var registry: RegistryOptions

        func run() throws {
            print(try RunView.load(registry.open(), runID).text)
        }
    }
}
