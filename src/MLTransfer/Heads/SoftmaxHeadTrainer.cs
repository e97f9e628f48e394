using MLTransfer.Techniques;

namespace MLTransfer.Heads;

/// <summary>
/// Trains a <see cref="LinearHead"/> on feature vectors with mini-batch SGD with momentum on standardised
/// features, cross-entropy loss and L2 decay, reshuffling every epoch, with optional early stopping that keeps
/// the best epoch's weights. Deterministic for a given seed. A loss that becomes NaN or infinite stops training with a
/// <see cref="Diagnostics.TrainingDivergedException"/>.
/// </summary>
public static class SoftmaxHeadTrainer
{
    /// <summary>Trains the head.</summary>
    /// <param name="classes">Class names.</param>
    /// <param name="trainFeatures">Training feature vectors.</param>
    /// <param name="trainLabels">Class index of each training vector.</param>
    /// <param name="validationFeatures">Validation vectors (may be empty).</param>
    /// <param name="validationLabels">Class index of each validation vector.</param>
    /// <param name="options">Training options.</param>
    /// <param name="seed">Seed of the shuffle.</param>
    /// <param name="history">Receives one entry per epoch.</param>
    public static LinearHead Train(IReadOnlyList<string> classes, IReadOnlyList<float[]> trainFeatures, IReadOnlyList<int> trainLabels,
        IReadOnlyList<float[]> validationFeatures, IReadOnlyList<int> validationLabels, ImageClassificationHeadOptions options, int seed,
        List<EpochMetrics>? history = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (trainFeatures.Count == 0)
            throw new ArgumentException("No training features.");
        if (options.Epoch < 1 || options.BatchSize < 1 || !(float.IsFinite(options.LearningRate) && options.LearningRate > 0))
            throw new ArgumentOutOfRangeException(nameof(options), "Epoch, BatchSize and LearningRate must be positive (and the learning rate a finite number).");
        var k = classes.Count;
        var d = trainFeatures[0].Length;
        var (mean, scale) = Standardizer(trainFeatures, d);
        var x = trainFeatures.Select(f => Standardize(f, mean, scale)).ToArray();
        var xv = validationFeatures.Select(f => Standardize(f, mean, scale)).ToArray();

        var w = new float[k, d];
        var b = new float[k];
        var vw = new float[k, d];
        var vb = new float[k];
        var random = new Random(seed);
        var order = Enumerable.Range(0, x.Length).ToArray();
        var grad = new float[k, d];
        var gb = new float[k];
        var probs = new double[k];
        float[,]? bestW = null;
        float[]? bestB = null;
        var best = double.NaN;
        var sinceBest = 0;
        var stopping = xv.Length > 0 ? options.EarlyStoppingCriteria : null;

        for (var epoch = 0; epoch < options.Epoch; epoch++)
        {
            random.Shuffle(order);
            double loss = 0;
            var correct = 0;
            for (var start = 0; start < order.Length; start += options.BatchSize)
            {
                var end = Math.Min(order.Length, start + options.BatchSize);
                Array.Clear(grad);
                Array.Clear(gb);
                for (var i = start; i < end; i++)
                {
                    var sample = x[order[i]];
                    var label = trainLabels[order[i]];
                    Softmax(w, b, sample, probs);
                    loss -= Math.Log(Math.Max(probs[label], 1e-15));
                    if (ArgMax(probs) == label)
                        correct++;
                    for (var c = 0; c < k; c++)
                    {
                        var delta = (float)(probs[c] - (c == label ? 1 : 0));
                        gb[c] += delta;
                        for (var j = 0; j < d; j++)
                            grad[c, j] += delta * sample[j];
                    }
                }
                var n = end - start;
                for (var c = 0; c < k; c++)
                {
                    vb[c] = options.Momentum * vb[c] - options.LearningRate * gb[c] / n;
                    b[c] += vb[c];
                    for (var j = 0; j < d; j++)
                    {
                        vw[c, j] = options.Momentum * vw[c, j] - options.LearningRate * (grad[c, j] / n + options.L2Regularization * w[c, j]);
                        w[c, j] += vw[c, j];
                    }
                }
            }
            Diagnostics.TrainingDivergedException.ThrowIfNotFinite(loss, epoch + 1, options.LearningRate);
            var (validationLoss, validationAccuracy) = xv.Length == 0 ? (double.NaN, double.NaN) : Score(w, b, xv, validationLabels, probs);
            var metrics = new EpochMetrics(epoch, loss / x.Length, (double)correct / x.Length, validationLoss, validationAccuracy, options.LearningRate);
            history?.Add(metrics);
            options.MetricsCallback?.Invoke(metrics);
            if (stopping is null)
                continue;
            var value = stopping.Metric == EarlyStoppingMetric.Accuracy ? validationAccuracy : -validationLoss;
            if (double.IsNaN(best) || value > best + stopping.MinDelta)
            {
                best = value;
                sinceBest = 0;
                bestW = (float[,])w.Clone();
                bestB = (float[])b.Clone();
            }
            else if (++sinceBest >= stopping.Patience)
                break;
        }
        if (bestW is not null)
        {
            w = bestW;
            b = bestB!;
        }
        return Unstandardize(w, b, mean, scale, classes);
    }

    private static (float[] Mean, float[] Scale) Standardizer(IReadOnlyList<float[]> features, int d)
    {
        var mean = new double[d];
        var sq = new double[d];
        foreach (var f in features)
            for (var j = 0; j < d; j++)
            {
                mean[j] += f[j];
                sq[j] += (double)f[j] * f[j];
            }
        var n = features.Count;
        var scale = new float[d];
        for (var j = 0; j < d; j++)
        {
            mean[j] /= n;
            var variance = Math.Max(sq[j] / n - mean[j] * mean[j], 0);
            scale[j] = (float)(1 / Math.Sqrt(variance + 1e-6));
        }
        return (mean.Select(m => (float)m).ToArray(), scale);
    }

    private static float[] Standardize(float[] f, float[] mean, float[] scale)
    {
        var result = new float[f.Length];
        for (var j = 0; j < f.Length; j++)
            result[j] = (f[j] - mean[j]) * scale[j];
        return result;
    }

    private static LinearHead Unstandardize(float[,] w, float[] b, float[] mean, float[] scale, IReadOnlyList<string> classes)
    {
        var k = b.Length;
        var d = mean.Length;
        var weights = new float[k][];
        var bias = new float[k];
        for (var c = 0; c < k; c++)
        {
            weights[c] = new float[d];
            double offset = b[c];
            for (var j = 0; j < d; j++)
            {
                weights[c][j] = w[c, j] * scale[j];
                offset -= (double)w[c, j] * scale[j] * mean[j];
            }
            bias[c] = (float)offset;
        }
        return new LinearHead(weights, bias, classes);
    }

    private static void Softmax(float[,] w, float[] b, float[] x, double[] probs)
    {
        var k = b.Length;
        var max = double.NegativeInfinity;
        for (var c = 0; c < k; c++)
        {
            double s = b[c];
            for (var j = 0; j < x.Length; j++)
                s += w[c, j] * x[j];
            probs[c] = s;
            max = Math.Max(max, s);
        }
        double total = 0;
        for (var c = 0; c < k; c++)
            total += probs[c] = Math.Exp(probs[c] - max);
        for (var c = 0; c < k; c++)
            probs[c] /= total;
    }

    private static int ArgMax(double[] values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
            if (values[i] > values[best])
                best = i;
        return best;
    }

    private static (double Loss, double Accuracy) Score(float[,] w, float[] b, float[][] x, IReadOnlyList<int> labels, double[] probs)
    {
        double loss = 0;
        var correct = 0;
        for (var i = 0; i < x.Length; i++)
        {
            Softmax(w, b, x[i], probs);
            loss -= Math.Log(Math.Max(probs[labels[i]], 1e-15));
            if (ArgMax(probs) == labels[i])
                correct++;
        }
        return (loss / x.Length, (double)correct / x.Length);
    }
}
