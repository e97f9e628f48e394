using MLTransfer.Heads;
using MLTransfer.Techniques;
using MLTransfer.Techniques.DomainAdaptation;
using TorchSharp;
using static TorchSharp.torch;

namespace MLTransfer.Torch.DomainAdaptation;

/// <summary>The network the gradient methods train: a bottleneck (dense + ReLU) and a linear softmax head on standardised backbone features.</summary>
internal sealed class AdapterNetwork : IDisposable
{
    public AdapterNetwork(int inputs, int bottleneck, int classes)
    {
        Bottleneck = nn.Linear(inputs, bottleneck);
        Classifier = nn.Linear(bottleneck, classes);
    }

    public TorchSharp.Modules.Linear Bottleneck { get; }

    public TorchSharp.Modules.Linear Classifier { get; }

    public Tensor Features(Tensor x) => nn.functional.relu(Bottleneck.forward(x));

    public IEnumerable<TorchSharp.Modules.Parameter> Parameters() => Bottleneck.parameters().Concat(Classifier.parameters());

    public void Dispose()
    {
        Bottleneck.Dispose();
        Classifier.Dispose();
    }
}

/// <summary>
/// Trains <see cref="AdapterNetwork"/> with Adam on mini-batches of labelled source features and equally many
/// unlabelled target features, adding a method-specific adaptation loss weighted by the warm-up schedule of
/// Ganin et al. 2016, and turns the result into a graph edit plus a <see cref="LinearHead"/>. Deterministic for a seed.
/// </summary>
internal static class FeatureAdapterTrainer
{
    /// <summary>The adaptation loss of one step: source and target bottleneck features and the current coefficient.</summary>
    public delegate Tensor AdaptationLoss(Tensor source, Tensor target, double coefficient);

    /// <summary>Ganin et al.'s schedule 2/(1+exp(−10p))−1, rising from 0 at p = 0 to ≈1 at p = 1.</summary>
    public static double Schedule(double progress) => 2 / (1 + Math.Exp(-10 * progress)) - 1;

    public static Adaptation Train(AdaptationContext context, FeatureAdapterOptions options, string tag,
        Func<int, IEnumerable<TorchSharp.Modules.Parameter>> extraParameters, AdaptationLoss? adaptationLoss)
    {
        if (options.Epochs < 1 || options.BatchSize < 1 || options.BottleneckSize < 1 || options.LearningRate <= 0)
            throw new ArgumentOutOfRangeException(nameof(options), "Epochs, BatchSize, BottleneckSize and LearningRate must be positive.");
        var classes = context.Classes;
        var source = context.SourceTrain.Features;
        var labels = context.SourceTrain.LabelIndices(classes);
        var target = context.Target.Features;
        var d = source[0].Length;
        var (mean, scale) = Standardizer(source);
        var history = new List<EpochMetrics>();

        torch.manual_seed(context.Seed);
        var random = new Random(context.Seed);
        using var network = new AdapterNetwork(d, options.BottleneckSize, classes.Count);
        var parameters = network.Parameters().Concat(extraParameters(options.BottleneckSize)).ToList();
        using var optimizer = optim.Adam(parameters, lr: options.LearningRate, weight_decay: options.WeightDecay);
        var xs = Standardized(source, mean, scale);
        var xt = Standardized(target, mean, scale);
        var validation = context.SourceValidation;
        var xv = validation is null ? null : Standardized(validation.Features, mean, scale);
        var yv = validation?.LabelIndices(classes);

        var sourceOrder = Enumerable.Range(0, source.Length).ToArray();
        var targetOrder = Enumerable.Range(0, target.Length).ToArray();
        var targetCursor = target.Length;
        var steps = (source.Length + options.BatchSize - 1) / options.BatchSize;
        var total = options.Epochs * steps;
        for (var epoch = 0; epoch < options.Epochs; epoch++)
        {
            random.Shuffle(sourceOrder);
            double lossSum = 0;
            var correct = 0;
            for (var step = 0; step < steps; step++)
            {
                using var scope = NewDisposeScope();
                var progress = (double)(epoch * steps + step) / total;
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
                var inputs = Rows(xs, batch, d);
                var y = tensor(batch.Select(i => (long)labels[i]).ToArray());
                var features = network.Features(inputs);
                var logits = network.Classifier.forward(features);
                var loss = nn.functional.cross_entropy(logits, y);
                if (adaptationLoss is not null && options.AdaptationWeight > 0)
                {
                    var coefficient = options.AdaptationWeight * Schedule(progress);
                    loss = loss + adaptationLoss(features, network.Features(Rows(xt, targetBatch, d)), coefficient);
                }
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();
                lossSum += loss.item<float>() * batch.Length;
                correct += (int)logits.argmax(1).eq(y).sum().item<long>();
            }
            var (validationLoss, validationAccuracy) = xv is null ? (double.NaN, double.NaN) : Evaluate(network, xv, yv!, d);
            var metrics = new EpochMetrics(epoch, lossSum / source.Length, (double)correct / source.Length, validationLoss, validationAccuracy, options.LearningRate);
            history.Add(metrics);
        }
        return Export(context, network, mean, scale, tag, history);
    }

    private static Adaptation Export(AdaptationContext context, AdapterNetwork network, float[] mean, float[] scale, string tag, List<EpochMetrics> history)
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
        return new Adaptation
        {
            GraphPath = FeatureGraphEdits.AppendLayers(context.Featurizer.GraphPath, [layer], context.Engine.GraphDirectory, tag),
            HeadTrainFeatures = context.SourceTrain.Features.Select(layer.Apply).ToArray(),
            HeadValidationFeatures = context.SourceValidation?.Features.Select(layer.Apply).ToArray(),
            TargetAsExported = (rows, _) => rows.Select(layer.Apply).ToArray(),
            Head = head,
            History = history,
        };
    }

    private static (double Loss, double Accuracy) Evaluate(AdapterNetwork network, float[] x, int[] labels, int d)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var logits = network.Classifier.forward(network.Features(tensor(x, [labels.Length, d])));
        var y = tensor(labels.Select(l => (long)l).ToArray());
        var loss = nn.functional.cross_entropy(logits, y).item<float>();
        var correct = logits.argmax(1).eq(y).sum().item<long>();
        return (loss, (double)correct / labels.Length);
    }

    private static Tensor Rows(float[] flat, int[] rows, int d)
    {
        var buffer = new float[rows.Length * d];
        for (var i = 0; i < rows.Length; i++)
            Array.Copy(flat, (long)rows[i] * d, buffer, (long)i * d, d);
        return tensor(buffer, [rows.Length, d]);
    }

    private static float[] Standardized(IReadOnlyList<float[]> rows, float[] mean, float[] scale)
    {
        var d = mean.Length;
        var flat = new float[rows.Count * d];
        for (var r = 0; r < rows.Count; r++)
            for (var j = 0; j < d; j++)
                flat[r * d + j] = (rows[r][j] - mean[j]) * scale[j];
        return flat;
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
