using System.Collections.Immutable;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;
using Microsoft.ML.Transforms;
using MLTransfer.Heads;
using MLTransfer.Techniques;

namespace MLTransfer.Explain;

/// <summary>
/// Reads the class weights of a model's head when it is a softmax over an affine function of the features: ML.NET's
/// maximum-entropy models (L-BFGS, SDCA, and the <see cref="LinearHead"/> that MLTransfer's own heads become), optionally
/// after an affine normaliser (SDCA's min-max). The returned head reads the raw feature column, so
/// <c>softmax(W·features + b)</c> is the model's score; this is checked by scoring a probe vector with the model's head.
/// </summary>
internal static class LinearHeadReader
{
    /// <summary>
    /// The weights behind the explained score column, in score order, or null when no linear predictor reproduces it (e.g.
    /// LightGBM, or steps this reader does not know).
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="parts">The model's parts.</param>
    public static LinearHead? TryRead(MLContext mlContext, ModelParts parts)
    {
        var predictors = parts.HeadSteps.Select((s, i) => (Step: s, Index: i))
            .Where(p => p.Step is ISingleFeaturePredictionTransformer<object> { Model: MaximumEntropyModelParameters } t && t.FeatureColumnName == parts.FeaturesName)
            .ToList();
        var candidates = new List<LinearHead>();
        foreach (var (step, index) in predictors)
        {
            var model = (MaximumEntropyModelParameters)((ISingleFeaturePredictionTransformer<object>)step).Model;
            VBuffer<float>[] rows = [];
            model.GetWeights(ref rows, out var count);
            if (count != parts.Classes.Count)
                continue;
            var weights = rows.Select(r => r.DenseValues().ToArray()).ToArray();
            var bias = model.GetBiases().ToArray();
            var folded = true;
            for (var i = index - 1; i >= 0 && folded && parts.HeadSteps[i] is NormalizingTransformer normalizer; i--)
                folded = TryFold(normalizer, weights, bias);
            if (folded)
                candidates.Add(new LinearHead(weights, bias, parts.Classes));
        }
        if (candidates.Count == 0)
            return null;
        var probe = Probe(candidates[0].FeatureSize);
        var scores = parts.Head.Transform(FeatureRows.ToDataView(mlContext, [probe], null, null))
            .GetColumn<VBuffer<float>>(parts.ScoreColumn).Single().DenseValues().ToArray();
        return candidates.FirstOrDefault(c => c.Predict(probe).Zip(scores).All(p => Math.Abs(p.First - p.Second) < 1e-4));
    }

    // A fixed, non-negative vector like pooled ReLU features, spread enough that a wrong head scores it differently.
    private static float[] Probe(int size)
    {
        var random = new Random(12345);
        return Enumerable.Range(0, size).Select(_ => (float)(random.NextDouble() * random.NextDouble() * 2)).ToArray();
    }

    // (x − offset)·scale per feature, folded into the weights: w'_j = w_j·scale_j, b' = b − Σ_j w_j·scale_j·offset_j.
    private static bool TryFold(NormalizingTransformer normalizer, float[][] weights, float[] bias)
    {
        if (normalizer.GetNormalizerModelParameters(0) is not NormalizingTransformer.AffineNormalizerModelParameters<ImmutableArray<float>> affine)
            return false;
        var size = weights[0].Length;
        if (affine.Scale.Length != size || (!affine.Offset.IsDefaultOrEmpty && affine.Offset.Length != size))
            return false;
        for (var k = 0; k < weights.Length; k++)
        {
            double shift = 0;
            for (var j = 0; j < size; j++)
            {
                var scaled = weights[k][j] * affine.Scale[j];
                if (!affine.Offset.IsDefaultOrEmpty)
                    shift += scaled * affine.Offset[j];
                weights[k][j] = scaled;
            }
            bias[k] -= (float)shift;
        }
        return true;
    }
}
