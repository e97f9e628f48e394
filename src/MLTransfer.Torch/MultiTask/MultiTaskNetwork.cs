using MLTransfer.Data;
using MLTransfer.Torch.Onnx;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLTransfer.Torch.MultiTask;

/// <summary>
/// Hard parameter sharing: one imported ONNX backbone (pixels → features) and one linear head per task
/// (class logits, or one standardised regression output), plus one log-variance per task for uncertainty weighting.
/// </summary>
internal sealed class MultiTaskNetwork : nn.Module<Tensor, Tensor>
{
    public MultiTaskNetwork(OnnxGraphModule backbone, int featureCount, IReadOnlyList<ManifestTask> tasks, Func<string, bool> isFixed)
        : base("MultiTaskNetwork")
    {
        Backbone = backbone;
        backbone.SetTrainable(isFixed, false);
        Heads = tasks.Select(t => nn.Linear(featureCount, t.Kind == TaskKind.Classification ? t.Classes.Count : 1)).ToArray();
        LogVariances = new Parameter(zeros(tasks.Count));
        LossWeights = new Parameter(ones(tasks.Count));
        InitialLosses = tensor(Enumerable.Repeat(float.NaN, tasks.Count).ToArray());
        register_module("backbone", Backbone);
        for (var t = 0; t < Heads.Count; t++)
            register_module($"head{t}", Heads[t]);
        register_parameter("log_variances", LogVariances);
        register_parameter("loss_weights", LossWeights);
        register_buffer("initial_losses", InitialLosses);
        FixedNames = new HashSet<string>(backbone.TrainableParameters.Keys.Where(isFixed), StringComparer.Ordinal);
        var lastConvolution = backbone.Nodes.Last(n => n.OpType == "Conv" && n.Inputs.Count > 1 && backbone.TrainableParameters.ContainsKey(n.Inputs[1]) && !isFixed(n.Inputs[1]));
        LastSharedWeight = backbone.TrainableParameters[lastConvolution.Inputs[1]];
    }

    public OnnxGraphModule Backbone { get; }

    public IReadOnlyList<Linear> Heads { get; }

    /// <summary>s_t = log σ_t² of uncertainty weighting (Kendall et al. 2018).</summary>
    public Parameter LogVariances { get; }

    /// <summary>GradNorm's learnt task weights w_t (Chen et al. 2018), all 1 at the start.</summary>
    public Parameter LossWeights { get; }

    /// <summary>GradNorm's L_t(0): each task's loss at its first GradNorm step (NaN until then).</summary>
    public Tensor InitialLosses { get; }

    /// <summary>The weight of the backbone's last convolution: the "last shared layer" whose gradient norms GradNorm balances.</summary>
    public Parameter LastSharedWeight { get; }

    /// <summary>Backbone parameters that never train (the pixel normalisation folded into the graph).</summary>
    public IReadOnlySet<string> FixedNames { get; }

    /// <summary>The backbone parameters that train when the whole network trains.</summary>
    public IEnumerable<Parameter> SharedParameters => Backbone.TrainableParameters.Where(p => !FixedNames.Contains(p.Key)).Select(p => p.Value);

    /// <summary>When true, the backbone runs without autograd (heads-only epochs).</summary>
    public bool BackboneWithoutGradients { get; set; }

    /// <summary>Features [N, D] of a pixel batch.</summary>
    public override Tensor forward(Tensor input)
    {
        var feeds = new Dictionary<string, Tensor>(StringComparer.Ordinal) { [Backbone.InputName] = input };
        if (!BackboneWithoutGradients)
            return Backbone.Run(feeds, Backbone.OutputName)[Backbone.OutputName];
        using var noGrad = no_grad();
        return Backbone.Run(feeds, Backbone.OutputName)[Backbone.OutputName];
    }

    /// <summary>Every tensor that defines the trained network, by a stable name (best-epoch snapshots).</summary>
    public IEnumerable<(string Name, Tensor Tensor)> StateTensors()
    {
        foreach (var (name, p) in Backbone.TrainableParameters)
            yield return ("param:" + name, p);
        foreach (var (name, t) in Backbone.BatchNormStatistics)
            yield return ("bnstat:" + name, t);
        for (var t = 0; t < Heads.Count; t++)
        {
            yield return ($"head{t}:weight", Heads[t].weight!);
            yield return ($"head{t}:bias", Heads[t].bias!);
        }
        yield return ("log_variances", LogVariances);
        yield return ("loss_weights", LossWeights);
        yield return ("initial_losses", InitialLosses);
    }
}
