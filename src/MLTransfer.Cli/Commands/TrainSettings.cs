using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MLTransfer.Cli.Commands;

/// <summary>Arguments of <c>mltransfer train</c>. Technique-specific options are ignored by other techniques.</summary>
public sealed class TrainSettings : CommonSettings, IFineTuningSettings
{
    /// <summary>Folder with one sub-folder per class (for multi-task: optional when --manifest is given).</summary>
    [CommandArgument(0, "[folder]")]
    [Description("Folder of training images, one sub-folder per class.")]
    public string? Folder { get; set; }

    /// <summary>A folder of featurised Parquet parts to train on instead of images.</summary>
    [CommandOption("--features <DIR>")]
    [Description("Feature extraction: train the head on the output folder of 'featurize --redis' (same split and seed give the same model as training on the image folder).")]
    public string? Features { get; set; }

    /// <summary>The technique.</summary>
    [CommandOption("-t|--technique")]
    [Description("feature-extraction (default), fine-tuning, domain-adaptation, multi-task or multi-task-fine-tuning.")]
    [DefaultValue("feature-extraction")]
    public string Technique { get; set; } = "feature-extraction";

    /// <summary>Where the .zip goes.</summary>
    [CommandOption("-o|--output")]
    [Description("Path of the ML.NET .zip to write. Default: models/model.zip.")]
    [DefaultValue("models/model.zip")]
    public string Output { get; set; } = "models/model.zip";

    /// <summary>Backbone name or spec file.</summary>
    [CommandOption("--backbone")]
    [Description("resnet18 (default) or the path of a backbone spec .json.")]
    [DefaultValue("resnet18")]
    public string Backbone { get; set; } = "resnet18";

    /// <summary>Head kind for feature extraction.</summary>
    [CommandOption("--head")]
    [Description("lbfgs (default), sdca, lightgbm or image-classification.")]
    [DefaultValue("lbfgs")]
    public string Head { get; set; } = "lbfgs";

    /// <summary>L2 of the L-BFGS head.</summary>
    [CommandOption("--head-l2")]
    [Description("Feature extraction with the lbfgs head: its L2 regularisation, a number (ML.NET's default is 1) or auto (default: chosen among 0.1, 1, 10, 100, 1000 on a held-out fifth of the training images).")]
    [DefaultValue("auto")]
    public string HeadL2 { get; set; } = "auto";

    /// <summary>The value of <c>--head-l2</c>: null for auto.</summary>
    public float? HeadL2Value => HeadL2.Equals("auto", StringComparison.OrdinalIgnoreCase) ? null
        : float.Parse(HeadL2, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Validation share.</summary>
    [CommandOption("--validation-fraction")]
    [Description("Share of each class held out for validation metrics. Default 0.1.")]
    [DefaultValue(0.1)]
    public double ValidationFraction { get; set; } = 0.1;

    /// <summary>Explicit validation folder.</summary>
    [CommandOption("--validation")]
    [Description("A labelled folder used for validation instead of a split.")]
    public string? Validation { get; set; }

    /// <summary>Seed.</summary>
    [CommandOption("--seed")]
    [Description("Seed of splits, shuffles and initialisation. Default 0.")]
    [DefaultValue(0)]
    public int Seed { get; set; }

    /// <summary>Image size.</summary>
    [CommandOption("--image-size")]
    [Description("Square input size in pixels (default: the backbone's, 224 for resnet18).")]
    public int? ImageSize { get; set; }

    /// <summary>Feature extraction: the stage(s) whose pooled output the head is trained on.</summary>
    [CommandOption("--layer")]
    [Description("Feature extraction: backbone stage whose pooled output is the feature vector, e.g. layer2, layer3 or layer4 (several, comma-separated, are concatenated). Default: the backbone's output (layer4 for resnet18). 'mltransfer advise' ranks them.")]
    public string? Layer { get; set; }

    /// <summary>Feature extraction: train on the int8 backbone's features and save the int8 model.</summary>
    [CommandOption("--int8")]
    [Description("Feature extraction: featurise with the backbone quantised to int8 (static QDQ, calibrated on --calibration or on 300 of the training images), train the head on those features, and save the int8 .zip (still ML.NET-only).")]
    public bool Int8 { get; set; }

    /// <summary>Calibration images for --int8.</summary>
    [CommandOption("--calibration <FOLDER>")]
    [Description("With --int8: images to calibrate the activation ranges on. Default: the training folder.")]
    public string? Calibration { get; set; }

    /// <summary>Convolutions kept float with --int8.</summary>
    [CommandOption("--float-convs <N>")]
    [Description("With --int8: keep the N convolutions whose int8 version changes the features most in float (see 'mltransfer quantize'). Default: the quantiser's.")]
    public int? FloatConvolutions { get; set; }

    /// <summary>The int8 settings of <c>--int8</c>; null without it.</summary>
    public Quantization.QuantizationOptions? QuantizationOptions() => Int8
        ? new Quantization.QuantizationOptions
        {
            CalibrationFolder = Calibration ?? Folder,
            FloatConvolutions = FloatConvolutions ?? new Quantization.QuantizationOptions().FloatConvolutions,
        }
        : null;

    /// <summary>Cache folder.</summary>
    [CommandOption("--cache-dir")]
    [Description("Folder of the bottleneck (feature) cache.")]
    public string? CacheDir { get; set; }

    /// <summary>Disable the cache.</summary>
    [CommandOption("--no-cache")]
    [Description("Do not read or write the bottleneck cache.")]
    public bool NoCache { get; set; }

    /// <summary>Fail on unreadable images.</summary>
    [CommandOption("--strict")]
    [Description("Fail on the first unreadable image instead of reporting and skipping it.")]
    public bool Strict { get; set; }

    /// <summary>Epochs.</summary>
    [CommandOption("--epochs")]
    [Description("Epochs (image-classification head, fine-tuning, adversarial adaptation, multi-task).")]
    public int? Epochs { get; set; }

    /// <summary>Batch size.</summary>
    [CommandOption("--batch-size")]
    [Description("Images per gradient step.")]
    public int? BatchSize { get; set; }

    /// <summary>Learning rate.</summary>
    [CommandOption("--learning-rate")]
    [Description("Learning rate.")]
    public float? LearningRate { get; set; }

    // The fine-tuning options take it as a double (the value as parsed, widened).
    double? IFineTuningSettings.LearningRate => LearningRate;

    /// <summary>Fine-tuning: epochs with the backbone frozen before unfreezing.</summary>
    [CommandOption("--unfreeze-after")]
    [Description("Fine-tuning: epochs training the head only before the whole network is unfrozen.")]
    public int? UnfreezeAfter { get; set; }

    /// <summary>TorchSharp techniques: resume from the last checkpoint.</summary>
    [CommandOption("--resume")]
    [Description("fine-tuning, multi-task-fine-tuning, dann/mmd/deep-coral: continue a killed run from its last checkpoint (<model>.checkpoints).")]
    public bool Resume { get; set; }

    /// <summary>Fine-tuning: train only the top blocks on cached lower-block outputs (the default).</summary>
    [CommandOption("--top-blocks-only")]
    [Description("Fine-tuning: freeze the lower blocks and cache their outputs (fast on CPUs). This is the default; the flag only makes it explicit.")]
    public bool TopBlocksOnly { get; set; }

    /// <summary>Fine-tuning: train the whole network.</summary>
    [CommandOption("--whole-network")]
    [Description("Fine-tuning: train every block on images streamed from their files each epoch, instead of the top blocks on cached lower-block outputs.")]
    public bool WholeNetwork { get; set; }

    /// <summary>Fine-tuning: views per image cached in top-blocks mode.</summary>
    [CommandOption("--top-block-views")]
    [Description("Fine-tuning in top-blocks mode: cached views per training image, the exact one and N-1 augmented ones (default 3; 1: no augmentation).")]
    public int? TopBlockViews { get; set; }

    /// <summary>Fine-tuning: mirror images of the cached views in top-blocks mode.</summary>
    [CommandOption("--top-block-mirrors")]
    [Description("Fine-tuning in top-blocks mode: also cache the mirror image of every view, so each epoch trains on an image or its left-right mirror (twice the caching, same epoch cost; default off).")]
    public bool TopBlockMirrors { get; set; }

    /// <summary>Fine-tuning: mixup's α.</summary>
    [CommandOption("--mixup")]
    [Description("Fine-tuning: mixup α (Zhang et al. 2018) of each training batch; on the cached lower-block outputs in top-blocks mode (manifold mixup). 0 (default): off; 0.2-0.4 is usual.")]
    public double? Mixup { get; set; }

    /// <summary>Fine-tuning: CutMix's α.</summary>
    [CommandOption("--cutmix")]
    [Description("Fine-tuning: CutMix α (Yun et al. 2019) of each training batch (images, or cached feature maps in top-blocks mode). 0 (default): off; 1 is usual. With --mixup, each batch uses one of the two.")]
    public double? CutMix { get; set; }

    /// <summary>Fine-tuning: weight decay.</summary>
    [CommandOption("--weight-decay")]
    [Description("Fine-tuning: weight decay (decoupled, AdamW). Default 0.0001.")]
    public double? WeightDecay { get; set; }

    /// <summary>Fine-tuning: the decay of the weights' moving average.</summary>
    [CommandOption("--ema-decay")]
    [Description("Fine-tuning: keep an exponential moving average of the weights with this per-step decay (e.g. 0.998) and validate and export the average. 0 (default): off.")]
    public double? EmaDecay { get; set; }

    /// <summary>Fine-tuning: horizontal-flip test-time augmentation in the exported model.</summary>
    [CommandOption("--test-time-flip")]
    [Description("Fine-tuning: the exported model averages the features of each image and of its mirror image (usually a little more accurate, twice the prediction cost).")]
    public bool TestTimeFlip { get; set; }

    /// <summary>Fine-tuning: networks trained and averaged.</summary>
    [CommandOption("--ensemble")]
    [Description("Fine-tuning: train N networks with different seeds on the same split (in top-blocks mode on the same cached lower blocks) and average their logits; N times the training, the shared lower blocks run once when predicting. Default 1.")]
    public int? Ensemble { get; set; }

    /// <summary>Fine-tuning: each ensemble member holds out its own validation fold.</summary>
    [CommandOption("--ensemble-folds")]
    [Description("Fine-tuning with --ensemble N: each member holds out its own fold of --validation-fraction (cross-validation bagging), so together they train on every image; the validation report is out-of-fold.")]
    public bool EnsembleFolds { get; set; }

    /// <summary>Domain adaptation: unlabelled target folder.</summary>
    [CommandOption("--target")]
    [Description("Domain adaptation: folder of unlabelled target-domain images (sub-folders allowed, labels ignored).")]
    public string? Target { get; set; }

    /// <summary>Domain adaptation: method.</summary>
    [CommandOption("--method")]
    [Description("Domain adaptation: coral (default), adabn, dann, mmd, deep-coral or source-only.")]
    [DefaultValue("coral")]
    public string Method { get; set; } = "coral";

    /// <summary>Domain adaptation: trained backbone blocks of the gradient methods.</summary>
    [CommandOption("--trained-backbone-blocks")]
    [Description("Domain adaptation, dann/mmd/deep-coral: top residual blocks of the backbone trained with the adaptation loss (0 = bottleneck on frozen features). Default 0.")]
    public int? TrainedBackboneBlocks { get; set; }

    /// <summary>Domain adaptation: labelled target test folder for the report only.</summary>
    [CommandOption("--target-test")]
    [Description("Domain adaptation: labelled target folder, used only for the final report.")]
    public string? TargetTest { get; set; }

    /// <summary>Multi-task: manifest CSV.</summary>
    [CommandOption("--manifest")]
    [Description("Multi-task: CSV with columns path,<task1>,<task2>,... (paths relative to the CSV).")]
    public string? Manifest { get; set; }

    /// <summary>Multi-task: tasks.</summary>
    [CommandOption("--tasks")]
    [Description("Multi-task: comma-separated task columns to learn (default: all); add :regression or :classification to declare a kind, e.g. gender,age:regression (otherwise inferred).")]
    public string? Tasks { get; set; }

    /// <summary>Multi-task fine-tuning: loss weighting.</summary>
    [CommandOption("--loss-weighting")]
    [Description("Multi-task fine-tuning: uncertainty (default; Kendall et al. 2018), equal, fixed (with --task-weights) or gradnorm (Chen et al. 2018).")]
    [DefaultValue("uncertainty")]
    public string LossWeighting { get; set; } = "uncertainty";

    /// <summary>Multi-task fine-tuning: fixed task weights.</summary>
    [CommandOption("--task-weights")]
    [Description("Multi-task fine-tuning: fixed loss weights, e.g. gender=1,age=0.5 (others 1).")]
    public string? TaskWeights { get; set; }

    /// <summary>Multi-task fine-tuning: gradient balancing.</summary>
    [CommandOption("--gradient-balancing")]
    [Description("Multi-task fine-tuning: none (default) or pcgrad (Yu et al. 2020).")]
    [DefaultValue("none")]
    public string GradientBalancing { get; set; } = "none";

    /// <summary>Replace an existing output that is not an MLTransfer model.</summary>
    [CommandOption("--force")]
    [Description("Replace an existing --output (or plot) file even when it is not an MLTransfer model (or PNG).")]
    public bool Force { get; set; }

    /// <summary>Write plots.</summary>
    [CommandOption("--no-plots")]
    [Description("Do not write the confusion-matrix and training-curve PNGs next to the model.")]
    public bool NoPlots { get; set; }

    /// <summary>Skip the HTML report.</summary>
    [CommandOption("--no-report")]
    [Description("Do not write the self-contained HTML report <model>.report.html.")]
    public bool NoReport { get; set; }

    /// <summary>Images the runner's folder or manifest reading rejected (not an option: filled while training, listed in the report).</summary>
    internal List<Data.RejectedImage> SkippedImages { get; } = [];

    /// <summary>The techniques <c>--technique</c> takes.</summary>
    public static readonly string[] Techniques = ["feature-extraction", "fine-tuning", "domain-adaptation", "multi-task", "multi-task-fine-tuning"];

    /// <inheritdoc />
    public override ValidationResult Validate()
    {
        var technique = Technique.ToLowerInvariant();
        return Check.First(
            Check.OneOf("--technique", Technique, Techniques),
            technique switch
            {
                "feature-extraction" => Check.OneOf("--head", Head, ["lbfgs", "lbfgs-maximum-entropy", "sdca", "sdca-maximum-entropy", "lightgbm", "image-classification"]),
                "multi-task" => Check.OneOf("--head", Head, ["lbfgs", "lbfgs-maximum-entropy", "image-classification", "softmax"]),
                _ => null,
            },
            technique == "domain-adaptation" ? Check.OneOf("--method", Method, ["coral", "adabn", "dann", "mmd", "deep-coral", "source-only"]) : null,
            technique == "domain-adaptation" && Target is null ? "Domain adaptation needs --target <folder of unlabelled target-domain images>." : null,
            technique == "multi-task-fine-tuning" ? Check.OneOf("--loss-weighting", LossWeighting, ["uncertainty", "equal", "fixed", "gradnorm"]) : null,
            technique == "multi-task-fine-tuning" ? Check.OneOf("--gradient-balancing", GradientBalancing, ["none", "pcgrad"]) : null,
            Folder is null && Manifest is null && Features is null ? "Give the training folder (or --manifest for multi-task, or --features for featurised parts)." : null,
            Int8 && (technique != "feature-extraction" || Features is not null) ? "--int8 is an option of --technique feature-extraction on an image folder." : null,
            !Int8 && (Calibration is not null || FloatConvolutions is not null) ? "--calibration and --float-convs need --int8." : null,
            Calibration is not null && !Directory.Exists(Calibration) ? $"Calibration folder '{Calibration}' does not exist." : null,
            Check.AtLeast("--float-convs", FloatConvolutions, 0),
            WholeNetwork && TopBlocksOnly ? "--whole-network and --top-blocks-only exclude each other." : null,
            ((Mixup ?? CutMix ?? WeightDecay ?? EmaDecay) is not null || Ensemble is not null || TestTimeFlip || TopBlockMirrors) && technique != "fine-tuning" ? $"--mixup, --cutmix, --weight-decay, --ema-decay, --ensemble, --test-time-flip and --top-block-mirrors are options of --technique fine-tuning, not {Technique}." : null,
            FineTuningSettings.Problem(this),
            EnsembleFolds && Validation is not null ? "--ensemble-folds holds out each member's own fold of the training images; drop --validation." : null,
            EnsembleFolds && ValidationFraction <= 0 ? "--ensemble-folds needs a --validation-fraction above 0." : null,
            HeadL2.Equals("auto", StringComparison.OrdinalIgnoreCase)
                || float.TryParse(HeadL2, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var l2) && float.IsFinite(l2) && l2 >= 0
                ? null : $"--head-l2 must be auto or a number of at least 0 (got {HeadL2}).",
            Layer is not null && technique != "feature-extraction" ? $"--layer is an option of --technique feature-extraction, not {Technique}." : null,
            Check.Extension("--output", Output, Export.ModelFile.Extension),
            Check.Backbone(Backbone),
            Check.Fraction("--validation-fraction", ValidationFraction),
            Check.ImageSize(ImageSize),
            Check.AtLeast("--epochs", Epochs, 1),
            Check.AtLeast("--batch-size", BatchSize, 1),
            Check.PositiveFinite("--learning-rate", LearningRate),
            Check.AtLeast("--unfreeze-after", UnfreezeAfter, 0),
            Check.AtLeast("--trained-backbone-blocks", TrainedBackboneBlocks, 0),
            TaskWeights is null ? null : Check.TaskWeights(TaskWeights));
    }
}
