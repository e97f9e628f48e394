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

    /// <summary>Loss (left) and accuracy (right) per epoch, train and validation where recorded.</summary>
    /// <param name="history">Epoch metrics.</param>
    /// <param name="width">Width in pixels. The default value is 960.</param>
    /// <param name="height">Height in pixels. The default value is 400.</param>
    public static byte[] History(IReadOnlyList<EpochMetrics> history, int width = 960, int height = 400)
    {
        ArgumentNullException.ThrowIfNull(history);
        var epochs = history.Select(h => (double)h.Epoch + 1).ToArray();
        byte[] Panel(string title, (Func<EpochMetrics, double> Value, string Label)[] lines)
        {
            var plot = new Plot();
            foreach (var (value, label) in lines)
                if (history.Any(h => !double.IsNaN(value(h))))
                    plot.Add.Scatter(epochs, history.Select(value).ToArray()).LegendText = label;
            plot.ShowLegend();
            plot.Title(title);
            plot.XLabel("Epoch");
            return plot.GetImageBytes(width / 2, height, ImageFormat.Png);
        }
        return SideBySide(
            Panel("Loss", [(h => h.TrainLoss, "train"), (h => h.ValidationLoss, "validation")]),
            Panel("Accuracy", [(h => h.TrainAccuracy, "train"), (h => h.ValidationAccuracy, "validation")]),
            width / 2, height);
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
        return SideBySide(before, after, panelWidth, height);
    }

    private static byte[] SideBySide(byte[] leftPng, byte[] rightPng, int panelWidth, int height)
    {
        using var surface = SKSurface.Create(new SKImageInfo(2 * panelWidth, height));
        surface.Canvas.Clear(SKColors.White);
        using (var left = SKBitmap.Decode(leftPng))
            surface.Canvas.DrawBitmap(left, 0, 0);
        using (var right = SKBitmap.Decode(rightPng))
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
