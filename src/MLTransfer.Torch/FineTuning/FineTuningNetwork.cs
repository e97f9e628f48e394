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
    /// <param name="blocks">The imported backbone graph, split into blocks.</param>
    /// <param name="featureCount">Its number of output features.</param>
    /// <param name="classCount">The number of classes of the head.</param>
    public FineTuningNetwork(BackboneBlocks blocks, int featureCount, int classCount)
        : base("FineTuningNetwork")
    {
        Split = blocks;
        Backbone = blocks.Backbone;
        Head = nn.Linear(featureCount, classCount);
        register_module("backbone", Backbone);
        register_module("head", Head);
        InputValue = Backbone.InputName;
    }

    /// <summary>The backbone's blocks.</summary>
    public BackboneBlocks Split { get; }

    public OnnxGraphModule Backbone { get; }

    public Linear Head { get; }

    /// <summary>The backbone's trainable parameter names (ONNX initializer names) per block, bottom block first.</summary>
    public IReadOnlyList<IReadOnlyList<string>> Blocks => Split.Blocks;

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
}
