using System.ComponentModel;
using MLTransfer.Featurization;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MLTransfer.Cli.Commands;

/// <summary>Engine tuning options: image size, batch size and decode threads.</summary>
public class EngineTuningSettings : CommandSettings
{
    /// <summary>Square image size; null means the backbone's native size.</summary>
    [CommandOption("--image-size <PIXELS>")]
    [Description("Square image size fed to the backbone, 16 to 2048 and a multiple of 32 (e.g. 160 or 128 to trade accuracy for speed). Default: the backbone's (224).")]
    public int? ImageSize { get; set; }

    /// <summary>Images per inference batch.</summary>
    [CommandOption("--batch-size <N>")]
    [Description("Images per inference batch. Default: 8.")]
    public int? BatchSize { get; set; }

    /// <summary>Decode threads.</summary>
    [CommandOption("--decode-threads <N>")]
    [Description("Threads decoding images while inference runs. Default: one per two cores.")]
    public int? DecodeThreads { get; set; }

    /// <summary>Inference threads.</summary>
    [CommandOption("--inference-threads <N>")]
    [Description("Batches run at the same time on the shared session. Default: 2 on two or more cores.")]
    public int? InferenceThreads { get; set; }

    /// <summary>Runs the plain fused graph instead of the engine's optimised copy.</summary>
    [CommandOption("--plain-graph")]
    [Description("Run the plain fused graph instead of the optimised copy (Winograd convolutions, folded normalisation); features then equal the exported model's bit for bit, about 7 % slower end to end at 224 px (measured).")]
    public bool PlainGraph { get; set; }

    /// <inheritdoc />
    public override ValidationResult Validate() => Check.First(
        Check.AtLeast("--inference-threads", InferenceThreads, 1),
        Check.ImageSize(ImageSize),
        Check.AtLeast("--batch-size", BatchSize, 1),
        Check.AtLeast("--decode-threads", DecodeThreads, 1));

    /// <summary>The engine options these settings describe (cache on, default folder).</summary>
    public virtual FeaturizerOptions ToOptions()
    {
        var options = new FeaturizerOptions { ImageSize = ImageSize, OptimizeGraph = !PlainGraph };
        if (BatchSize is { } batch)
            options.BatchSize = batch;
        if (DecodeThreads is { } threads)
            options.DecodeThreads = threads;
        if (InferenceThreads is { } inference)
            options.InferenceThreads = inference;
        return options;
    }
}

/// <summary>Options every command that featurises images shares: backbone, cache and engine tuning.</summary>
public class FeaturizerSettings : EngineTuningSettings
{
    /// <summary>Backbone name or spec file.</summary>
    [CommandOption("--backbone <NAME|SPEC>")]
    [Description("Backbone: 'resnet18' or the path of a backbone spec (.json). Default: resnet18.")]
    public string Backbone { get; set; } = "resnet18";

    /// <summary>Bottleneck cache folder.</summary>
    [CommandOption("--cache-dir <DIR>")]
    [Description("Cache folder (features, and fused graphs in its graphs/ sub-folder). Default: $MLTRANSFER_CACHE_DIR, else ~/.cache/mltransfer. An unusable folder stops the run before any work.")]
    public string? CacheDirectory { get; set; }

    /// <summary>Disables the bottleneck cache.</summary>
    [CommandOption("--no-cache")]
    [Description("Neither read nor write the bottleneck cache.")]
    public bool NoCache { get; set; }

    /// <inheritdoc />
    public override ValidationResult Validate()
    {
        var engine = base.Validate();
        return engine.Successful ? Check.First(Check.Backbone(Backbone)) : engine;
    }

    /// <inheritdoc />
    public override FeaturizerOptions ToOptions()
    {
        var options = base.ToOptions();
        options.CacheDirectory = CacheDirectory;
        options.UseCache = !NoCache;
        return options;
    }
}
