using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Trainers;

namespace MLTransfer.Heads;

/// <summary>
/// A trained linear softmax head: <c>Score = softmax(W·features + b)</c>. MLTransfer trains such heads itself
/// (image-classification head, fine-tuning, domain adaptation, multi-task) and turns them into ML.NET's own
/// <see cref="MaximumEntropyModelParameters"/> scored by ML.NET's multiclass scorer, so the exported model
/// contains nothing but ML.NET types and loads with a bare <see cref="MLContext"/>.
/// </summary>
public sealed class LinearHead
{
    /// <summary>Creates a head.</summary>
    /// <param name="weights">One row of <c>FeatureSize</c> weights per class.</param>
    /// <param name="bias">One bias per class.</param>
    /// <param name="classes">Class names, in the order of <paramref name="weights"/>.</param>
    public LinearHead(float[][] weights, float[] bias, IReadOnlyList<string> classes)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(bias);
        ArgumentNullException.ThrowIfNull(classes);
        if (weights.Length != classes.Count || bias.Length != classes.Count)
            throw new ArgumentException($"Head shape mismatch: {weights.Length} weight rows, {bias.Length} biases, {classes.Count} classes.");
        if (classes.Count < 2)
            throw new ArgumentException("A classification head needs at least 2 classes.");
        FeatureSize = weights[0].Length;
        if (weights.Any(w => w.Length != FeatureSize))
            throw new ArgumentException("All weight rows must have the same length.");
        Weights = weights;
        Bias = bias;
        Classes = classes;
    }

    private const string DefaultScore = "Score";
    private const string DefaultPredictedLabel = "PredictedLabel";

    /// <summary>Weights, [classes][features].</summary>
    public float[][] Weights { get; }

    /// <summary>Biases, one per class.</summary>
    public float[] Bias { get; }

    /// <summary>Class names.</summary>
    public IReadOnlyList<string> Classes { get; }

    /// <summary>Length of the feature vector.</summary>
    public int FeatureSize { get; }

    /// <summary>Class probabilities for one feature vector (a numerically stable softmax).</summary>
    /// <param name="features">The feature vector.</param>
    public float[] Predict(ReadOnlySpan<float> features)
    {
        var logits = new double[Classes.Count];
        for (var k = 0; k < logits.Length; k++)
        {
            double sum = Bias[k];
            var row = Weights[k];
            for (var j = 0; j < FeatureSize; j++)
                sum += row[j] * features[j];
            logits[k] = sum;
        }
        var max = logits.Max();
        var total = 0.0;
        for (var k = 0; k < logits.Length; k++)
            total += logits[k] = Math.Exp(logits[k] - max);
        return logits.Select(v => (float)(v / total)).ToArray();
    }

    /// <summary>Share of vectors whose arg-max class is the label.</summary>
    /// <param name="features">Vectors.</param>
    /// <param name="labels">Class index of each vector.</param>
    public double Accuracy(IReadOnlyList<float[]> features, IReadOnlyList<int> labels)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(labels);
        var correct = 0;
        for (var i = 0; i < features.Count; i++)
        {
            var p = Predict(features[i]);
            if (Array.IndexOf(p, p.Max()) == labels[i])
                correct++;
        }
        return features.Count == 0 ? double.NaN : (double)correct / features.Count;
    }

    /// <summary>
    /// Builds the ML.NET transformers that score this head on a feature column: ML.NET's multiclass scorer over
    /// <see cref="MaximumEntropyModelParameters"/>, producing <paramref name="scoreColumn"/> (probabilities) and
    /// <paramref name="predictedLabelColumn"/> (the class name as text).
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="featureColumn">Name of the feature vector column.</param>
    /// <param name="scoreColumn">Name of the output probability column. The default value is <c>Score</c>.</param>
    /// <param name="predictedLabelColumn">Name of the output label column. The default value is <c>PredictedLabel</c>.</param>
    public ITransformer ToMLNet(MLContext mlContext, string featureColumn, string scoreColumn = "Score", string predictedLabelColumn = "PredictedLabel")
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        var env = (IHostEnvironment)mlContext;
        var labelColumn = "__MLTransferLabel_" + predictedLabelColumn;
        var schemaView = LabelSchemaView(mlContext, featureColumn, labelColumn);
        var weights = Weights.Select(w => new VBuffer<float>(w.Length, (float[])w.Clone())).ToArray();
        var parameters = (MaximumEntropyModelParameters)Create(typeof(MaximumEntropyModelParameters),
            env, weights, (float[])Bias.Clone(), Classes.Count, FeatureSize, Classes.ToArray(), null);
        var scorer = (ITransformer)Create(typeof(MulticlassPredictionTransformer<MaximumEntropyModelParameters>),
            env, parameters, schemaView.Schema, featureColumn, labelColumn, DefaultScore, DefaultPredictedLabel);
        var scored = scorer.Transform(schemaView);
        IEstimator<ITransformer> tail = mlContext.Transforms.Conversion.MapKeyToValue(predictedLabelColumn, DefaultPredictedLabel);
        if (scoreColumn != DefaultScore)
            tail = tail.Append(mlContext.Transforms.CopyColumns(scoreColumn, DefaultScore));
        if (scoreColumn != DefaultScore || predictedLabelColumn != DefaultPredictedLabel)
        {
            var drop = new[] { DefaultScore, DefaultPredictedLabel }.Where(c => c != scoreColumn && c != predictedLabelColumn).ToArray();
            tail = tail.Append(mlContext.Transforms.DropColumns(drop));
        }
        return new TransformerChain<ITransformer>(scorer, tail.Fit(scored));
    }

    private IDataView LabelSchemaView(MLContext mlContext, string featureColumn, string labelColumn)
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumn(featureColumn, Export.ImagePipeline.FeatureType(FeatureSize));
        builder.AddColumn(labelColumn, TextDataViewType.Instance);
        var rows = Classes.Select(c => (new float[FeatureSize], c)).ToList();
        var view = new InMemoryRows(builder.ToSchema(), rows);
        return mlContext.Transforms.Conversion.MapValueToKey(labelColumn, labelColumn, keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByOccurrence)
            .Fit(view).Transform(view);
    }

    /// <summary>Calls the (non-public) constructor of an ML.NET type whose parameters accept <paramref name="args"/>.</summary>
    internal static object Create(Type type, params object?[] args)
    {
        var ctor = type.GetConstructors(BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public)
            .FirstOrDefault(c => c.GetParameters().Length == args.Length && c.GetParameters()[1].ParameterType.Name != "ModelLoadContext"
                && c.GetParameters().Zip(args).All(p => p.Second is null || p.First.ParameterType.IsInstanceOfType(p.Second)
                    || (p.First.ParameterType.IsByRef && p.First.ParameterType.GetElementType()!.IsInstanceOfType(p.Second))))
            ?? throw new MissingMethodException(
                $"This version of ML.NET has no usable constructor for {type.Name}; MLTransfer supports Microsoft.ML 6.0.");
        try
        {
            return ctor.Invoke(args);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            throw e.InnerException;
        }
    }
}
