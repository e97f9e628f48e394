using System.Collections.Immutable;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;
using Microsoft.ML.Transforms;
using MLTransfer.Heads;

namespace MLTransfer.Explain;

/// <summary>
/// Reads the class weights of a model's head when it is a softmax over an affine function of the features: ML.NET's
/// maximum-entropy models (L-BFGS, SDCA, and the <see cref="LinearHead"/> that MLTransfer's own heads become), optionally
/// after an affine normaliser (SDCA's min-max). The returned head reads the raw feature column, so
/// <c>softmax(W·features + b)</c> is the model's score.
/// </summary>
internal static class LinearHeadReader
{
    /// <summary>The head's weights in score order, or null when the head is not linear (e.g. LightGBM) or holds unknown steps.</summary>
    /// <param name="parts">The model's parts.</param>
    public static LinearHead? TryRead(ModelParts parts)
    {
        var predictors = parts.HeadSteps.Select((s, i) => (Step: s, Index: i)).Where(p => p.Step is IPredictionTransformer<object>).ToList();
        if (predictors.Count != 1 || parts.ScoreColumn != "Score")
            return null;
        var (step, index) = predictors[0];
        if (step is not ISingleFeaturePredictionTransformer<object> { Model: MaximumEntropyModelParameters model } predictor
            || predictor.FeatureColumnName != parts.FeaturesName)
            return null;
        VBuffer<float>[] rows = [];
        model.GetWeights(ref rows, out var count);
        if (count != parts.Classes.Count)
            return null;
        var weights = rows.Select(r => r.DenseValues().ToArray()).ToArray();
        var bias = model.GetBiases().ToArray();
        for (var i = index - 1; i >= 0; i--)
        {
            if (parts.HeadSteps[i] is not NormalizingTransformer normalizer || !TryFold(normalizer, weights, bias))
                return null;
        }
        return new LinearHead(weights, bias, parts.Classes);
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
