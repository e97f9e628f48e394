using Microsoft.ML;
using MLTransfer.Cli.Commands.Train;
using MLTransfer.Cli.Rendering;
using MLTransfer.Export;
using MLTransfer.IO;
using MLTransfer.Reporting;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MLTransfer.Cli.Commands;

/// <summary><c>mltransfer train</c>: trains with the chosen technique, saves the .zip atomically, prints metrics, writes plots and the HTML report.</summary>
public sealed class TrainCommand : Command<TrainSettings>
{
    /// <summary>Techniques the command knows, by name.</summary>
    public static IReadOnlyList<ITrainRunner> Runners { get; } =
        [new FeatureExtractionRunner(), new FineTuningRunner(), new DomainAdaptationRunner(), new MultiTaskRunner(), new MultiTaskFineTuningRunner()];

    /// <inheritdoc />
    public override int Execute(CommandContext context, TrainSettings settings, CancellationToken cancellationToken)
    {
        var console = CliApp.Ui(json: false);
        var runner = Runners.FirstOrDefault(r => string.Equals(r.Technique, settings.Technique, StringComparison.OrdinalIgnoreCase))
            ?? throw new UsageException($"Unknown technique '{settings.Technique}': use {string.Join(", ", Runners.Select(r => r.Technique))}.");
        if (settings.Features is not null && (settings.Folder is not null || runner is not FeatureExtractionRunner))
            throw new UsageException("--features trains feature extraction on featurised parts: give no image folder and no other technique.");
        var output = CheckOutputs(settings);
        RunnerSupport.CheckBeforeWork(settings);
        var skipped = RunnerSupport.CollectSkipped();
        var mlContext = new MLContext(seed: settings.Seed);
        using var model = runner.Train(settings, mlContext, console);
        if (settings.QuantizationOptions() is { } int8)
        {
            // The head was trained on the int8 engine's features; the saved graph gets the same quantisation.
            using var scratch = ScratchFolder.Create();
            var floatModel = Path.Combine(scratch.Path, "float.zip");
            ModelFile.Save(mlContext, model, floatModel);
            // The engine recorded its quantised graph in its graph folder: the saved graph is the same one, calibrated once.
            int8.GraphStoreDirectory = RunnerSupport.Engine(settings).EffectiveGraphDirectory;
            var quantized = Quantization.ModelQuantizer.Quantize(floatModel, output, int8);
            var reused = quantized.Graphs.All(g => g.Reused) ? ", the engine's quantised graph reused" : "";
            console.MarkupLineInterpolated($"[grey]int8: {quantized.Graphs.Sum(g => g.QuantizedConvolutions)} convolutions on int8 kernels, {quantized.CalibrationImages.Count} calibration images{reused}; {quantized.InputBytes / 1048576.0:0.0} → {quantized.OutputBytes / 1048576.0:0.0} MiB[/]");
        }
        else
            ModelFile.Save(mlContext, model, output);
        Reports.Summary(console, model.Report, output, skipped);
        if (model.Report.Validation is { } validation)
        {
            console.MarkupLine("[bold]Validation[/]");
            Reports.Metrics(console, validation);
        }
        if (!settings.NoPlots)
        {
            var written = Plots.WriteAll(model.Report, output, console);
            foreach (var file in written)
                console.MarkupLineInterpolated($"[grey]plot: {file}[/]");
        }
        if (!settings.NoReport)
        {
            var report = HtmlReport.PathFor(output);
            HtmlReport.Write(ModelReport.FromTraining(mlContext, model, settings.Output, rejected: settings.SkippedImages), report);
            console.MarkupLineInterpolated($"[grey]report: {report}[/]");
        }
        console.MarkupLineInterpolated($"[green]Saved[/] {output}");
        return 0;
    }

    /// <summary>
    /// Checks, before any work, the model path and every file the run writes beside it (plots, the standalone ONNX, the HTML report):
    /// see <see cref="ModelFile.CheckDestination"/>. Returns the model's full path.
    /// </summary>
    /// <param name="settings">Parsed settings.</param>
    public static string CheckOutputs(TrainSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var inputs = new List<ProtectedFolder>();
        void Protect(string role, string? folder)
        {
            if (folder is not null && Directory.Exists(folder))
                inputs.Add(new ProtectedFolder(role, folder));
        }
        Protect("training folder", settings.Folder);
        Protect("validation folder", settings.Validation);
        Protect("target folder", settings.Target);
        Protect("target test folder", settings.TargetTest);
        var output = ModelFile.CheckDestination(settings.Output, settings.Force, inputs, "add --force");
        if (!settings.NoPlots)
            foreach (var plot in new[] { ".confusion.png", ".history.png", ".domains.png" })
                Plots.CheckDestination(OutputFile.Companion(output, plot), settings.Force);
        OutputFile.Check(OutputFile.Companion(output, ".onnx"), new OutputFileRules
        {
            Kind = "ONNX model",
            IsReplaceable = OutputFile.IsOnnx,
            Overwrite = settings.Force,
            OverwriteHint = "add --force",
        });
        if (!settings.NoReport)
            OutputFile.Check(HtmlReport.PathFor(output), new OutputFileRules
            {
                Kind = "HTML report",
                IsReplaceable = HtmlReport.IsHtml,
                Overwrite = settings.Force,
                OverwriteHint = "add --force, or --no-report",
            });
        return output;
    }
}
