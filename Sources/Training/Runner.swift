import Analysis
import Engine
import Faces
import Failures
import Foundation
import LabRandom
import Registry
import Specs

/// Where a run's messages go: `status` is a transient progress line,
/// `log` a line to keep.
public struct Reporter: Sendable {
    public var status: @Sendable (String) -> Void
    public var log: @Sendable (String) -> Void
    public init(status: @escaping @Sendable (String) -> Void, log: @escaping @Sendable (String) -> Void) {
        self.status = status; self.log = log
    }
    public static let silent = Reporter(status: { _ in }, log: { _ in })
}

public struct RunOptions: Sendable {
    public var source: DatasetSpec.Source?        // --dataset
    public var data: String?          // --data
    public var threads: Int
    public init(source: DatasetSpec.Source? = nil, data: String? = nil, threads: Int = 2) {
        self.source = source; self.data = data; self.threads = threads
    }
}

/// Trainer state saved with the last checkpoint, for `lab resume`.
struct TrainerState: Codable {
    var epoch: Int                 // last completed epoch (1-based)
    var bestEpoch: Int
    var bestScore: Double          // monitored value, oriented so larger is better
    var badEpochs: Int
    var trainSeconds: Double
    var stopped: Bool              // early stopping fired

    /// -greatestFiniteMagnitude, not -infinity: the state is stored as JSON, which has no infinities.
    static let start = TrainerState(epoch: 0, bestEpoch: 0, bestScore: -.greatestFiniteMagnitude, badEpochs: 0, trainSeconds: 0,
                                    stopped: false)
}

public final class Runner {
    public let registry: Registry
    public let reporter: Reporter
    /// Where each run's spec-triggered overlays and contact sheet went.
    public private(set) var explanationFolders: [String: URL] = [:]

    public init(registry: Registry, reporter: Reporter) {
        self.registry = registry; self.reporter = reporter
    }

    /// The run in progress: what every step of training reads.
    struct RunInProgress {
        let id: String
        let spec: ExperimentSpec
        let seed: Int
        let data: PreparedData
        let model: Model
        let adam: Adam
        /// train.ema_decay's moving average of the weights, when the spec asks for one.
        let average: WeightAverage?
        let options: RunOptions
    }

    /// Trains one spec for one seed; returns the run id.
    @discardableResult
    public func run(_ spec: ExperimentSpec, seed: Int, options: RunOptions) throws -> String {
        let data = try DataSource.prepare(spec: spec, source: options.source, data: options.data, threads: options.threads,
                                          log: reporter.log, status: reporter.status)
        let (model, adam) = freshModel(spec, seed: seed, threads: options.threads)
        let average = weightAverage(spec, model)
        let expID = try registry.experiment(name: spec.name, parent: spec.parent, specJSON: spec.resolvedJSON,
                                            description: spec.description)
        var run = Run(experimentId: expID, seed: seed)
        run.gitCommit = Provenance.gitCommit; run.gitDirty = Provenance.gitDirty.map { $0 != 0 }; run.host = Provenance.host
        run.pid = Int(ProcessInfo.processInfo.processIdentifier); run.threads = options.threads; run.blas = BLAS.config
        run.swiftVersion = Provenance.swiftVersion; run.build = engineBuildConfiguration
        run.datasetSource = data.source; run.datasetRoot = data.set.root.path; run.datasetFingerprint = data.set.fingerprint
        run.labelMode = data.labelMode.name; run.splitSeed = spec.dataset.splitSeed
        run.nTrain = data.train.count; run.nVal = data.validation.count; run.nTest = data.test.count
        run.params = model.parameterCount; run.classCounts = classCounts(data)
        let runID = try registry.startRun(run)
        reporter.log("run \(runID): \(spec.name), seed \(seed), \(data.source) data (\(data.train.count) train / "
                     + "\(data.validation.count) val, \(data.labelMode.name) labels), \(model.parameterCount) parameters, "
                     + "\(options.threads) threads")
        if let note = Imbalance.stackedRemedies(spec) { reporter.log(note) }
        return try train(RunInProgress(id: runID, spec: spec, seed: seed, data: data, model: model, adam: adam, average: average,
                                  options: options), from: .start)
    }

    /// Continues a run from its last checkpoint; the result equals an uninterrupted run's.
    @discardableResult
    public func resume(_ runPrefix: String, options: RunOptions) throws -> String {
        let runID = try registry.resolveRun(runPrefix)
        let row = try RunRow.fetch(registry, runID)
        if row.status == .completed { throw Failure(.registry, "run \(runID) already completed") }
        // `running` here means a fresh heartbeat and, on this host, a live pid (RunRow reads the rest as interrupted).
        if row.status == .running {
            throw Failure(.registry, "run \(runID) is still running (pid \(row.pid.map(String.init) ?? "?") on \(row.host ?? "?")); "
                          + "stop it first (Ctrl-C marks it interrupted), or wait two minutes after a crash")
        }
        let spec = try row.resolvedSpec()
        let threads = row.threads ?? options.threads
        if threads != options.threads {
            reporter.log("note: resuming with the run's own \(threads) threads (results depend on the thread count)")
        }
        let opts = RunOptions(source: row.datasetSource.flatMap(DatasetSpec.Source.init(rawValue:)), data: options.data ?? row.datasetRoot,
                              threads: threads)
        let data = try row.prepareData(spec: spec, data: options.data, threads: threads, reporter: reporter)
        guard let last = try registry.checkpoint(run: runID, kind: .last), let opt = last.optimizer, let stateJSON = last.stateJson,
              let state = try? JSONDecoder().decode(TrainerState.self, from: Data(stateJSON.utf8)) else {
            // Died before its first epoch ended: start over under the same id.
            reporter.log("run \(runID) has no checkpoint yet; starting it from epoch 1")
            let (model, adam) = freshModel(spec, seed: row.seed, threads: threads)
            try claim(row)
            return try train(RunInProgress(id: runID, spec: spec, seed: row.seed, data: data, model: model, adam: adam,
                                      average: weightAverage(spec, model), options: opts), from: .start)
        }
        let (model, _) = try Model.load(checkpoint: [UInt8](last.data), threads: opts.threads)
        let adam = Adam(parameters: model.parameters,
                        config: AdamConfig(lr: Float(spec.train.lr), weightDecay: Float(spec.train.weightDecay)))
        let meta = try adam.load(state: [UInt8](opt))
        // With a weight average the checkpoint holds the average; the weights training continues from are in the optimizer state.
        let average = weightAverage(spec, model)
        if let average {
            let tensors = try Safetensors.decode([UInt8](opt)).tensors
            let held = Dictionary(uniqueKeysWithValues: average.names.compactMap { n in tensors["weights.\(n)"].map { (n, $0) } })
            try average.restore(held: held, updates: Int(meta["ema_updates"] ?? "") ?? 0, swapped: true)
            average.swap()
        }
        try claim(row)
        reporter.log("resuming run \(runID) (\(spec.name), seed \(row.seed)) after epoch \(state.epoch)")
        return try train(RunInProgress(id: runID, spec: spec, seed: row.seed, data: data, model: model, adam: adam, average: average,
                                  options: opts), from: state)
    }

    /// Records this process (pid and host) as the run's owner, unless another
    /// `lab resume` took it over since `row` was read.
    func claim(_ row: RunRow) throws {
        let pid = Int(ProcessInfo.processInfo.processIdentifier)
        guard try registry.claimRun(row.id, seenHeartbeat: row.heartbeatAt, pid: pid, host: Provenance.host) else {
            throw Failure(.registry, "run \(row.id) was taken over by another process meanwhile (see lab show \(row.id))")
        }
    }

    /// A newly initialized model and optimizer: a pure function of (spec, seed).
    func freshModel(_ spec: ExperimentSpec, seed: Int, threads: Int) -> (Model, Adam) {
        let model = Model(config: spec.model.config, imageSize: spec.dataset.imageSize, threads: threads)
        var rng = RNG(seed: RNG.mix(UInt64(seed), 0, 1))
        model.initialize(rng: &rng)
        let config = AdamConfig(lr: Float(spec.train.lr), weightDecay: Float(spec.train.weightDecay))
        return (model, Adam(parameters: model.parameters, config: config))
    }

    /// The weight average a spec asks for (train.ema_decay), started at the model's weights.
    func weightAverage(_ spec: ExperimentSpec, _ model: Model) -> WeightAverage? {
        spec.train.emaDecay > 0 ? WeightAverage(model: model, decay: Float(spec.train.emaDecay)) : nil
    }

    func train(_ t: RunInProgress, from initial: TrainerState) throws -> String {
        var state = initial
        do {
            let imbalance = Imbalance(t.spec, trainClasses: t.data.train.map { t.data.set.classes[$0] })
            var lastBeat = Date()
            while !state.stopped && state.epoch < t.spec.train.maxEpochs {
                let t0 = Date()
                let pass = try trainEpoch(t, epoch: state.epoch + 1, imbalance: imbalance, started: t0, lastBeat: &lastBeat)
                try endEpoch(t, pass, started: t0, state: &state)
            }
            try finish(t, state: state)
            return t.id
        } catch let e as Interrupted {
            try? registry.endRun(t.id, .interrupted, error: "interrupted by \(Interrupt.requestedBy) after epoch \(state.epoch)")
            throw e
        } catch {
            try? registry.endRun(t.id, .failed, error: "\(error)")
            throw error
        }
    }

    /// One epoch's training pass: what it saw and how it did.
    struct EpochPass {
        var epoch: Int
        var lossSum = 0.0, correct = 0, seen = 0
        var trainSeconds = 0.0
        var trainLoss: Double { lossSum / Double(max(seen, 1)) }
        var trainAccuracy: Double { Double(correct) / Double(max(seen, 1)) }
    }

    func trainEpoch(_ t: RunInProgress, epoch: Int, imbalance all: Imbalance, started t0: Date, lastBeat: inout Date) throws -> EpochPass {
        let (spec, data, model, adam) = (t.spec, t.data, t.model, t.adam)
        let L = Emotion.count, seed64 = UInt64(t.seed), imbalance = all.at(epoch: epoch)
        let order = imbalance.epochOrder(data.train, classes: data.set.classes, seed: seed64, epoch: epoch)
        var dropout = RNG(seed: RNG.mix(seed64, UInt64(epoch), 3))
        let stream = BatchStream(set: data.set, order: order, batchSize: spec.train.batchSize,
                                 augmentation: spec.augment.augmentation.isIdentity ? nil : spec.augment.augmentation,
                                 labelMode: data.labelMode, normalization: data.normalization,
                                 seed: RNG.mix(seed64, UInt64(epoch), 4))
        var p = EpochPass(epoch: epoch), b = 0
        // However the epoch ends, the stream's producer thread is stopped (forEach cancels it).
        try stream.forEach { batch in
            if Interrupt.requested { throw Interrupted(runID: t.id) }
            let n = batch.count
            model.forward(batch.x, N: n, training: true, rng: &dropout)
            let faceWeights = imbalance.faceWeights(batch.indices.map { data.set.classes[$0] })
            let loss = imbalance.loss(model, targets: batch.targets, faceWeights: faceWeights, N: n)
            if !loss.isFinite {
                throw Failure(.data, "training diverged (loss \(loss)) at epoch \(epoch), batch \(b + 1); "
                              + "lower train.lr (now \(Float(spec.train.lr)))")
            }
            imbalance.backward(model, targets: batch.targets, faceWeights: faceWeights, N: n)
            adam.config.lr = spec.train.lrSchedule.lr(step: adam.step + 1, stepsPerEpoch: stream.batchCount)
            adam.update()
            t.average?.update()
            for k in 0..<n {
                let truth = data.set.classes[batch.indices[batch.indices.startIndex + k]]
                if argmax(model.probs.data + k * L, count: L) == truth { p.correct += 1 }
            }
            p.lossSum += Double(loss) * Double(n); p.seen += n; b += 1
            let ips = Double(p.seen) / max(Date().timeIntervalSince(t0), 1e-9)
            let remaining = Double(order.count - p.seen) / ips
                + Double(spec.train.maxEpochs - epoch) * Double(order.count + data.validation.count / 3) / ips
            reporter.status(String(format: "%@ seed %d | epoch %d/%d batch %d/%d | %.0f img/s | loss %.4f acc %.3f | ETA %@",
                                   spec.name, t.seed, epoch, spec.train.maxEpochs, b, stream.batchCount, ips,
                                   p.lossSum / Double(p.seen), Double(p.correct) / Double(p.seen), Format.duration(remaining)))
            if Date().timeIntervalSince(lastBeat) > 20 { try registry.heartbeat(t.id); lastBeat = Date() }
        }
        p.trainSeconds = Date().timeIntervalSince(t0)
        return p
    }

    /// Validation, early stopping, and the epoch's row and checkpoints in one transaction.
    /// With a weight average, the average is what is validated and saved; the
    /// live weights ride along in the optimizer state, for resuming.
    func endEpoch(_ t: RunInProgress, _ p: EpochPass, started t0: Date, state: inout TrainerState) throws {
        let (spec, data, model) = (t.spec, t.data, t.model)
        t.average?.swap()
        defer { t.average?.swap() }
        let val = evaluate(model, data: data, indices: data.validation, batch: spec.train.batchSize, S: spec.dataset.imageSize)
        let valMetrics = Metrics(probs: val, truth: data.validation.map { data.set.classes[$0] }, classes: Emotion.count)
        let raw = Runner.score(spec.train.earlyStopping.monitor, valMetrics)
        let score = raw.isFinite ? raw : -.greatestFiniteMagnitude
        let improved = score > state.bestScore + spec.train.earlyStopping.minDelta
        let epoch = p.epoch
        state.epoch = epoch
        state.trainSeconds += Date().timeIntervalSince(t0)
        if improved { state.bestScore = score; state.bestEpoch = epoch; state.badEpochs = 0 } else { state.badEpochs += 1 }
        if state.badEpochs >= spec.train.earlyStopping.patience { state.stopped = true }
        let ckpt = model.checkpoint(metadata: checkpointMetadata(t, epoch: epoch))
        let stateJSON = String(data: try JSONEncoder().encode(state), encoding: .utf8)!
        let best = improved ? EpochProgress.Best(epoch: epoch, valLoss: valMetrics.nll, valAccuracy: valMetrics.accuracy,
                                                 valMacroF1: valMetrics.macroF1) : nil
        try registry.recordEpoch(
            Epoch(runId: t.id, epoch: epoch, trainLoss: p.trainLoss, trainAccuracy: p.trainAccuracy,
                  valLoss: valMetrics.nll, valAccuracy: valMetrics.accuracy, valMacroF1: valMetrics.macroF1,
                  lr: Double(t.adam.config.lr), seconds: Date().timeIntervalSince(t0), imagesPerSecond: Double(p.seen) / p.trainSeconds),
            progress: EpochProgress(epochsRun: epoch, trainSeconds: state.trainSeconds, best: best),
            last: Checkpoint(runId: t.id, kind: .last, epoch: epoch, isBest: improved, data: ckpt,
                             optimizer: optimizerState(t.adam, t.average), stateJson: stateJSON),
            best: improved ? Checkpoint(runId: t.id, kind: .best, epoch: epoch, isBest: true, data: ckpt) : nil)
        reporter.log(String(format: "%@ seed %d epoch %3d  train loss %.4f acc %.3f | val loss %.4f acc %.3f macro-F1 %.3f | %.0f img/s %@",
                            spec.name, t.seed, epoch, p.trainLoss, p.trainAccuracy,
                            valMetrics.nll, valMetrics.accuracy, valMetrics.macroF1, Double(p.seen) / p.trainSeconds,
                            improved ? "*" : (state.stopped ? "(early stop)" : "")))
    }

    /// Adam's moments, and while a weight average is swapped in, the live weights it holds.
    func optimizerState(_ adam: Adam, _ average: WeightAverage?) -> [UInt8] {
        guard let average else { return adam.state() }
        let held = average.heldState()
        return adam.state(metadata: ["ema_updates": String(held.updates)],
                          extra: Dictionary(uniqueKeysWithValues: held.tensors.map { ("weights.\($0.key)", $0.value) }))
    }

    /// The best epoch's weights decide every reported number: validation, the
    /// spec's test look and explanations; then the run is completed. They are
    /// loaded into the training model, whose buffers are already there: a
    /// second model would add its activations to the run's peak memory.
    func finish(_ t: RunInProgress, state: TrainerState) throws {
        let (spec, data) = (t.spec, t.data)
        guard let best = try registry.checkpoint(run: t.id, kind: .best) else {
            throw Failure(.registry, "run \(t.id) has no best checkpoint")
        }
        try t.model.load(stateDict: Safetensors.decode([UInt8](best.data)).tensors)
        let val = evaluate(t.model, data: data, indices: data.validation, batch: spec.train.batchSize, S: spec.dataset.imageSize)
        try record(runID: t.id, split: .val, probs: val, indices: data.validation, data: data)
        if spec.evaluate.test {
            try testEvaluation(runID: t.id, model: t.model, checkpointSHA: best.sha256, data: data, batch: spec.train.batchSize,
                               trigger: .spec)
        }
        if spec.explain.enabled { explain(t) }
        try registry.endRun(t.id, .completed, trainSeconds: state.trainSeconds)
        reporter.log("run \(t.id) completed: best epoch \(state.bestEpoch) of \(state.epoch)")
    }

    /// Training and evaluation are recorded; a failed explanation must not undo that.
    func explain(_ t: RunInProgress) {
        var o = ExplainOptions()
        o.images = t.spec.explain.images; o.layer = t.spec.explain.layer; o.split = t.spec.explain.split
        o.threads = t.options.threads; o.data = t.options.data
        // Beside the registry, as `lab explain` from the same folder would put them.
        o.out = URL(fileURLWithPath: registry.path).deletingLastPathComponent()
            .appendingPathComponent("explain-\(t.id.prefix(10))-\(t.spec.explain.split.rawValue)").path
        do {
            let explained = try ExplainRunner.run(registry, run: t.id, options: o, reporter: reporter)
            reporter.log(explained.text)
            explanationFolders[t.id] = explained.outDirectory
        } catch {
            reporter.log("warning: explanations for run \(t.id) failed: \(error); retry with lab explain \(t.id)")
        }
    }

    func checkpointMetadata(_ t: RunInProgress, epoch: Int) -> [String: String] {
        let norm = String(data: try! JSONEncoder.sorted.encode(t.data.normalization), encoding: .utf8)!
        return ["lab.spec": t.spec.resolvedJSON, "lab.normalization": norm, "lab.run": t.id, "lab.epoch": String(epoch),
                "lab.classes": Emotion.allCases.map(\.name).joined(separator: ",")]
    }

    func classCounts(_ data: PreparedData) -> String {
        func counts(_ idx: [Int]) -> [Int] {
            var c = [Int](repeating: 0, count: Emotion.count)
            for i in idx { c[data.set.classes[i]] += 1 }
            return c
        }
        return ClassCounts(train: counts(data.train), val: counts(data.validation), test: counts(data.test)).json
    }

    /// Eval-mode probabilities for `indices`, [n * 6].
    public func evaluate(_ model: Model, data: PreparedData, indices: [Int], batch: Int, S: Int) -> [Float] {
        var out = [Float](); out.reserveCapacity(indices.count * Emotion.count)
        var x = [Float](repeating: 0, count: batch * S * S * 3), t = [Float](repeating: 0, count: batch * Emotion.count)
        var rng = RNG(seed: 0)
        var start = 0
        while start < indices.count {
            let idx = indices[start..<min(indices.count, start + batch)]
            Augmenter.assemble(x: &x, targets: &t, set: data.set, indices: idx, augmentation: nil, labelMode: data.labelMode,
                               normalization: data.normalization, seed: 0)
            model.forward(x, N: idx.count, training: false, rng: &rng)
            model.softmax(N: idx.count)
            out += Array(UnsafeBufferPointer(start: model.probs.data, count: idx.count * Emotion.count))
            start += batch
            reporter.status("evaluating \(min(start, indices.count))/\(indices.count)")
        }
        return out
    }

    @discardableResult
    func record(runID: String, split: EvalSplit, probs: [Float], indices: [Int], data: PreparedData) throws -> Metrics {
        let truth = indices.map { data.set.classes[$0] }
        let m = Metrics(probs: probs, truth: truth, classes: Emotion.count)
        let classes = Emotion.allCases
        let preds = indices.enumerated().map { k, i in
            Prediction(runId: runID, split: split, image: data.set.names[i], trueClass: classes[truth[k]],
                       predictedClass: classes[m.predicted[k]],
                       probabilities: Array(probs[(k * Emotion.count)..<((k + 1) * Emotion.count)]))
        }
        let metrics = classes.map { e in
            ClassMetric(runId: runID, split: split, emotion: e, precision: m.precision[e.rawValue], recall: m.recall[e.rawValue],
                        f1: m.f1[e.rawValue], support: m.confusion[e.rawValue].reduce(0, +))
        }
        let cells = m.confusion.enumerated().flatMap { i, row in
            row.enumerated().map { j, n in
                ConfusionCell(runId: runID, split: split, trueClass: classes[i], predictedClass: classes[j], count: n)
            }
        }
        try registry.recordEvaluation(run: runID, split: split, confusion: cells, metrics: metrics, predictions: preds)
        return m
    }

    /// One recorded look at the test split.
    @discardableResult
    public func testEvaluation(runID: String, model: Model, checkpointSHA: String, data: PreparedData, batch: Int,
                               trigger: TestTrigger) throws -> Metrics {
        let probs = evaluate(model, data: data, indices: data.test, batch: batch, S: data.set.imageSize)
        let m = try record(runID: runID, split: .test, probs: probs, indices: data.test, data: data)
        let looks = try registry.recordTestEvaluation(run: runID, accuracy: m.accuracy, macroF1: m.macroF1, nll: m.nll, ece: m.ece,
                                                      checkpointSHA256: checkpointSHA, trigger: trigger)
        reporter.log(String(format: "test split: accuracy %.4f, macro-F1 %.4f (look %d at the test split for this experiment)",
                            m.accuracy, m.macroF1, looks))
        if looks > 1 {
            reporter.log("warning: the test split of this experiment has now been evaluated \(looks) times; select models on "
                + "validation, not test")
        }
        return m
    }

    /// The monitored metric, oriented so that larger is better.
    static func score(_ monitor: EarlyStopping.Monitor, _ m: Metrics) -> Double {
        switch monitor {
        case .valAccuracy: return m.accuracy
        case .valMacroF1: return m.macroF1
        case .valLoss: return -m.nll
        }
    }
}

extension Optional where Wrapped == [Float] {
    func withOptionalPointer<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        switch self {
        case .none: return body(nil)
        case .some(let a): return a.withUnsafeBufferPointer { body($0.baseAddress) }
        }
    }
}
