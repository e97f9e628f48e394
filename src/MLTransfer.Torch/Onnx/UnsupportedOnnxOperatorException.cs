namespace MLTransfer.Torch.Onnx;

/// <summary>Thrown when an ONNX graph uses an operator (or an operator option) that <see cref="OnnxModuleImporter"/> cannot turn into TorchSharp.</summary>
public sealed class UnsupportedOnnxOperatorException : NotSupportedException
{
    /// <summary>Creates the exception for the node <paramref name="nodeName"/> of type <paramref name="opType"/>.</summary>
    /// <param name="opType">The ONNX operator type, e.g. <c>LSTM</c>.</param>
    /// <param name="nodeName">The node's name (or its first output when the node is unnamed).</param>
    /// <param name="detail">What exactly is unsupported; null when the operator as a whole is.</param>
    public UnsupportedOnnxOperatorException(string opType, string nodeName, string? detail = null)
        : base(detail is null
            ? $"ONNX operator '{opType}' (node '{nodeName}') is not supported by the TorchSharp importer. Supported: {string.Join(", ", OnnxModuleImporter.SupportedOperators)}."
            : $"ONNX operator '{opType}' (node '{nodeName}'): {detail}")
    {
        OpType = opType;
        NodeName = nodeName;
    }

    /// <summary>Creates the exception with a message only.</summary>
    public UnsupportedOnnxOperatorException()
        : this("?", "?")
    {
    }

    /// <summary>Creates the exception with a message only.</summary>
    /// <param name="message">The message.</param>
    public UnsupportedOnnxOperatorException(string message)
        : base(message)
    {
        OpType = "?";
        NodeName = "?";
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public UnsupportedOnnxOperatorException(string message, Exception innerException)
        : base(message, innerException)
    {
        OpType = "?";
        NodeName = "?";
    }

    /// <summary>The ONNX operator type that is not supported.</summary>
    public string OpType { get; }

    /// <summary>The name of the node that uses it.</summary>
    public string NodeName { get; }
}
