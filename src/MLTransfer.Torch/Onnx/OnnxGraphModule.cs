using System.Text.RegularExpressions;
using Onnx;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLTransfer.Torch.Onnx;

/// <summary>
/// A trainable TorchSharp module that runs an imported ONNX graph node by node, in the graph's topological order.
/// Every float initializer that serves as a Conv weight or bias, a BatchNormalization scale or bias, or a Gemm
/// weight or bias is a trainable <see cref="Parameter"/> named like the initializer; BatchNormalization running
/// means and variances are buffers (updated with <see cref="BatchNormMomentum"/> in training mode unless
/// <see cref="FreezeBatchNormStatistics"/> is set); every other initializer is a constant. Create it with
/// <see cref="OnnxModuleImporter.Import(ModelProto, string?, string?)"/>.
/// </summary>
public sealed partial class OnnxGraphModule : nn.Module<Tensor, Tensor>
{
    private readonly ModelProto _model;
    private readonly List<OnnxNode> _nodes;
    private readonly Dictionary<string, Tensor> _fixedValues = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Parameter> _trainable = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Tensor> _statistics = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _producer = new(StringComparer.Ordinal);
    private readonly long _opset;

    internal OnnxGraphModule(ModelProto model, string? inputName, string? outputName)
        : base("OnnxGraph")
    {
        _model = model.Clone();
        GraphProto graph = _model.Graph;
        _opset = _model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(13).Max();
        _nodes = graph.Node.Select((n, i) => new OnnxNode(n, i)).ToList();

        var initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        InputName = inputName ?? graph.Input.Select(i => i.Name).First(n => !initializers.ContainsKey(n));
        OutputName = outputName ?? graph.Output[0].Name;

        var trainable = new HashSet<string>(StringComparer.Ordinal);
        var statistics = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in _nodes)
        {
            int[] trainableInputs = node.OpType switch
            {
                "Conv" or "Gemm" => [1, 2],
                "BatchNormalization" => [1, 2],
                _ => [],
            };
            foreach (int i in trainableInputs)
            {
                if (node.InputOrNull(i) is { } name && initializers.TryGetValue(name, out var t) && OnnxTensors.IsFloat(t))
                {
                    trainable.Add(name);
                }
            }

            if (node.OpType == "BatchNormalization")
            {
                statistics.Add(node.Inputs[3]);
                statistics.Add(node.Inputs[4]);
            }

            foreach (string output in node.Outputs)
            {
                _producer[output] = node.Index;
            }
        }

        var usedNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var proto in graph.Initializer)
        {
            Tensor value = OnnxTensors.ToTensor(proto).DetachFromDisposeScope();
            string moduleName = UniqueModuleName(proto.Name, usedNames);
            if (trainable.Contains(proto.Name))
            {
                var parameter = new Parameter(value, requires_grad: true);
                parameter.DetachFromDisposeScope();
                register_parameter(moduleName, parameter);
                _trainable[proto.Name] = parameter;
                _fixedValues[proto.Name] = parameter;
            }
            else
            {
                bool isStatistic = statistics.Contains(proto.Name);
                register_buffer(moduleName, value, persistent: isStatistic);
                if (isStatistic)
                {
                    _statistics[proto.Name] = value;
                }

                _fixedValues[proto.Name] = value;
            }
        }

        foreach (var node in _nodes.Where(n => n.OpType == "Constant"))
        {
            TensorProto tensor = node.TensorAttribute("value")
                ?? throw new UnsupportedOnnxOperatorException(node.OpType, node.Name, "only the 'value' attribute is supported.");
            Tensor value = OnnxTensors.ToTensor(tensor).DetachFromDisposeScope();
            register_buffer(UniqueModuleName(node.Outputs[0], usedNames), value, persistent: false);
            _fixedValues[node.Outputs[0]] = value;
        }

        var unsupported = _nodes.FirstOrDefault(n => !OnnxOperators.Supported.Contains(n.OpType, StringComparer.Ordinal));
        if (unsupported is not null)
        {
            throw new UnsupportedOnnxOperatorException(unsupported.OpType, unsupported.Name);
        }
    }

    /// <summary>The graph value fed by <see cref="forward"/>.</summary>
    public string InputName { get; }

    /// <summary>The graph value returned by <see cref="forward"/>.</summary>
    public string OutputName { get; }

    /// <summary>The graph's nodes in topological order.</summary>
    public IReadOnlyList<OnnxNode> Nodes => _nodes;

    /// <summary>The trainable parameters, keyed by ONNX initializer name.</summary>
    public IReadOnlyDictionary<string, Parameter> TrainableParameters => _trainable;

    /// <summary>The BatchNormalization running means and variances, keyed by ONNX initializer name.</summary>
    public IReadOnlyDictionary<string, Tensor> BatchNormStatistics => _statistics;

    /// <summary>
    /// When true, BatchNormalization uses (and keeps) its running statistics even in training mode; its scale and
    /// bias still train. Useful with small batches. The default value is false.
    /// </summary>
    public bool FreezeBatchNormStatistics { get; set; }

    /// <summary>
    /// The weight of the current batch when BatchNormalization updates its running statistics in training mode
    /// (PyTorch's convention: running = (1 − momentum) · running + momentum · batch). The default value is 0.1.
    /// </summary>
    public double BatchNormMomentum { get; set; } = 0.1;

    /// <summary>Runs the graph from <see cref="InputName"/> to <see cref="OutputName"/>.</summary>
    /// <param name="input">The input tensor (any batch size).</param>
    /// <returns>The output tensor.</returns>
    public override Tensor forward(Tensor input)
    {
        var results = Run(new Dictionary<string, Tensor>(StringComparer.Ordinal) { [InputName] = input }, OutputName);
        return results[OutputName];
    }

    /// <summary>
    /// Computes the named graph values from the given ones, running only the nodes needed. A feed may be any value
    /// of the graph, not just its input: feeding a cached intermediate output skips every node below it.
    /// </summary>
    /// <param name="feeds">Known values by name; the caller keeps ownership.</param>
    /// <param name="outputs">The value (or node) names to compute.</param>
    /// <returns>The requested values by the names asked for; the caller owns them.</returns>
    public IReadOnlyDictionary<string, Tensor> Run(IReadOnlyDictionary<string, Tensor> feeds, params string[] outputs)
    {
        ArgumentNullException.ThrowIfNull(feeds);
        ArgumentNullException.ThrowIfNull(outputs);
        string[] valueNames = outputs.Select(ResolveValueName).ToArray();

        bool IsKnown(string name) => feeds.ContainsKey(name) || _fixedValues.ContainsKey(name);

        // Walk back from the requested values to find the nodes to run.
        var needed = new HashSet<string>(valueNames.Where(n => !IsKnown(n)), StringComparer.Ordinal);
        var run = new bool[_nodes.Count];
        for (int i = _nodes.Count - 1; i >= 0; i--)
        {
            var node = _nodes[i];
            if (node.OpType == "Constant" || !node.Outputs.Any(needed.Contains))
            {
                continue;
            }

            run[i] = true;
            foreach (string input in node.Inputs.Where(n => n.Length > 0 && !IsKnown(n)))
            {
                needed.Add(input);
            }
        }

        var missing = needed.Where(n => !_producer.ContainsKey(n) || _nodes[_producer[n]].OpType == "Constant").ToList();
        if (missing.Count > 0)
        {
            throw new ArgumentException($"Graph value(s) {string.Join(", ", missing)} are needed but neither fed nor produced by any node.", nameof(feeds));
        }

        // Count remaining uses so intermediate values are released as soon as the last consumer has run.
        var uses = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < _nodes.Count; i++)
        {
            if (run[i])
            {
                foreach (string input in _nodes[i].Inputs.Where(n => n.Length > 0))
                {
                    uses[input] = uses.GetValueOrDefault(input) + 1;
                }
            }
        }

        var keep = new HashSet<string>(valueNames, StringComparer.Ordinal);
        var values = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var evaluation = new OnnxEvaluation(training, !FreezeBatchNormStatistics, BatchNormMomentum, _opset);
        try
        {
            for (int i = 0; i < _nodes.Count; i++)
            {
                if (!run[i])
                {
                    continue;
                }

                var node = _nodes[i];
                Tensor?[] inputs = node.Inputs.Select(n => n.Length == 0 ? null : Lookup(n, feeds, values)).ToArray();
                Tensor[] produced = OnnxOperators.Evaluate(node, inputs, evaluation);
                for (int o = 0; o < node.Outputs.Count; o++)
                {
                    if (o >= produced.Length)
                    {
                        break;
                    }

                    if (node.Outputs[o].Length > 0 && (uses.ContainsKey(node.Outputs[o]) || keep.Contains(node.Outputs[o])))
                    {
                        values[node.Outputs[o]] = produced[o];
                    }
                    else
                    {
                        produced[o].Dispose();
                    }
                }

                foreach (string input in node.Inputs.Where(n => n.Length > 0))
                {
                    if (--uses[input] == 0 && !keep.Contains(input) && values.Remove(input, out var dead))
                    {
                        dead.Dispose();
                    }
                }
            }
        }
        catch
        {
            foreach (var value in values.Values)
            {
                value.Dispose();
            }

            throw;
        }

        var results = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        for (int i = 0; i < outputs.Length; i++)
        {
            results[outputs[i]] = values.TryGetValue(valueNames[i], out var v) ? v : Lookup(valueNames[i], feeds, values).alias();
        }

        return results;
    }

    /// <summary>Returns the index of the node named <paramref name="nodeOrValueName"/>, or of the node producing that value.</summary>
    /// <param name="nodeOrValueName">A node name or a value name.</param>
    public int IndexOfNode(string nodeOrValueName)
    {
        int index = _nodes.FindIndex(n => n.Name == nodeOrValueName);
        if (index >= 0)
        {
            return index;
        }

        return _producer.TryGetValue(nodeOrValueName, out index)
            ? index
            : throw new ArgumentException($"The graph has no node or value named '{nodeOrValueName}'.", nameof(nodeOrValueName));
    }

    /// <summary>The trainable parameters read by the nodes with index in [<paramref name="fromNode"/>, <paramref name="toNodeExclusive"/>).</summary>
    /// <param name="fromNode">The first node index.</param>
    /// <param name="toNodeExclusive">One past the last node index.</param>
    public IReadOnlyList<string> ParameterNamesOfNodes(int fromNode, int toNodeExclusive) =>
        _nodes.Skip(fromNode).Take(toNodeExclusive - fromNode)
            .SelectMany(n => n.Inputs)
            .Where(_trainable.ContainsKey)
            .Distinct(StringComparer.Ordinal)
            .ToList();

    /// <summary>Sets <c>requires_grad</c> of every trainable parameter whose ONNX name matches <paramref name="predicate"/>.</summary>
    /// <param name="predicate">Selects parameters by ONNX initializer name.</param>
    /// <param name="trainable">True to train them, false to freeze them.</param>
    /// <returns>How many parameters were changed.</returns>
    public int SetTrainable(Func<string, bool> predicate, bool trainable)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        int count = 0;
        foreach (var (name, parameter) in _trainable)
        {
            if (predicate(name))
            {
                parameter.requires_grad = trainable;
                count++;
            }
        }

        return count;
    }

    /// <summary>Freezes every parameter whose ONNX name starts with <paramref name="prefix"/>.</summary>
    /// <param name="prefix">The name prefix.</param>
    /// <returns>How many parameters were frozen.</returns>
    public int FreezeByPrefix(string prefix) => SetTrainable(n => n.StartsWith(prefix, StringComparison.Ordinal), false);

    /// <summary>Freezes every parameter read only by nodes before the node named (or producing) <paramref name="nodeOrValueName"/>.</summary>
    /// <param name="nodeOrValueName">The first node that stays trainable.</param>
    /// <returns>How many parameters were frozen.</returns>
    public int FreezeNodesBefore(string nodeOrValueName)
    {
        int boundary = IndexOfNode(nodeOrValueName);
        var later = new HashSet<string>(ParameterNamesOfNodes(boundary, _nodes.Count), StringComparer.Ordinal);
        var earlier = ParameterNamesOfNodes(0, boundary).Where(n => !later.Contains(n)).ToHashSet(StringComparer.Ordinal);
        return SetTrainable(earlier.Contains, false);
    }

    /// <summary>
    /// Returns a copy of the imported ONNX model whose initializers (trainable parameters and BatchNorm running
    /// statistics) hold the module's current values, under their original names.
    /// </summary>
    public ModelProto ExportModel()
    {
        var copy = _model.Clone();
        foreach (var proto in copy.Graph.Initializer)
        {
            if (_trainable.TryGetValue(proto.Name, out var parameter))
            {
                OnnxTensors.WriteFloats(proto, parameter);
            }
            else if (_statistics.TryGetValue(proto.Name, out var statistic))
            {
                OnnxTensors.WriteFloats(proto, statistic);
            }
        }

        return copy;
    }

    private string ResolveValueName(string name)
    {
        if (_producer.ContainsKey(name) || _fixedValues.ContainsKey(name) || name == InputName)
        {
            return name;
        }

        var node = _nodes.FirstOrDefault(n => n.Name == name);
        return node is not null ? node.Outputs[0] : name;
    }

    private Tensor Lookup(string name, IReadOnlyDictionary<string, Tensor> feeds, Dictionary<string, Tensor> values)
    {
        if (feeds.TryGetValue(name, out var fed))
        {
            return fed;
        }

        if (values.TryGetValue(name, out var computed))
        {
            return computed;
        }

        return _fixedValues.TryGetValue(name, out var fixedValue)
            ? fixedValue
            : throw new ArgumentException($"Graph value '{name}' is neither fed nor computed.");
    }

    private static string UniqueModuleName(string onnxName, HashSet<string> used)
    {
        string baseName = InvalidNameCharacters().Replace(onnxName, "_");
        string name = baseName;
        for (int i = 1; !used.Add(name); i++)
        {
            name = $"{baseName}_{i}";
        }

        return name;
    }

    [GeneratedRegex("[^A-Za-z0-9_]")]
    private static partial Regex InvalidNameCharacters();
}
