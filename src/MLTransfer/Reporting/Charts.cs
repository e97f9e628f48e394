using MLTransfer.Evaluation;
using MLTransfer.Techniques;
using ScottPlot;
using SkiaSharp;

namespace MLTransfer.Reporting;

/// <summary>The charts MLTransfer draws (with ScottPlot), as PNG bytes: written next to a model and embedded in its HTML report.</summary>
public static class Charts
{
    /// <summary>Heat map of the confusion matrix, normalised per true class.</summary>
    /// <param name="report">The metrics.</param>
    /// <param name="width">Width in pixels. The default value is 640.</param>
    /// <param name="height">Height in pixels. The default value is 560.</param>
    public static byte[] ConfusionMatrix(ClassificationReport report, int width = 640, int height = 560)
    {
        ArgumentNullException.ThrowIfNull(report);
        var k = report.Classes.Count;
        var values = new double[k, k];
        for (var i = 0; i < k; i++)
        {
            var total = Math.Max(1, report.ConfusionMatrix[i].Sum());
            for (var j = 0; j < k; j++)
                values[i, j] = (double)report.ConfusionMatrix[i][j] / total;
        }
        var plot = new Plot();
        var heatmap = plot.Add.Heatmap(values);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        plot.Add.ColorBar(heatmap);
        var ticks = Enumerable.Range(0, k).Select(i => new Tick(i, report.Classes[i])).ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks);
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, k).Select(i => new Tick(k - 1 - i, report.Classes[i])).ToArray());
        plot.Title($"Confusion matrix (accuracy {report.MicroAccuracy:P1})");
        plot.XLabel("Predicted class");
        plot.YLabel("True class");
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }

    /// <summary>Loss and accuracy per epoch, train and validation (where recorded), in one chart.</summary>
    /// <param name="history">Epoch metrics.</param>
    /// <param name="width">Width in pixels. The default value is 720.</param>
    /// <param name="height">Height in pixels. The default value is 420.</param>
    public static byte[] History(IReadOnlyList<EpochMetrics> history, int width = 720, int height = 420)
    {
        ArgumentNullException.ThrowIfNull(history);
        var plot = new Plot();
        var epochs = history.Select(h => (double)h.Epoch + 1).ToArray();
        void Line(Func<EpochMetrics, double> value, string label)
        {
            if (history.Any(h => !double.IsNaN(value(h))))
                plot.Add.Scatter(epochs, history.Select(value).ToArray()).LegendText = label;
        }
        Line(h => h.TrainLoss, "train loss");
        Line(h => h.ValidationLoss, "validation loss");
        Line(h => h.TrainAccuracy, "train accuracy");
        Line(h => h.ValidationAccuracy, "validation accuracy");
        plot.ShowLegend();
        plot.Title("Training");
        plot.XLabel("Epoch");
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }

    /// <summary>Source and target features before (raw backbone) and after adaptation (what the head reads), side by side.</summary>
    /// <param name="projection">The two-dimensional projections.</param>
    /// <param name="panelWidth">Width of each panel in pixels. The default value is 560.</param>
    /// <param name="height">Height in pixels. The default value is 480.</param>
    public static byte[] DomainProjection(DomainProjection projection, int panelWidth = 560, int height = 480)
    {
        ArgumentNullException.ThrowIfNull(projection);
        var before = Panel(projection.Before, "Before: backbone features (PCA)", panelWidth, height);
        var after = Panel(projection.After, $"After {projection.Method}: features the head reads (PCA)", panelWidth, height);
        using var surface = SKSurface.Create(new SKImageInfo(2 * panelWidth, height));
        surface.Canvas.Clear(SKColors.White);
        using (var left = SKBitmap.Decode(before))
            surface.Canvas.DrawBitmap(left, 0, 0);
        using (var right = SKBitmap.Decode(after))
            surface.Canvas.DrawBitmap(right, panelWidth, 0);
        using var image = surface.Snapshot();
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        return png.ToArray();
    }

    private static byte[] Panel((double X, double Y)[][] groups, string title, int width, int height)
    {
        var plot = new Plot();
        string[] names = ["source", "target"];
        for (var g = 0; g < groups.Length; g++)
        {
            var scatter = plot.Add.ScatterPoints(groups[g].Select(p => p.X).ToArray(), groups[g].Select(p => p.Y).ToArray());
            scatter.MarkerSize = 3;
            scatter.LegendText = names[g % names.Length];
        }
        plot.Title(title);
        plot.ShowLegend();
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }
}
