using MLTransfer.Torch.Onnx;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLTransfer.Torch.FineTuning;

/// <summary>
/// The network fine-tuning trains: an imported ONNX backbone (pixels → features) followed by a new linear head
/// (features → class logits). The backbone's trainable parameters are split into blocks, bottom to top, for
/// per-layer learning rates and for training the top blocks only.
/// </summary>
internal sealed class FineTuningNetwork : nn.Module<Tensor, Tensor>
{
    /// <param name="backbone">The imported backbone graph.</param>
    /// <param name="featureCount">Its number of output features.</param>
    /// <param name="classCount">The number of classes of the head.</param>
    /// <param name="isFixed">Selects backbone parameters that never train (e.g. pixel normalisation folded into the graph).</param>
    public FineTuningNetwork(OnnxGraphModule backbone, int featureCount, int classCount, Func<string, bool> isFixed)
        : base("FineTuningNetwork")
    {
        Backbone = backbone;
        backbone.SetTrainable(isFixed, false);
        Head = nn.Linear(featureCount, classCount);
        register_module("backbone", Backbone);
        register_module("head", Head);
        (Blocks, BlockOutputs) = SplitIntoBlocks(backbone, isFixed);
        InputValue = backbone.InputName;
    }

    public OnnxGraphModule Backbone { get; }

    public Linear Head { get; }

    /// <summary>The backbone's trainable parameter names (ONNX initializer names) per block, bottom block first.</summary>
    public IReadOnlyList<IReadOnlyList<string>> Blocks { get; }

    /// <summary>The graph value at the end of each block (what the next block reads), bottom block first.</summary>
    public IReadOnlyList<string> BlockOutputs { get; }

    /// <summary>The graph value <see cref="forward"/> takes: the backbone input, or a cached block output.</summary>
    public string InputValue { get; set; }

    /// <summary>When true, the backbone runs without autograd (head-only training).</summary>
    public bool BackboneWithoutGradients { get; set; }

    public override Tensor forward(Tensor input)
    {
        var feeds = new Dictionary<string, Tensor>(StringComparer.Ordinal) { [InputValue] = input };
        using var features = RunBackbone(feeds);
        return Head.forward(features);
    }

    /// <summary>Every tensor that defines the trained network, by a stable name (checkpoints, best-epoch snapshots).</summary>
    public IEnumerable<(string Name, Tensor Tensor)> StateTensors()
    {
        foreach (var (name, p) in Backbone.TrainableParameters)
        {
            yield return ("param:" + name, p);
        }

        foreach (var (name, t) in Backbone.BatchNormStatistics)
        {
            yield return ("bnstat:" + name, t);
        }

        yield return ("head:weight", Head.weight!);
        yield return ("head:bias", Head.bias!);
    }

    /// <summary>Copies <paramref name="values"/> (by <see cref="StateTensors"/> name) into the network.</summary>
    public void LoadStateTensors(IReadOnlyDictionary<string, Tensor> values)
    {
        using var noGrad = no_grad();
        foreach (var (name, tensor) in StateTensors())
        {
            if (!values.TryGetValue(name, out var value))
            {
                throw new InvalidDataException($"The saved state has no tensor '{name}'.");
            }

            tensor.copy_(value);
        }
    }

    private Tensor RunBackbone(Dictionary<string, Tensor> feeds)
    {
        if (BackboneWithoutGradients)
        {
            using var noGrad = no_grad();
            return Backbone.Run(feeds, Backbone.OutputName)[Backbone.OutputName];
        }

        return Backbone.Run(feeds, Backbone.OutputName)[Backbone.OutputName];
    }

    /// <summary>
    /// Splits the backbone at its residual additions (an Add of two computed values ends a block, as in ResNets); a
    /// graph without them is split into four blocks of consecutive parameterised nodes.
    /// </summary>
    private static (IReadOnlyList<IReadOnlyList<string>> Blocks, IReadOnlyList<string> Outputs) SplitIntoBlocks(OnnxGraphModule backbone, Func<string, bool> isFixed)
    {
        var nodes = backbone.Nodes;
        bool Computed(string value) => !backbone.TrainableParameters.ContainsKey(value) && !backbone.BatchNormStatistics.ContainsKey(value);
        var ends = nodes.Where(n => n.OpType == "Add" && n.Inputs.Count == 2 && n.Inputs.All(Computed) && n.Inputs.All(i => nodes.Any(m => m.Outputs.Contains(i))))
            .Select(n => n.Index)
            .ToList();
        if (ends.Count < 2)
        {
            var parameterised = nodes.Where(n => backbone.ParameterNamesOfNodes(n.Index, n.Index + 1).Count > 0).Select(n => n.Index).ToList();
            ends = Enumerable.Range(1, 4).Select(k => parameterised[Math.Max(0, (parameterised.Count * k / 4) - 1)]).Distinct().ToList();
        }

        var blocks = new List<IReadOnlyList<string>>();
        var outputs = new List<string>();
        int start = 0;
        for (int b = 0; b < ends.Count; b++)
        {
            int end = b == ends.Count - 1 ? nodes.Count : ends[b] + 1;
            blocks.Add(backbone.ParameterNamesOfNodes(start, end).Where(n => !isFixed(n)).ToList());
            outputs.Add(nodes[ends[b]].Outputs[0]);
            start = end;
        }

        return (blocks, outputs);
    }
}
