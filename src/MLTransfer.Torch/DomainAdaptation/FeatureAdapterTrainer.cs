using MLTransfer.Heads;
using MLTransfer.Techniques;
using MLTransfer.Techniques.DomainAdaptation;
using MLTransfer.Torch.Streaming;
using MLTransfer.Torch.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLTransfer.Torch.DomainAdaptation;

/// <summary>The new layers the gradient methods train: a bottleneck (dense + ReLU) and a linear softmax head on standardised pooled backbone features.</summary>
internal sealed class AdapterNetwork : IDisposable
{
    private readonly Tensor _mean;
    private readonly Tensor _scale;

    public AdapterNetwork(float[] mean, float[] scale, int bottleneck, int classes)
    {
        _mean = tensor(mean);
        _scale = tensor(scale);
        Bottleneck = nn.Linear(mean.Length, bottleneck);
        Classifier = nn.Linear(bottleneck, classes);
    }

    public Linear Bottleneck { get; }

    public Linear Classifier { get; }

    /// <summary>Bottleneck features of raw pooled backbone features.</summary>
    public Tensor Features(Tensor pooled) => nn.functional.relu(Bottleneck.forward((pooled - _mean) * _scale));

    /// <summary>The trainable parameters by stable names.</summary>
    public IReadOnlyList<(string Name, Parameter Parameter)> Parameters() =>
        [("bottleneck:weight", Bottleneck.weight!), ("bottleneck:bias", Bottleneck.bias!), ("classifier:weight", Classifier.weight!), ("classifier:bias", Classifier.bias!)];

    public void Dispose()
    {
        Bottleneck.Dispose();
        Classifier.Dispose();
        _mean.Dispose();
        _scale.Dispose();
    }
}

/// <summary>
/// A domain-adaptation loss in the spirit of tllib: a module computed on the source and target bottleneck features of a
/// batch, added to the classification loss with the current coefficient; it may have parameters of its own (DANN's
/// discriminator), which train with the adapter.
/// </summary>
internal abstract class AdaptationLoss : IDisposable
{
    /// <summary>The loss's own trainable parameters by stable names.</summary>
    public virtual IReadOnlyList<(string Name, Parameter Parameter)> Parameters => [];

    /// <summary>The loss of one batch.</summary>
    /// <param name="source">Source bottleneck features [n, d].</param>
    /// <param name="target">Target bottleneck features [n, d].</param>
    /// <param name="coefficient">The adaptation weight at this point of training (warm-up included).</param>
    public abstract Tensor Compute(Tensor source, Tensor target, double coefficient);

    public virtual void Dispose()
    {
    }
}

/// <summary>
/// Trains <see cref="AdapterNetwork"/> (and the trainable part of an <see cref="AdapterTrunk"/> below it) through the
/// shared <see cref="TrainingLoop"/> (<see cref="AdapterObjective"/>), then turns the result into a graph edit plus a
/// <see cref="LinearHead"/>. Deterministic for a seed.
/// </summary>
internal static class FeatureAdapterTrainer
{
    /// <summary>Ganin et al.'s schedule 2/(1+exp(−10p))−1, rising from 0 at p = 0 to ≈1 at p = 1.</summary>
    public static double Schedule(double progress) => 2 / (1 + Math.Exp(-10 * progress)) - 1;

    /// <summary>Trains and exports.</summary>
    /// <param name="context">Source and target features and the featuriser.</param>
    /// <param name="options">The method's options.</param>
    /// <param name="tag">The method's name (graph file names, run key).</param>
    /// <param name="createLoss">Makes the adaptation loss (after the seed is set, so its parameters are seeded too); null trains without adaptation.</param>
    public static Adaptation Train(AdaptationContext context, FeatureAdapterOptions options, string tag, Func<AdaptationLoss>? createLoss)
    {
        if (options.Epochs < 1 || options.BatchSize < 1 || options.BottleneckSize < 1 || !(options.LearningRate > 0) || double.IsInfinity(options.LearningRate))
            throw new ArgumentOutOfRangeException(nameof(options), "Epochs, BatchSize, BottleneckSize and LearningRate must be positive.");
        if (options.TrainedBackboneBlocks < 0 || options.BackboneLearningRateFactor < 0 || options.EarlyStoppingPatience < 0)
            throw new ArgumentOutOfRangeException(nameof(options), "TrainedBackboneBlocks, BackboneLearningRateFactor and EarlyStoppingPatience must not be negative.");
        if (options.Resume && options.CheckpointDirectory is null)
            throw new ArgumentException("Resume needs a CheckpointDirectory.", nameof(options));
        var classes = context.Classes;
        var adapts = createLoss is not null && options.AdaptationWeight > 0;
        var (mean, scale) = Standardizer(context.SourceTrain.Features);

        torch.manual_seed(context.Seed);
        var network = new AdapterNetwork(mean, scale, options.BottleneckSize, classes.Count);
        using var adaptationLoss = adapts ? createLoss!() : null;
        AdapterTrunk trunk = options.TrainedBackboneBlocks > 0
            ? new BackboneTrunk(context, options.TrainedBackboneBlocks, options.BatchNorm,
                new BlockCacheSettings(BlockCacheSettings.FolderIn(options.Engine.CacheDirectory), options.BlockCacheMaxBytes, options.HalfPrecisionBlockCache))
            : new FrozenTrunk(context);
        try
        {
            var objective = new AdapterObjective(context, options, tag, network, trunk, adaptationLoss);
            var history = TrainingLoop.Run(objective, new TrainingPlan
            {
                Epochs = options.Epochs,
                BatchSize = options.BatchSize,
                Optimizer = OptimizerKind.Adam,
                LearningRate = options.LearningRate,
                Schedule = trunk.Parameters.Count > 0 ? LearningRateSchedule.InverseDecay : LearningRateSchedule.Constant,
                WarmupEpochs = 0,
                EarlyStoppingPatience = options.EarlyStoppingPatience,
                WeightAverageDecay = options.WeightAverageDecay,
                RestoreBest = options.EarlyStoppingPatience > 0,
                CheckpointDirectory = options.CheckpointDirectory,
                Resume = options.Resume,
                Seed = context.Seed,
                MetricsCallback = options.MetricsCallback,
                Progress = options.TrainingProgress,
            });
            trunk.Finish(adapts);
            return Export(context, network, trunk, mean, scale, tag,
                history.Select(m => new EpochMetrics(m.Epoch - 1, m.TrainLoss, m.TrainAccuracy, m.ValidationLoss ?? double.NaN, m.ValidationScore ?? double.NaN, m.LearningRate)).ToList());
        }
        finally
        {
            network.Dispose();
            // A trained backbone stays alive: Adaptation.TargetAsExported runs it on new images.
            if (trunk is FrozenTrunk)
                trunk.Dispose();
        }
    }

    private static Adaptation Export(AdaptationContext context, AdapterNetwork network, AdapterTrunk trunk, float[] mean, float[] scale, string tag, List<EpochMetrics> history)
    {
        var w1 = network.Bottleneck.weight!.data<float>().ToArray();
        var b1 = network.Bottleneck.bias!.data<float>().ToArray();
        var d = mean.Length;
        var h = b1.Length;
        // Fold the standardisation into the layer: ((x − μ)/σ)·W1ᵀ + b1 = x·W' + b'.
        var weights = new float[d * h];
        var bias = new float[h];
        for (var j = 0; j < h; j++)
        {
            double offset = b1[j];
            for (var i = 0; i < d; i++)
            {
                var w = w1[j * d + i] * scale[i];
                weights[i * h + j] = w;
                offset -= (double)w * mean[i];
            }
            bias[j] = (float)offset;
        }
        var layer = new DenseLayer(d, h, weights, bias, Relu: true);
        var w2 = network.Classifier.weight!.data<float>().ToArray();
        var b2 = network.Classifier.bias!.data<float>().ToArray();
        var k = b2.Length;
        var head = new LinearHead(Enumerable.Range(0, k).Select(c => w2.AsSpan(c * h, h).ToArray()).ToArray(), b2, context.Classes);
        var exported = trunk.PooledAsExported;
        return new Adaptation
        {
            GraphPath = FeatureGraphEdits.AppendLayers(trunk.WriteGraph(tag), [layer], context.Engine.EffectiveGraphDirectory, tag),
            HeadTrainFeatures = trunk.SourcePooled.Select(layer.Apply).ToArray(),
            HeadValidationFeatures = trunk.ValidationPooled?.Select(layer.Apply).ToArray(),
            TargetAsExported = (rows, examples) => exported(rows, examples).Select(layer.Apply).ToArray(),
            Head = head,
            History = history,
        };
    }

    private static (float[] Mean, float[] Scale) Standardizer(IReadOnlyList<float[]> rows)
    {
        var mean = CoralMath.Mean(rows);
        var d = mean.Length;
        var variance = new double[d];
        foreach (var row in rows)
            for (var j = 0; j < d; j++)
                variance[j] += (row[j] - mean[j]) * (row[j] - mean[j]);
        return (mean.Select(m => (float)m).ToArray(), variance.Select(v => (float)(1 / Math.Sqrt(v / rows.Count + 1e-6))).ToArray());
    }
}
