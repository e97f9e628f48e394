using MLTransfer.Heads;
using MLTransfer.Techniques;
using MLTransfer.Techniques.DomainAdaptation;
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

    public IEnumerable<Parameter> Parameters() => Bottleneck.parameters().Concat(Classifier.parameters());

    public void Dispose()
    {
        Bottleneck.Dispose();
        Classifier.Dispose();
        _mean.Dispose();
        _scale.Dispose();
    }
}

/// <summary>
/// Trains <see cref="AdapterNetwork"/> (and the trainable part of an <see cref="AdapterTrunk"/> below it) with Adam
/// on mini-batches of labelled source images and equally many unlabelled target images, adding a method-specific
/// adaptation loss weighted by the warm-up schedule of Ganin et al. 2016, and turns the result into a graph edit plus
/// a <see cref="LinearHead"/>. Fixed budget, no selection; deterministic for a seed.
/// </summary>
internal static class FeatureAdapterTrainer
{
    /// <summary>The adaptation loss of one step: source and target bottleneck features and the current coefficient.</summary>
    public delegate Tensor AdaptationLoss(Tensor source, Tensor target, double coefficient);

    /// <summary>Ganin et al.'s schedule 2/(1+exp(−10p))−1, rising from 0 at p = 0 to ≈1 at p = 1.</summary>
    public static double Schedule(double progress) => 2 / (1 + Math.Exp(-10 * progress)) - 1;

    /// <summary>Ganin et al.'s learning-rate annealing 1/(1+10p)^0.75.</summary>
    public static double Annealing(double progress) => Math.Pow(1 + 10 * progress, -0.75);

    public static Adaptation Train(AdaptationContext context, FeatureAdapterOptions options, string tag,
        Func<int, IEnumerable<Parameter>> extraParameters, AdaptationLoss? adaptationLoss)
    {
        if (options.Epochs < 1 || options.BatchSize < 1 || options.BottleneckSize < 1 || options.LearningRate <= 0)
            throw new ArgumentOutOfRangeException(nameof(options), "Epochs, BatchSize, BottleneckSize and LearningRate must be positive.");
        if (options.TrainedBackboneBlocks < 0 || options.BackboneLearningRateFactor < 0)
            throw new ArgumentOutOfRangeException(nameof(options), "TrainedBackboneBlocks and BackboneLearningRateFactor must not be negative.");
        var classes = context.Classes;
        var labels = context.SourceTrain.LabelIndices(classes);
        var adapts = adaptationLoss is not null && options.AdaptationWeight > 0;
        var (mean, scale) = Standardizer(context.SourceTrain.Features);
        var history = new List<EpochMetrics>();

        torch.manual_seed(context.Seed);
        var random = new Random(context.Seed);
        var network = new AdapterNetwork(mean, scale, options.BottleneckSize, classes.Count);
        AdapterTrunk trunk = options.TrainedBackboneBlocks > 0 ? new BackboneTrunk(context, options.TrainedBackboneBlocks, options.BatchNorm) : new FrozenTrunk(context);
        try
        {
            var head = network.Parameters().Concat(extraParameters(options.BottleneckSize)).ToList();
            var groups = new List<Adam.ParamGroup> { new(head, lr: options.LearningRate, weight_decay: options.WeightDecay) };
            if (trunk.Parameters.Count > 0)
                groups.Add(new(trunk.Parameters, lr: options.LearningRate * options.BackboneLearningRateFactor, weight_decay: options.WeightDecay));
            using var optimizer = optim.Adam(groups, lr: options.LearningRate, weight_decay: options.WeightDecay);
            var validation = context.SourceValidation;
            var yv = validation?.LabelIndices(classes);

            var sourceCount = trunk.Source.Count;
            var sourceOrder = Enumerable.Range(0, sourceCount).ToArray();
            var targetOrder = Enumerable.Range(0, trunk.Target.Count).ToArray();
            var targetCursor = targetOrder.Length;
            var steps = (sourceCount + options.BatchSize - 1) / options.BatchSize;
            var total = options.Epochs * steps;
            for (var epoch = 0; epoch < options.Epochs; epoch++)
            {
                random.Shuffle(sourceOrder);
                trunk.Train(true);
                double lossSum = 0;
                var correct = 0;
                var rate = options.LearningRate;
                for (var step = 0; step < steps; step++)
                {
                    using var scope = NewDisposeScope();
                    var progress = (double)(epoch * steps + step) / total;
                    if (trunk.Parameters.Count > 0)
                    {
                        rate = options.LearningRate * Annealing(progress);
                        optimizer.ParamGroups.First().LearningRate = rate;
                        optimizer.ParamGroups.Last().LearningRate = rate * options.BackboneLearningRateFactor;
                    }
                    var batch = sourceOrder.Skip(step * options.BatchSize).Take(options.BatchSize).ToArray();
                    var targetBatch = new int[batch.Length];
                    for (var i = 0; i < batch.Length; i++)
                    {
                        if (targetCursor >= targetOrder.Length)
                        {
                            random.Shuffle(targetOrder);
                            targetCursor = 0;
                        }
                        targetBatch[i] = targetOrder[targetCursor++];
                    }
                    var y = tensor(batch.Select(i => (long)labels[i]).ToArray());
                    var (pooledSource, pooledTarget) = trunk.Pooled(trunk.Batch(trunk.Source, batch), adapts ? trunk.Batch(trunk.Target, targetBatch) : null);
                    var features = network.Features(pooledSource);
                    var logits = network.Classifier.forward(features);
                    var loss = nn.functional.cross_entropy(logits, y);
                    if (adapts)
                    {
                        var coefficient = options.AdaptationWeight * Schedule(progress);
                        loss = loss + adaptationLoss!(features, network.Features(pooledTarget!), coefficient);
                    }
                    optimizer.zero_grad();
                    loss.backward();
                    optimizer.step();
                    lossSum += loss.item<float>() * batch.Length;
                    correct += (int)logits.argmax(1).eq(y).sum().item<long>();
                }
                trunk.Train(false);
                var (validationLoss, validationAccuracy) = validation is null ? (double.NaN, double.NaN) : Evaluate(network, trunk, trunk.Validation!, yv!);
                history.Add(new EpochMetrics(epoch, lossSum / sourceCount, (double)correct / sourceCount, validationLoss, validationAccuracy, rate));
            }
            trunk.Finish(adapts);
            return Export(context, network, trunk, mean, scale, tag, history);
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

    private static (double Loss, double Accuracy) Evaluate(AdapterNetwork network, AdapterTrunk trunk, IReadOnlyList<float[]> rows, int[] labels)
    {
        using var noGrad = no_grad();
        double lossSum = 0;
        long correct = 0;
        foreach (var (start, pooled) in trunk.PooledBatches(rows))
        {
            using var scope = NewDisposeScope();
            var logits = network.Classifier.forward(network.Features(pooled));
            var y = tensor(labels.Skip(start).Take((int)pooled.shape[0]).Select(l => (long)l).ToArray());
            lossSum += nn.functional.cross_entropy(logits, y).item<float>() * y.shape[0];
            correct += logits.argmax(1).eq(y).sum().item<long>();
            pooled.Dispose();
        }
        return (lossSum / labels.Length, (double)correct / labels.Length);
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
