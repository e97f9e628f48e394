using MLTransfer.Techniques.DomainAdaptation;
using ScottPlot;
using SkiaSharp;

namespace MLTransfer.Cli.Rendering;

/// <summary>The domain-adaptation plot: PCA of source and target features before (raw backbone) and after adaptation (what the head reads), side by side.</summary>
public static class DomainPlots
{
    /// <summary>Writes the PNG and returns its path.</summary>
    /// <param name="result">The adaptation result with its feature samples.</param>
    /// <param name="path">PNG path.</param>
    public static string Projection(DomainAdaptationResult result, string path)
    {
        ArgumentNullException.ThrowIfNull(result);
        const int width = 560, height = 480;
        var before = Panel(FeatureProjection.Pca2(result.SourceBefore, result.TargetBefore), "Before: backbone features (PCA)", width, height);
        var after = Panel(FeatureProjection.Pca2(result.SourceAfter, result.TargetAfter), $"After {result.Method}: features the head reads (PCA)", width, height);
        using var surface = SKSurface.Create(new SKImageInfo(2 * width, height));
        surface.Canvas.Clear(SKColors.White);
        using (var left = SKBitmap.Decode(before))
            surface.Canvas.DrawBitmap(left, 0, 0);
        using (var right = SKBitmap.Decode(after))
            surface.Canvas.DrawBitmap(right, width, 0);
        using var image = surface.Snapshot();
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        AtomicFile.WriteAllBytes(path, png.ToArray());
        return path;
    }

    private static byte[] Panel((double X, double Y)[][] groups, string title, int width, int height)
    {
        var plot = new Plot();
        string[] names = ["source", "target"];
        for (var g = 0; g < groups.Length; g++)
        {
            var scatter = plot.Add.ScatterPoints(groups[g].Select(p => p.X).ToArray(), groups[g].Select(p => p.Y).ToArray());
            scatter.MarkerSize = 3;
            scatter.LegendText = names[g];
        }
        plot.Title(title);
        plot.ShowLegend();
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }
}
