using MLTransfer.Evaluation;
using MLTransfer.Techniques;
using ScottPlot;

namespace MLTransfer.Cli.Rendering;

/// <summary>PNG plots written next to a model with ScottPlot: confusion matrix and training curves.</summary>
public static class Plots
{
    /// <summary>Writes every plot the report supports; returns the files written.</summary>
    /// <param name="report">The training report.</param>
    /// <param name="modelPath">The model path; plots are named after it.</param>
    public static IReadOnlyList<string> WriteAll(TrainingReport report, string modelPath)
    {
        var written = new List<string>();
        var stem = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(modelPath))!, Path.GetFileNameWithoutExtension(modelPath));
        if (report.Validation is { } validation)
            written.Add(ConfusionMatrix(validation, stem + ".confusion.png"));
        if (report.History.Count > 0)
            written.Add(History(report.History, stem + ".history.png"));
        return written;
    }

    /// <summary>Heat map of the confusion matrix, normalised per true class.</summary>
    /// <param name="report">The metrics.</param>
    /// <param name="path">PNG path.</param>
    public static string ConfusionMatrix(ClassificationReport report, string path)
    {
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
        Save(plot, path, 640, 560);
        return path;
    }

    /// <summary>Loss and accuracy per epoch.</summary>
    /// <param name="history">Epoch metrics.</param>
    /// <param name="path">PNG path.</param>
    public static string History(IReadOnlyList<EpochMetrics> history, string path)
    {
        var plot = new Plot();
        var epochs = history.Select(h => (double)h.Epoch + 1).ToArray();
        plot.Add.Scatter(epochs, history.Select(h => h.TrainLoss).ToArray()).LegendText = "train loss";
        plot.Add.Scatter(epochs, history.Select(h => h.TrainAccuracy).ToArray()).LegendText = "train accuracy";
        if (history.Any(h => !double.IsNaN(h.ValidationAccuracy)))
            plot.Add.Scatter(epochs, history.Select(h => h.ValidationAccuracy).ToArray()).LegendText = "validation accuracy";
        plot.ShowLegend();
        plot.Title("Training");
        plot.XLabel("Epoch");
        Save(plot, path, 720, 420);
        return path;
    }

    private static void Save(Plot plot, string path, int width, int height)
    {
        var bytes = plot.GetImageBytes(width, height, ImageFormat.Png);
        AtomicFile.WriteAllBytes(path, bytes);
    }
}
