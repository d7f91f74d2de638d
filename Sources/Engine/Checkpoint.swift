import Foundation
import LabRandom

// Model state as a PyTorch state_dict: parameter names and layouts of
// torch's LabNet (python/lab_model.py), so a checkpoint loads there
// unchanged with load_state_dict (strict). The names, by layer:
//   blockN.convI.weight [W, C, k, k]                       standard convolution
//   blockN.convI.depthwise.weight [C, 1, k, k]             separable: depthwise (no bias)
//   blockN.convI.pointwise.weight [W, C, 1, 1]             separable: pointwise
//   blockN.convI[.pointwise].bias                          without batch norm only
//   blockN.bnI.{weight,bias,running_mean,running_var,num_batches_tracked}
//   blockN.shortcut.conv.weight [W, C, 1, 1], blockN.shortcut.bn.*   projection
//   blockN.se.fc{1,2}.{weight,bias}                        squeeze-and-excitation
//   blockN.cbam.fc{1,2}.{weight,bias}, blockN.cbam.spatial.conv.weight [1, 2, 7, 7],
//   blockN.cbam.spatial.bn.*                               CBAM
//   fc1.* (absent when hidden is 0), fc2.*
// `lab.model` in the metadata is ModelConfig as JSON, every key by its spec name. Optimizer state (for resume) is a second,
// separate container so the first stays a pure state_dict.

extension Model {
    /// Parameters, running statistics and num_batches_tracked, PyTorch names and layouts.
    public func stateDict() -> [String: SafeTensor] {
        var d = [String: SafeTensor]()
        for p in parameters { d[p.name] = SafeTensor(shape: p.torchShape, floats: p.torchValues()) }
        for r in batchNorms {
            d["\(r.name).running_mean"] = SafeTensor(shape: r.mean.shape, floats: r.mean.array)
            d["\(r.name).running_var"] = SafeTensor(shape: r.variance.shape, floats: r.variance.array)
            d["\(r.name).num_batches_tracked"] = SafeTensor(int64: Int64(r.batchesTracked))
        }
        return d
    }

    /// Loads a state_dict; every tensor must be present with the right shape,
    /// and no unknown tensor may be left over (strict, as PyTorch's default).
    public func load(stateDict d: [String: SafeTensor]) throws {
        var expected = Set(parameters.map(\.name))
        func floats(_ name: String, _ shape: [Int]) throws -> [Float] {
            guard let t = d[name] else { throw SafetensorsError.missing(name) }
            guard t.dtype == .f32, t.shape == shape else {
                throw SafetensorsError.mismatch("\(name) is \(t.dtype.rawValue)\(t.shape), model wants F32\(shape)")
            }
            return t.floats
        }
        for p in parameters { p.setTorchValues(try floats(p.name, p.torchShape)) }
        for r in batchNorms {
            let rm = try floats("\(r.name).running_mean", r.mean.shape)
            let rv = try floats("\(r.name).running_var", r.variance.shape)
            for i in 0..<r.mean.count { r.mean[i] = rm[i]; r.variance[i] = rv[i] }
            expected.formUnion(["\(r.name).running_mean", "\(r.name).running_var"])
            let key = "\(r.name).num_batches_tracked"
            if let t = d[key], t.dtype == .i64 { r.batchesTracked = Int(t.int64); expected.insert(key) }
        }
        let extra = Set(d.keys).subtracting(expected)
        if !extra.isEmpty {
            throw SafetensorsError.mismatch("unexpected tensors \(extra.sorted().prefix(5).joined(separator: ", "))")
        }
    }

    /// Checkpoint bytes: the state_dict with metadata (model config and
    /// whatever the caller adds, e.g. the resolved spec and normalization).
    public func checkpoint(metadata: [String: String] = [:]) -> [UInt8] {
        var meta = metadata
        meta["format"] = "pt"
        meta["lab.model"] = String(data: try! JSONEncoder.sorted.encode(config), encoding: .utf8)!
        meta["lab.image_size"] = String(imageSize)
        return Safetensors.encode(stateDict(), metadata: meta)
    }

    /// Builds a model from checkpoint bytes.
    public static func load(checkpoint bytes: [UInt8], threads: Int = 1) throws -> (model: Model, metadata: [String: String]) {
        let (tensors, meta) = try Safetensors.decode(bytes)
        guard let cfgJSON = meta["lab.model"], let cfg = try? JSONDecoder().decode(ModelConfig.self, from: Data(cfgJSON.utf8)) else {
            throw SafetensorsError.badHeader("no lab.model configuration in __metadata__")
        }
        let size = meta["lab.image_size"].flatMap { Int($0) } ?? 64
        guard cfg.problems(imageSize: size).isEmpty else {
            throw SafetensorsError.badHeader("invalid model configuration: \(cfg.problems(imageSize: size).joined(separator: "; "))")
        }
        let model = Model(config: cfg, imageSize: size, threads: threads)
        try model.load(stateDict: tensors)
        return (model, meta)
    }
}

extension Adam {
    /// Moments in PyTorch's optimizer naming (exp_avg / exp_avg_sq), the
    /// step count and an opaque caller string (e.g. RNG state) in metadata.
    /// `extra` tensors travel in the same container (a weight average's other half).
    public func state(metadata: [String: String] = [:], extra: [String: SafeTensor] = [:]) -> [UInt8] {
        var d = extra
        for (i, p) in params.enumerated() {
            d["exp_avg.\(p.name)"] = SafeTensor(shape: p.value.shape, floats: m[i].array)
            d["exp_avg_sq.\(p.name)"] = SafeTensor(shape: p.value.shape, floats: v[i].array)
        }
        var meta = metadata
        meta["step"] = String(step)
        return Safetensors.encode(d, metadata: meta)
    }

    /// Restores moments and step; returns the metadata.
    @discardableResult
    public func load(state bytes: [UInt8]) throws -> [String: String] {
        let (d, meta) = try Safetensors.decode(bytes)
        for (i, p) in params.enumerated() {
            for (prefix, t) in [("exp_avg", m[i]), ("exp_avg_sq", v[i])] {
                guard let s = d["\(prefix).\(p.name)"] else { throw SafetensorsError.missing("\(prefix).\(p.name)") }
                guard s.shape == p.value.shape else { throw SafetensorsError.mismatch("\(prefix).\(p.name) shape \(s.shape)") }
                let f = s.floats
                for j in 0..<f.count { t[j] = f[j] }
            }
        }
        guard let st = meta["step"].flatMap({ Int($0) }) else { throw SafetensorsError.badHeader("no step in optimizer state") }
        restore(step: st)
        return meta
    }
}

extension JSONEncoder {
    /// Sorted keys: equal values give equal bytes (hashes, diffs, checkpoints).
    public static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }
}
