using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;
using MLTransfer.Export;
using MLTransfer.Heads;

namespace MLTransfer.Techniques.DomainAdaptation;

/// <summary>Trains the multinomial logistic-regression head of domain adaptation with ML.NET's L-BFGS trainer and returns it as a <see cref="LinearHead"/>.</summary>
public static class FeatureHead
{
    /// <summary>Trains <c>softmax(W·x + b)</c> with ML.NET's <c>LbfgsMaximumEntropy</c> (one thread, so the result is deterministic).</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="classes">Class names; the head's rows follow this order.</param>
    /// <param name="features">Training vectors.</param>
    /// <param name="labels">Class name of each vector.</param>
    /// <param name="l2">L2 regularisation.</param>
    public static LinearHead TrainLbfgs(MLContext mlContext, IReadOnlyList<string> classes, IReadOnlyList<float[]> features, IReadOnlyList<string> labels, float l2)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
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

    /// <summary>Share of vectors whose arg-max class under <paramref name="head"/> equals the label.</summary>
    /// <param name="head">The head.</param>
    /// <param name="features">Vectors.</param>
    /// <param name="labels">Class index of each vector.</param>
    public static double Accuracy(LinearHead head, IReadOnlyList<float[]> features, IReadOnlyList<int> labels)
    {
        ArgumentNullException.ThrowIfNull(head);
        var correct = 0;
        for (var i = 0; i < features.Count; i++)
        {
            var p = head.Predict(features[i]);
            if (Array.IndexOf(p, p.Max()) == labels[i])
                correct++;
        }
        return features.Count == 0 ? double.NaN : (double)correct / features.Count;
    }
}
