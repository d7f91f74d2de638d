// Engine: the CNN, forward and backward, NHWC float32, GEMMs through OpenBLAS.
//
// Dimension legend used in every buffer comment of this module:
//   N  batch           H, W  height, width        C  channels (input)
//   OC output channels k     kernel side (3, 5)    K  k*k*C (a k x k patch)
//   M  N*H*W rows of a GEMM                        P  H*W pixels of one image
//   IN, OUT  dense layer widths                     L  number of classes
//   R  hidden units of an attention MLP (max(1, C / attention_reduction))
//
// Conventions (as in llm.c):
// - Kernels are free functions over raw pointers with explicit sizes, each
//   forward beside its backward in one file.
// - Backward functions WRITE the gradient of their input and ACCUMULATE
//   (+=) into parameter gradients, which the model zeroes once per step.
//   Writing spares a memset of every activation gradient each step (~270 MB
//   for the baseline at batch 64). An activation with two consumers gets the
//   shortcut's share written first and the other's added (`accumulate`): a
//   block's first activation (conv2 and the inner skip; convBackward,
//   depthwiseConvBackward), a block's input (conv1 and the projection;
//   pointwiseConvBackward).
// - Layers that apply a nonlinearity are generic over it (Activation.swift)
//   and dispatched once per call; a debug build compiles file by file, so
//   the loops that apply one live in Activation.swift, where its type is.
// - The engine knows nothing of files, JSON or SQLite (docs/architecture.md);
//   safetensors encoding is bytes in, bytes out.

import CBLAS

public enum BLAS {
    /// Sets OpenBLAS's thread count. Debian's OpenBLAS is a pthread build
    /// whose default depends on the machine, so it is always set explicitly:
    /// models set it to 1 and split convolutions across their own workers
    /// (ConvWorkspace says why).
    public static func setThreads(_ n: Int) {
        openblas_set_num_threads(Int32(max(1, n)))
    }

    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// OpenBLAS's build string, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ... Zen MAX_THREADS=64".
    public static var config: String {
        guard let c = openblas_get_config() else { return "unknown" }
        return String(cString: c).trimmingCharacters(in: .whitespaces)
    }

    /// The kernel family OpenBLAS selected at load time ("Haswell", "Prescott", ...).
    public static var coreName: String {
        guard let c = openblas_get_corename() else { return "unknown" }
        return String(cString: c)
    }
}

/// How this module was compiled: `lab bench` prints it, because a debug
/// build without -Ounchecked would be ~60x slower in hot loops.
public var engineBuildConfiguration: String {
    #if DEBUG
    return "debug (numeric targets -Ounchecked)"
    #else
    return "release"
    #endif
}

