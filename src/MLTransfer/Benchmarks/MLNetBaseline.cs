using Microsoft.ML;
using MLTransfer.Export;

namespace MLTransfer.Benchmarks;

/// <summary>
/// The plain ML.NET way of doing transfer learning on images, used as the baseline in benchmarks:
/// <c>LoadImages → ResizeImages(224) → ExtractPixels → DnnFeaturizeImage(ResNet18)</c>, then
/// <c>LbfgsMaximumEntropy</c> on the features.
/// </summary>
public static class MLNetBaseline
{
    /// <summary>Name of the baseline's feature column.</summary>
    public const string FeaturesColumn = "BaselineFeatures";

    /// <summary>The featurisation part of the baseline.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    public static IEstimator<ITransformer> Featurizer(MLContext mlContext)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        return mlContext.Transforms.LoadImages("BaselineImage", null, ImagePipeline.ImagePathColumn)
            .Append(mlContext.Transforms.ResizeImages("BaselineImage", 224, 224, "BaselineImage"))
            .Append(mlContext.Transforms.ExtractPixels("BaselinePixels", "BaselineImage"))
            .Append(mlContext.Transforms.DnnFeaturizeImage(FeaturesColumn,
                m => m.ModelSelector.ResNet18(mlContext, m.OutputColumn, m.InputColumn), "BaselinePixels"));
    }

    /// <summary>The whole baseline classifier; fit it on rows with <c>ImagePath</c> and <c>Label</c>.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    public static IEstimator<ITransformer> Classifier(MLContext mlContext) =>
        Featurizer(mlContext)
            .Append(mlContext.Transforms.Conversion.MapValueToKey("Label"))
            .Append(mlContext.MulticlassClassification.Trainers.LbfgsMaximumEntropy("Label", FeaturesColumn))
            .Append(mlContext.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
}
