using Onnx;

namespace MLTransfer.Torch.Onnx;

/// <summary>One node of an imported ONNX graph: its operator, its inputs and outputs (value names) and its attributes.</summary>
public sealed class OnnxNode
{
    private readonly Dictionary<string, AttributeProto> _attributes;

    internal OnnxNode(NodeProto proto, int index)
    {
        Index = index;
        OpType = proto.OpType;
        Domain = proto.Domain;
        Name = string.IsNullOrEmpty(proto.Name) ? (proto.Output.FirstOrDefault() ?? $"node{index}") : proto.Name;
        Inputs = proto.Input.ToArray();
        Outputs = proto.Output.ToArray();
        _attributes = proto.Attribute.ToDictionary(a => a.Name, StringComparer.Ordinal);
    }

    /// <summary>The node's position in the graph's topological order.</summary>
    public int Index { get; }

    /// <summary>The node's name; its first output's name when the graph leaves it unnamed.</summary>
    public string Name { get; }

    /// <summary>The ONNX operator type, e.g. <c>Conv</c>.</summary>
    public string OpType { get; }

    /// <summary>The operator's domain; empty for the default ONNX domain.</summary>
    public string Domain { get; }

    /// <summary>The names of the values the node reads (an empty name is an omitted optional input).</summary>
    public IReadOnlyList<string> Inputs { get; }

    /// <summary>The names of the values the node produces.</summary>
    public IReadOnlyList<string> Outputs { get; }

    /// <summary>Returns the name of input <paramref name="i"/>, or null when it is absent or omitted.</summary>
    internal string? InputOrNull(int i) => i < Inputs.Count && Inputs[i].Length > 0 ? Inputs[i] : null;

    internal bool HasAttribute(string name) => _attributes.ContainsKey(name);

    internal long Int(string name, long defaultValue) => _attributes.TryGetValue(name, out var a) ? a.I : defaultValue;

    internal float Float(string name, float defaultValue) => _attributes.TryGetValue(name, out var a) ? a.F : defaultValue;

    internal string String(string name, string defaultValue) =>
        _attributes.TryGetValue(name, out var a) ? a.S.ToStringUtf8() : defaultValue;

    internal long[]? Ints(string name) => _attributes.TryGetValue(name, out var a) ? a.Ints.ToArray() : null;

    internal TensorProto? TensorAttribute(string name) => _attributes.TryGetValue(name, out var a) ? a.T : null;

    /// <inheritdoc />
    public override string ToString() => $"{OpType} '{Name}'";
}
