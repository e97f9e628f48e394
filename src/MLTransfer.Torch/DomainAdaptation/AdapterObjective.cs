using MLTransfer.Techniques.DomainAdaptation;
using MLTransfer.Torch.Streaming;
using MLTransfer.Torch.Training;
using static TorchSharp.torch;

namespace MLTransfer.Torch.DomainAdaptation;

/// <summary>
/// The gradient domain-adaptation methods' objective for the <see cref="TrainingLoop"/>: mini-batches of labelled
/// source images, each with as many unlabelled target images, through the trunk (frozen features or trained top blocks),
/// the bottleneck and the head; cross-entropy on the source plus the method's <see cref="AdaptationLoss"/> weighted by
/// Ganin et al.'s warm-up <c>w·(2/(1+exp(−10p))−1)</c>. The new layers train at the full rate, the trunk's blocks at
/// <see cref="FeatureAdapterOptions.BackboneLearningRateFactor"/> of it; source validation accuracy is the only
/// selection signal (target labels are never read).
/// </summary>
internal sealed class AdapterObjective : ITrainingObjective
{
    private readonly FeatureAdapterOptions _options;
    private readonly AdapterNetwork _network;
    private readonly AdapterTrunk _trunk;
    private readonly AdaptationLoss? _loss;
    private readonly int[] _labels;
    private readonly int[]? _validationLabels;

    public AdapterObjective(AdaptationContext context, FeatureAdapterOptions options, string method, AdapterNetwork network, AdapterTrunk trunk, AdaptationLoss? loss)
    {
        _options = options;
        _network = network;
        _trunk = trunk;
        _loss = loss;
        _labels = context.SourceTrain.LabelIndices(context.Classes);
        _validationLabels = context.SourceValidation?.LabelIndices(context.Classes);
        if (trunk.Target.Count == 0)
            throw new ArgumentException("Domain adaptation needs target images.", nameof(context));
        var adapter = network.Parameters().Concat(loss?.Parameters ?? []).ToList();
        var groups = new List<ParameterGroup> { new("adapter", adapter, 1, options.WeightDecay) };
        if (trunk.Parameters.Count > 0)
            groups.Add(new("trunk", trunk.Parameters, options.BackboneLearningRateFactor, options.WeightDecay));
        ParameterGroups = groups;
        RunKey = string.Join(";", "domain-adaptation/" + method, string.Join("|", context.Classes), context.Featurizer.ImageSize, context.Seed,
            context.SourceTrain.Examples.Count, context.SourceValidation?.Examples.Count ?? 0, context.Target.Examples.Count,
            $"top{options.TrainedBackboneBlocks}", options.BatchNorm, options.BottleneckSize, context.Backbone.Identity);
    }

    public string RunKey { get; }

    public IRowSource TrainRows => _trunk.Source;

    public IRowSource? PairedRows => _loss is null ? null : _trunk.Target;

    public TrainingPhase BodyPhase => _trunk.Parameters.Count > 0 ? TrainingPhase.TopBlocks : TrainingPhase.HeadOnly;

    public IReadOnlyList<ParameterGroup> ParameterGroups { get; }

    public IEnumerable<(string Name, Tensor Tensor)> StateTensors() =>
        ParameterGroups.SelectMany(g => g.Parameters).Select(p => (p.Name, (Tensor)p.Parameter))
            .Concat(_trunk.StateTensors().Where(t => !t.Name.StartsWith("trunk:", StringComparison.Ordinal)));

    public void ConfigurePhase(TrainingPhase phase) => _trunk.Train(true);

    public StepResult Step(LoadedBatch batch, StepContext context)
    {
        var y = tensor(batch.Items.Select(i => (long)_labels[i]).ToArray());
        var (pooledSource, pooledTarget) = _trunk.Pooled(batch.Input, _loss is null ? null : batch.Paired);
        var features = _network.Features(pooledSource);
        var logits = _network.Classifier.forward(features);
        var loss = nn.functional.cross_entropy(logits, y);
        if (_loss is not null)
            loss = loss.Plus(_loss.Compute(features, _network.Features(pooledTarget!), _options.AdaptationWeight * FeatureAdapterTrainer.Schedule(context.Progress)));
        return new StepResult(loss, logits.argmax(1).eq(y).sum().item<long>());
    }

    public EpochValidation? Validate()
    {
        if (_trunk.Validation is not { Count: > 0 } rows)
            return null;
        _trunk.Train(false);
        double lossSum = 0;
        long correct = 0;
        using (no_grad())
        {
            foreach (var (items, pooled) in _trunk.PooledBatches(rows))
            {
                using (pooled)
                using (NewDisposeScope())
                {
                    var logits = _network.Classifier.forward(_network.Features(pooled));
                    var y = tensor(items.Select(i => (long)_validationLabels![i]).ToArray());
                    lossSum += nn.functional.cross_entropy(logits, y).item<float>() * items.Length;
                    correct += logits.argmax(1).eq(y).sum().item<long>();
                }
            }
        }
        return new EpochValidation((double)correct / rows.Count, lossSum / rows.Count, new Dictionary<string, Evaluation.TaskReport>());
    }
}
