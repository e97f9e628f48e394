using Onnx;

namespace MLTransfer.Torch.Onnx;

/// <summary>
/// Turns an ONNX convolutional network into a trainable TorchSharp module initialised from the graph's weights,
/// so a pretrained backbone shipped as ONNX can be fine-tuned and written back to ONNX.
/// </summary>
public static class OnnxModuleImporter
{
    /// <summary>The ONNX operator types the importer supports (2-D spatial operators, NCHW layout).</summary>
    public static IReadOnlyList<string> SupportedOperators => OnnxOperators.Supported;

    /// <summary>Imports <paramref name="model"/>.</summary>
    /// <param name="model">The ONNX model; it is copied, not kept.</param>
    /// <param name="inputName">The graph value <see cref="OnnxGraphModule.forward"/> feeds; by default the first graph input that is not an initializer.</param>
    /// <param name="outputName">The graph value <see cref="OnnxGraphModule.forward"/> returns; by default the first graph output.</param>
    /// <returns>The module, in training mode.</returns>
    /// <exception cref="UnsupportedOnnxOperatorException">The graph uses an operator the importer does not support.</exception>
    public static OnnxGraphModule Import(ModelProto model, string? inputName = null, string? outputName = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return new OnnxGraphModule(model, inputName, outputName);
    }

    /// <summary>Reads the ONNX file at <paramref name="path"/> and imports it.</summary>
    /// <param name="path">The .onnx file.</param>
    /// <param name="inputName">See <see cref="Import(ModelProto, string?, string?)"/>.</param>
    /// <param name="outputName">See <see cref="Import(ModelProto, string?, string?)"/>.</param>
    /// <returns>The module, in training mode.</returns>
    public static OnnxGraphModule Import(string path, string? inputName = null, string? outputName = null) =>
        Import(ModelProto.Parser.ParseFromFile(path), inputName, outputName);
}
