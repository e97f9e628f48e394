using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using MLTransfer.Backbones;

namespace MLTransfer.Export;

/// <summary>
/// The ML.NET-only front of every exported model: <c>ImagePath</c> → <c>LoadImages</c> → <c>ResizeImages</c>
/// (centre crop) → <c>ExtractPixels</c> (planar RGB, 0–255) → <c>ApplyOnnxModel</c> (the fused backbone graph).
/// </summary>
public static class ImagePipeline
{
    /// <summary>Name of the input column every exported model takes.</summary>
    public const string ImagePathColumn = "ImagePath";

    /// <summary>Name of the decoded image column.</summary>
    public const string ImageColumn = "Image";

    /// <summary>Name of the pixel column.</summary>
    public const string PixelsColumn = FeaturizerGraph.InputName;

    /// <summary>Name of the feature column the head reads.</summary>
    public const string FeaturesColumn = FeaturizerGraph.OutputName;

    /// <summary>Builds the estimator that decodes, resizes and featurises images with an ONNX graph.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="imageSize">Square size images are resized to; must match the graph's input.</param>
    /// <param name="onnxPath">A graph with input <see cref="FeaturizerGraph.InputName"/> [N,3,S,S] and the given outputs.</param>
    /// <param name="outputColumns">Graph outputs to expose as columns; null means <see cref="FeaturesColumn"/>.</param>
    public static IEstimator<ITransformer> Create(MLContext mlContext, int imageSize, string onnxPath, string[]? outputColumns = null)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        return mlContext.Transforms.LoadImages(ImageColumn, imageFolder: null, inputColumnName: ImagePathColumn)
            .Append(mlContext.Transforms.ResizeImages(ImageColumn, imageSize, imageSize, ImageColumn,
                ImageResizingEstimator.ResizingKind.IsoCrop, ImageResizingEstimator.Anchor.Center))
            .Append(mlContext.Transforms.ExtractPixels(PixelsColumn, ImageColumn,
                ImagePixelExtractingEstimator.ColorBits.Rgb, ImagePixelExtractingEstimator.ColorsOrder.ARGB,
                interleavePixelColors: false, scaleImage: 1f, offsetImage: 0f, outputAsFloatArray: true))
            .Append(mlContext.Transforms.ApplyOnnxModel(outputColumns ?? [FeaturesColumn], [PixelsColumn], onnxPath));
    }

    /// <summary>
    /// The type ML.NET gives a graph output [N,D] whose batch dimension N is dynamic (fed as 1): a [1,D] vector.
    /// Heads trained on in-memory features declare this same type, so they plug onto the ONNX output unchanged.
    /// </summary>
    /// <param name="size">D, the feature length.</param>
    public static VectorDataViewType FeatureType(int size) => new(NumberDataViewType.Single, 1, size);

    /// <summary>A one-row data view with an <see cref="ImagePathColumn"/>, for fitting transforms that need a schema.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="imagePath">Any readable image.</param>
    public static IDataView SampleInput(MLContext mlContext, string imagePath) =>
        mlContext.Data.LoadFromEnumerable([new ImagePathRow { ImagePath = imagePath }]);

    private sealed class ImagePathRow
    {
        public string ImagePath { get; set; } = "";
    }
}
