using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;
using MLTransfer.Export;
using MLTransfer.Techniques;

namespace MLTransfer.Heads;

/// <summary>
/// Trains a multinomial logistic-regression head <c>softmax(W·x + b)</c> on feature vectors with ML.NET's
/// <c>LbfgsMaximumEntropy</c> trainer and returns it as a <see cref="LinearHead"/>. Every technique that trains an
/// L-BFGS head on frozen features (feature extraction, multi-task, domain adaptation) uses this one trainer, so the same
/// features and labels give the same head whichever technique asks.
/// </summary>
public static class LbfgsHeadTrainer
{
    /// <summary>ML.NET's default L2 regularisation of <c>LbfgsMaximumEntropy</c>: 1.</summary>
    public const float DefaultL2Regularization = 1f;

    /// <summary>Trains the head on one thread, so the result is deterministic.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="classes">Class names; the head's rows follow this order.</param>
    /// <param name="features">Training vectors.</param>
    /// <param name="labels">Class name of each vector.</param>
    /// <param name="l2">L2 regularisation. The default value is <see cref="DefaultL2Regularization"/> (1).</param>
    public static LinearHead Train(MLContext mlContext, IReadOnlyList<string> classes, IReadOnlyList<float[]> features, IReadOnlyList<string> labels,
        float l2 = DefaultL2Regularization)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(classes);
        var data = FeatureRows.ToDataView(mlContext, features, labels, classes);
        var keyed = mlContext.Transforms.Conversion.MapValueToKey(TransferData.LabelColumn).Fit(data).Transform(data);
        var trainer = mlContext.MulticlassClassification.Trainers.LbfgsMaximumEntropy(new LbfgsMaximumEntropyMulticlassTrainer.Options
        {
            LabelColumnName = TransferData.LabelColumn,
            FeatureColumnName = ImagePipeline.FeaturesColumn,
            L2Regularization = l2,
            NumberOfThreads = 1,
        });
        var parameters = trainer.Fit(keyed).Model;
        VBuffer<float>[] weights = [];
        parameters.GetWeights(ref weights, out var count);
        var bias = parameters.GetBiases().ToArray();
        var keyNames = default(VBuffer<ReadOnlyMemory<char>>);
        keyed.Schema[TransferData.LabelColumn].GetKeyValues(ref keyNames);
        var keyOrder = keyNames.DenseValues().Select(v => v.ToString()).ToList();
        if (count != classes.Count || keyOrder.Count != classes.Count)
            throw new InvalidOperationException($"The trainer returned {count} classes for {classes.Count} expected.");
        var rows = new float[classes.Count][];
        var biases = new float[classes.Count];
        for (var c = 0; c < classes.Count; c++)
        {
            var k = keyOrder.IndexOf(classes[c]);
            rows[c] = weights[k].DenseValues().ToArray();
            biases[c] = bias[k];
        }
        return new LinearHead(rows, biases, classes);
    }
}
