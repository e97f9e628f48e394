using MLTransfer.Backbones;
using MLTransfer.Torch.Onnx;

namespace MLTransfer.Torch.FineTuning;

/// <summary>
/// An imported backbone split into blocks, bottom to top, with what training only its top blocks needs: which
/// parameters each block owns and the graph value each block ends with (whose values <see cref="Streaming.BlockOutputs"/>
/// caches). Shared by fine-tuning and the end-to-end domain-adaptation methods.
/// </summary>
internal sealed class BackboneBlocks
{
    /// <summary>Prefix of the initializers <see cref="FeaturizerGraph"/> adds for pixel normalisation; they never train.</summary>
    public const string PreprocessingPrefix = "mltransfer_";

    public BackboneBlocks(OnnxGraphModule backbone)
    {
        Backbone = backbone;
        backbone.SetTrainable(IsPreprocessing, false);
        (Blocks, Outputs) = Split(backbone);
    }

    public OnnxGraphModule Backbone { get; }

    /// <summary>The backbone's trainable parameter names (ONNX initializer names) per block, bottom block first.</summary>
    public IReadOnlyList<IReadOnlyList<string>> Blocks { get; }

    /// <summary>The graph value at the end of each block (what the next block reads), bottom block first.</summary>
    public IReadOnlyList<string> Outputs { get; }

    /// <summary>Imports the fused featuriser graph of <paramref name="backbone"/> (pixels 0–255 in, pooled features out).</summary>
    public static BackboneBlocks Import(Backbone backbone, int imageSize) =>
        new(OnnxModuleImporter.Import(FeaturizerGraph.Build(backbone, imageSize), FeaturizerGraph.InputName, FeaturizerGraph.OutputName));

    public static bool IsPreprocessing(string name) => name.StartsWith(PreprocessingPrefix, StringComparison.Ordinal);

    /// <summary>The index of the first trained block when the top <paramref name="topBlocks"/> train (at least the bottom block stays frozen).</summary>
    public int FirstTrainedBlock(int topBlocks) => Math.Max(1, Blocks.Count - topBlocks);

    /// <summary>The graph value the trained blocks read when the top <paramref name="topBlocks"/> train.</summary>
    public string Cut(int topBlocks) => Outputs[FirstTrainedBlock(topBlocks) - 1];

    /// <summary>The parameter names of the blocks from <paramref name="firstBlock"/> up.</summary>
    public IReadOnlyList<string> ParametersFrom(int firstBlock) => Blocks.Skip(firstBlock).SelectMany(b => b).ToList();

    /// <summary>Trains exactly the named backbone parameters and freezes every other one.</summary>
    public void TrainOnly(IEnumerable<string> names)
    {
        var trained = new HashSet<string>(names, StringComparer.Ordinal);
        Backbone.SetTrainable(trained.Contains, true);
        Backbone.SetTrainable(n => !trained.Contains(n), false);
    }

    /// <summary>
    /// Splits the backbone at its residual additions (an Add of two computed values ends a block, as in ResNets); a
    /// graph without them is split into four blocks of consecutive parameterised nodes.
    /// </summary>
    private static (IReadOnlyList<IReadOnlyList<string>> Blocks, IReadOnlyList<string> Outputs) Split(OnnxGraphModule backbone)
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
            blocks.Add(backbone.ParameterNamesOfNodes(start, end).Where(n => !IsPreprocessing(n)).ToList());
            outputs.Add(nodes[ends[b]].Outputs[0]);
            start = end;
        }

        return (blocks, outputs);
    }
}
