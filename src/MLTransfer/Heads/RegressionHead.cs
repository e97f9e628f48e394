using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Trainers;

namespace MLTransfer.Heads;

/// <summary>
/// A trained linear regression head, <c>Score = w·features + b</c>, exported as ML.NET's own
/// <see cref="LinearRegressionModelParameters"/> scored by ML.NET's regression scorer, so the model loads with a bare
/// <see cref="MLContext"/>.
/// </summary>
public sealed class RegressionHead
{
    private const string DefaultScore = "Score";

    /// <summary>Creates a head.</summary>
    /// <param name="weights">One weight per feature.</param>
    /// <param name="bias">The intercept.</param>
    public RegressionHead(float[] weights, float bias)
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (weights.Length == 0)
            throw new ArgumentException("A regression head needs at least one weight.");
        Weights = weights;
        Bias = bias;
    }

    /// <summary>One weight per feature.</summary>
    public float[] Weights { get; }

    /// <summary>The intercept.</summary>
    public float Bias { get; }

    /// <summary>Length of the feature vector.</summary>
    public int FeatureSize => Weights.Length;

    /// <summary>The prediction for one feature vector.</summary>
    /// <param name="features">The feature vector.</param>
    public float Predict(ReadOnlySpan<float> features)
    {
        double sum = Bias;
        for (var j = 0; j < Weights.Length; j++)
            sum += (double)Weights[j] * features[j];
        return (float)sum;
    }

    /// <summary>
    /// Builds the ML.NET transformers that score this head on a feature column, writing the prediction (a float) to
    /// <paramref name="scoreColumn"/>.
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="featureColumn">Name of the feature vector column (typed as <see cref="Export.ImagePipeline.FeatureType"/>).</param>
    /// <param name="scoreColumn">Name of the output column. The default value is <c>Score</c>.</param>
    public ITransformer ToMLNet(MLContext mlContext, string featureColumn, string scoreColumn = DefaultScore)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        var env = (IHostEnvironment)mlContext;
        var builder = new DataViewSchema.Builder();
        builder.AddColumn(featureColumn, Export.ImagePipeline.FeatureType(FeatureSize));
        var schemaView = new InMemoryRows(builder.ToSchema(), [(new float[FeatureSize], "")]);
        var weights = new VBuffer<float>(FeatureSize, (float[])Weights.Clone());
        var parameters = LinearHead.Create(typeof(LinearRegressionModelParameters), env, weights, Bias);
        var scorer = (ITransformer)LinearHead.Create(typeof(RegressionPredictionTransformer<LinearRegressionModelParameters>),
            env, parameters, schemaView.Schema, featureColumn);
        if (scoreColumn == DefaultScore)
            return scorer;
        var scored = scorer.Transform(schemaView);
        var tail = mlContext.Transforms.CopyColumns(scoreColumn, DefaultScore).Append(mlContext.Transforms.DropColumns(DefaultScore));
        return new TransformerChain<ITransformer>(scorer, tail.Fit(scored));
    }
}
