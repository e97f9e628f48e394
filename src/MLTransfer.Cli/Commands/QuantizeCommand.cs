using System.ComponentModel;
using System.Text.Json;
using MLTransfer.Quantization;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MLTransfer.Cli.Commands;

/// <summary>Arguments of <c>mltransfer quantize</c>.</summary>
public sealed class QuantizeSettings : CalibrationSettings
{
    /// <summary>The float model.</summary>
    [CommandArgument(0, "<model>")]
    [Description("The MLTransfer .zip model to quantise.")]
    public string Model { get; set; } = "";

    /// <summary>Calibration images.</summary>
    [CommandOption("--calibration <FOLDER>")]
    [Description("Folder of images like the ones the model will see (searched recursively); a few hundred are spread over it to calibrate the activation ranges.")]
    public string? Calibration { get; set; }

    /// <summary>The int8 model to write.</summary>
    [CommandOption("-o|--output <FILE>")]
    [Description("The int8 .zip to write (atomically).")]
    public string? Output { get; set; }

    /// <summary>Most calibration images.</summary>
    [CommandOption("--calibration-images <N>")]
    [Description("Most calibration images to run. Default: 300.")]
    public int? CalibrationImages { get; set; }

    /// <summary>JSON output.</summary>
    [CommandOption("--json")]
    [Description("Print exactly one JSON object (the quantisation report) on stdout.")]
    public bool Json { get; set; }

    /// <inheritdoc />
    public override ValidationResult Validate()
    {
        if (string.IsNullOrWhiteSpace(Calibration))
            return ValidationResult.Error("--calibration <folder> is required: images to calibrate the int8 activation ranges on.");
        if (string.IsNullOrWhiteSpace(Output))
            return ValidationResult.Error("--output <model-int8.zip> is required.");
        if (CalibrationImages is < 1)
            return ValidationResult.Error("--calibration-images must be at least 1.");
        return base.Validate();
    }
}

/// <summary>
/// <c>mltransfer quantize &lt;model.zip&gt; --calibration &lt;folder&gt; --output &lt;model-int8.zip&gt;</c>: static int8 QDQ
/// quantisation of the model's backbone (<see cref="ModelQuantizer"/>); the result still loads with ML.NET packages only.
/// </summary>
public sealed class QuantizeCommand : Command<QuantizeSettings>
{
    /// <inheritdoc />
    public override int Execute(CommandContext context, QuantizeSettings settings, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(settings.Calibration))
            throw new DirectoryNotFoundException($"Calibration folder '{settings.Calibration}' does not exist.");
        var options = settings.ToQuantizationOptions();
        options.CalibrationFolder = settings.Calibration;
        if (settings.CalibrationImages is { } count)
            options.MaxCalibrationImages = count;
        var console = CliApp.Ui(settings.Json);
        ModelQuantizationReport report = null!;
        console.Progress().AutoClear(true).Start(progress =>
        {
            var task = progress.AddTask("calibrating");
            report = ModelQuantizer.Quantize(settings.Model, settings.Output!, options, new Progress<(int Done, int Total)>(p =>
            {
                task.MaxValue = p.Total;
                task.Value = p.Done;
            }));
        });
        if (settings.Json)
            Console.Out.WriteLine(JsonSerializer.Serialize(report, JsonOptions));
        var summary = report.Graphs[0];
        console.MarkupLine(
            $"Quantised [bold]{summary.QuantizedConvolutions}[/] convolutions (int8 per-channel weights, {summary.QuantizedTensors} uint8 activation tensors, " +
            $"opset {summary.SourceOpset} → {QdqQuantizer.Opset}), calibrated on {summary.CalibrationImages:N0} images" +
            (summary.RejectedCalibrationImages > 0 ? $" ({summary.RejectedCalibrationImages:N0} unreadable skipped)" : "") +
            (summary.FloatConvolutions.Count > 0 ? $"; kept float: {Markup.Escape(string.Join(", ", summary.FloatConvolutions))}" : "") +
            $" → [green]{Markup.Escape(report.OutputPath)}[/] ({Mib(report.OutputBytes)} MiB, was {Mib(report.InputBytes)} MiB)");
        return 0;
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    private static string Mib(long bytes) => (bytes / (1024.0 * 1024.0)).ToString("0.0");
}
