using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using MLTransfer.Export;

namespace MLTransfer.Torch.FineTuning;

/// <summary>
/// Decodes image files into RGB planar floats in 0–255 ([3, size, size], R plane first) with exactly the ML.NET
/// chain an exported model runs at prediction time (LoadImages → ResizeImages with its default iso-crop →
/// ExtractPixels with its defaults), so fine-tuning sees the same pixels as the exported <c>.zip</c>.
/// </summary>
public static class ImagePixelReader
{
    /// <summary>Reads each file in <paramref name="paths"/> as a square image of side <paramref name="size"/>.</summary>
    /// <param name="paths">Image files (any format ML.NET's LoadImages reads).</param>
    /// <param name="size">The side, in pixels, after resizing.</param>
    /// <returns>One array of length 3·size·size per path, in the same order.</returns>
    public static float[][] Read(IReadOnlyList<string> paths, int size)
    {
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        var ml = new MLContext(seed: 0);
        IDataView input = ml.Data.LoadFromEnumerable(paths.Select(p => new ImageRow { ImagePath = Path.GetFullPath(p) }));
        // The same transforms, with the same settings, as the exported chain (MLTransfer.Export.ImagePipeline).
        var pipeline = ml.Transforms.LoadImages(ImagePipeline.ImageColumn, imageFolder: null, inputColumnName: nameof(ImageRow.ImagePath))
            .Append(ml.Transforms.ResizeImages(ImagePipeline.ImageColumn, size, size, ImagePipeline.ImageColumn, ImageResizingEstimator.ResizingKind.IsoCrop, ImageResizingEstimator.Anchor.Center))
            .Append(ml.Transforms.ExtractPixels(
                ImagePipeline.PixelsColumn,
                ImagePipeline.ImageColumn,
                ImagePixelExtractingEstimator.ColorBits.Rgb,
                ImagePixelExtractingEstimator.ColorsOrder.ARGB,
                interleavePixelColors: false,
                scaleImage: 1f,
                offsetImage: 0f,
                outputAsFloatArray: true));
        IDataView output = pipeline.Fit(input).Transform(input);

        var result = new float[paths.Count][];
        var column = output.Schema[ImagePipeline.PixelsColumn];
        using var cursor = output.GetRowCursor([column]);
        var getter = cursor.GetGetter<VBuffer<float>>(column);
        VBuffer<float> buffer = default;
        int row = 0;
        while (cursor.MoveNext())
        {
            getter(ref buffer);
            result[row++] = buffer.DenseValues().ToArray();
        }

        return result;
    }

    private sealed class ImageRow
    {
        public string ImagePath { get; set; } = string.Empty;
    }
}
