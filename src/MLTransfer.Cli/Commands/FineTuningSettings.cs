using MLTransfer.Torch.FineTuning;

namespace MLTransfer.Cli.Commands;

/// <summary>
/// The fine-tuning options that <c>mltransfer train --technique fine-tuning</c> and <c>mltransfer bench fine-tuning</c>
/// share: each command's settings declare them (with their own help text), and <see cref="FineTuningSettings"/> checks
/// them and turns them into <see cref="FineTuningOptions"/> once for both. A value left out (null) keeps the library's default.
/// </summary>
public interface IFineTuningSettings
{
    /// <summary><c>--image-size</c>.</summary>
    int? ImageSize { get; }

    /// <summary><c>--epochs</c>.</summary>
    int? Epochs { get; }

    /// <summary><c>--batch-size</c>.</summary>
    int? BatchSize { get; }

    /// <summary><c>--learning-rate</c>.</summary>
    double? LearningRate { get; }

    /// <summary><c>--unfreeze-after</c>.</summary>
    int? UnfreezeAfter { get; }

    /// <summary><c>--whole-network</c>.</summary>
    bool WholeNetwork { get; }

    /// <summary><c>--top-block-views</c>.</summary>
    int? TopBlockViews { get; }

    /// <summary><c>--top-block-mirrors</c>.</summary>
    bool TopBlockMirrors { get; }

    /// <summary><c>--mixup</c>.</summary>
    double? Mixup { get; }

    /// <summary><c>--cutmix</c>.</summary>
    double? CutMix { get; }

    /// <summary><c>--weight-decay</c>.</summary>
    double? WeightDecay { get; }

    /// <summary><c>--ema-decay</c>.</summary>
    double? EmaDecay { get; }

    /// <summary><c>--test-time-flip</c>.</summary>
    bool TestTimeFlip { get; }

    /// <summary><c>--ensemble</c>.</summary>
    int? Ensemble { get; }

    /// <summary><c>--ensemble-folds</c>.</summary>
    bool EnsembleFolds { get; }

    /// <summary><c>--cache-dir</c>.</summary>
    string? CacheDir { get; }

    /// <summary><c>--seed</c>.</summary>
    int Seed { get; }
}

/// <summary>Checks and converts <see cref="IFineTuningSettings"/>, the same way for every command that has them.</summary>
public static class FineTuningSettings
{
    /// <summary>The first problem of the regularisation, ensemble and top-blocks options (mixup, CutMix, weight decay, EMA, ensemble, folds, views, mirrors), or null.</summary>
    /// <param name="settings">Parsed settings.</param>
    public static string? Problem(IFineTuningSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return Check.NonNegativeFinite("--mixup", settings.Mixup)
            ?? Check.NonNegativeFinite("--cutmix", settings.CutMix)
            ?? Check.NonNegativeFinite("--weight-decay", settings.WeightDecay)
            ?? Check.Fraction("--ema-decay", settings.EmaDecay)
            ?? Check.AtLeast("--ensemble", settings.Ensemble, 1, FineTuningOptions.MaxEnsembleSize)
            ?? (settings.EnsembleFolds && settings.Ensemble is null or < 2 ? "--ensemble-folds needs --ensemble N with N of at least 2." : null)
            ?? (settings.TopBlockViews is not null && settings.WholeNetwork ? "--top-block-views needs top-blocks mode; drop --whole-network." : null)
            ?? (settings.TopBlockMirrors && settings.WholeNetwork ? "--top-block-mirrors needs top-blocks mode; drop --whole-network." : null);
    }

    /// <summary>
    /// The fine-tuning options these settings give: each one given replaces <see cref="FineTuningOptions"/>' default;
    /// the caller sets what only its command has (backbone, validation, checkpoints, callbacks...).
    /// </summary>
    /// <param name="settings">Parsed settings.</param>
    public static FineTuningOptions ToOptions(this IFineTuningSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var d = new FineTuningOptions();
        return new FineTuningOptions
        {
            ImageSize = settings.ImageSize ?? d.ImageSize,
            Epochs = settings.Epochs ?? d.Epochs,
            BatchSize = settings.BatchSize ?? d.BatchSize,
            LearningRate = settings.LearningRate ?? d.LearningRate,
            UnfreezeAfterEpochs = settings.UnfreezeAfter ?? d.UnfreezeAfterEpochs,
            TrainTopBlocksOnly = !settings.WholeNetwork,
            TopBlockViews = settings.TopBlockViews ?? d.TopBlockViews,
            TopBlockMirrors = settings.TopBlockMirrors,
            MixupAlpha = settings.Mixup ?? d.MixupAlpha,
            CutMixAlpha = settings.CutMix ?? d.CutMixAlpha,
            WeightDecay = settings.WeightDecay ?? d.WeightDecay,
            WeightAverageDecay = settings.EmaDecay ?? d.WeightAverageDecay,
            TestTimeFlip = settings.TestTimeFlip,
            EnsembleSize = settings.Ensemble ?? d.EnsembleSize,
            EnsembleFolds = settings.EnsembleFolds,
            CacheDirectory = settings.CacheDir,
            Seed = settings.Seed,
        };
    }
}
