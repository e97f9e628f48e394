using System.Globalization;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Torch.Streaming;
using MLTransfer.Torch.Training;
using TorchSharp;

namespace MLTransfer.Torch.FineTuning;

/// <summary>
/// Fine-tunes a pretrained image backbone (by default ResNet18, shipped by the Microsoft.ML.DnnImageFeaturizer.ResNet18
/// package) together with a new linear head, with TorchSharp on the CPU, through the shared <see cref="TrainingLoop"/>.
/// See <see cref="FineTuningOptions"/> for the recipe: gradual unfreezing and discriminative learning rates (Howard &amp;
/// Ruder 2018, "Universal Language Model Fine-tuning for Text Classification"), one-cycle or cosine schedules (Smith 2018),
/// augmentation from the original files, label smoothing, early stopping, checkpoints and resuming, and training only the
/// top blocks on cached lower-block outputs. Images are streamed from their files every epoch, so memory does not grow
/// with their number.
/// </summary>
public sealed class FineTuningTrainer
{
    private readonly FineTuningOptions _options;

    /// <summary>Creates a trainer.</summary>
    /// <param name="options">The options; null uses the defaults.</param>
    public FineTuningTrainer(FineTuningOptions? options = null)
    {
        _options = options ?? new FineTuningOptions();
        _options.Validate();
    }

    /// <summary>
    /// Fine-tunes on <paramref name="train"/>; class labels are sorted ordinally to fix their order. Without
    /// <paramref name="validation"/>, <see cref="FineTuningOptions.ValidationFraction"/> of each class is held out.
    /// </summary>
    /// <param name="train">The labelled training images.</param>
    /// <param name="validation">An explicit validation set; null splits one off <paramref name="train"/>.</param>
    /// <param name="cancellationToken">Stops training between batches.</param>
    /// <returns>The fine-tuned model (weights of the best validation epoch when there is a validation set).</returns>
    public FineTunedModel Fit(IReadOnlyList<ImageExample> train, IReadOnlyList<ImageExample>? validation = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(train);
        var o = _options;
        validation ??= o.Validation;
        var folds = o.EnsembleFolds && o.EnsembleSize > 1;
        if (folds && validation is not null)
            throw new ArgumentException("With EnsembleFolds the members split the training images themselves; pass no validation set.", nameof(validation));
        var all = train;
        if (!folds && validation is null && o.ValidationFraction > 0)
            (train, validation) = ImageFolder.StratifiedSplit(train, o.ValidationFraction, o.Seed);
        validation ??= [];
        var classNames = all.Select(i => i.Label).Distinct().Order(StringComparer.Ordinal).ToArray();
        if (classNames.Length < 2)
            throw new ArgumentException("Fine-tuning needs images of at least two classes.", nameof(train));
        var index = classNames.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i, StringComparer.Ordinal);
        var unknown = validation.FirstOrDefault(e => !index.ContainsKey(e.Label));
        if (unknown is not null)
            throw new ArgumentException($"Validation image '{unknown.ImagePath}' has label '{unknown.Label}', which no training image has.", nameof(validation));

        torch.manual_seed(o.Seed);
        var description = o.Backbone ?? Backbone.ResNet18();
        var split = BackboneBlocks.Import(description, o.ImageSize);
        var networks = new List<FineTuningNetwork> { new(split, description.FeatureSize, classNames.Length) };
        try
        {
            var augmenter = new ImageAugmenter(o.ImageSize, o.RandomResizedCropMinScale, o.RandomResizedCropMaxScale, o.HorizontalFlip, o.ColorJitter);
            var firstTrainedBlock = o.TrainTopBlocksOnly ? split.FirstTrainedBlock(o.TopBlocks) : 0;
            var sharedValue = o.TrainTopBlocksOnly ? split.Cut(o.TopBlocks) : split.Backbone.InputName;
            var cache = new BlockCacheSettings(BlockCacheSettings.FolderIn(o.CacheDirectory), o.BlockCacheMaxBytes, o.HalfPrecisionBlockCache);
            var views = augmenter.IsIdentity ? 1 : o.TopBlockViews;

            // In top-blocks mode the rows are cached lower-block outputs (the members of a folds ensemble find theirs
            // cached by the first); otherwise the image files, decoded and augmented as they stream.
            (IRowSource Rows, int[] Labels) Source(IReadOnlyList<ImageExample> examples, bool training)
            {
                var paths = examples.Select(e => e.ImagePath).ToList();
                IRowSource rows = !o.TrainTopBlocksOnly ? new ImageFileRows(paths, o.ImageSize, training ? augmenter : null)
                    : BlockOutputs.Prepare(split, description, sharedValue, o.ImageSize, paths, training ? views : 1, training ? augmenter : null, training && o.TopBlockMirrors, o.Seed, cache, o.CachingProgress, cancellationToken);
                return (rows, examples.Select(e => index[e.Label]).ToArray());
            }

            ((IRowSource Rows, int[] Labels) Train, (IRowSource Rows, int[] Labels) Validation)? shared =
                folds ? null : (Source(train, training: true), Source(validation, training: false));
            var history = new List<TrainingEpochMetrics>();
            for (var member = 0; member < o.EnsembleSize; member++)
            {
                if (folds)
                    (train, validation) = MemberSplit(all, o, member);
                var (trainSource, validationSource) = shared ?? (Source(train, training: true), Source(validation, training: false));
                var seed = MemberSeed(o.Seed, member);
                if (member > 0)
                {
                    torch.manual_seed(seed);
                    networks.Add(new FineTuningNetwork(BackboneBlocks.Import(description, o.ImageSize), description.FeatureSize, classNames.Length));
                }
                var network = networks[member];
                network.Split.Backbone.FreezeBatchNormStatistics = o.BatchNormMode == BatchNormMode.Frozen;
                if (o.TrainTopBlocksOnly)
                    network.InputValue = sharedValue;
                var runKey = string.Join(
                    ";",
                    "fine-tuning",
                    string.Join("|", classNames),
                    o.ImageSize.ToString(CultureInfo.InvariantCulture),
                    seed.ToString(CultureInfo.InvariantCulture),
                    train.Count.ToString(CultureInfo.InvariantCulture),
                    validation.Count.ToString(CultureInfo.InvariantCulture),
                    o.TrainTopBlocksOnly ? FormattableString.Invariant($"top{o.TopBlocks}x{o.TopBlockViews}{(o.TopBlockMirrors ? "m" : "")}") : "all",
                    o.Optimizer.ToString(),
                    FormattableString.Invariant($"mix{o.MixupAlpha}/{o.CutMixAlpha}"),
                    description.Identity);
                var objective = new FineTuningObjective(network, trainSource.Rows, trainSource.Labels, validationSource.Rows, validationSource.Labels, o, firstTrainedBlock, runKey);
                history.AddRange(TrainingLoop.Run(objective, MemberPlan(o, member), cancellationToken)
                    .Select(m => m with { Member = member + 1, Members = o.EnsembleSize }));
            }
            return new FineTunedModel(networks, sharedValue, classNames, o.ImageSize, history, o.TestTimeFlip);
        }
        catch
        {
            foreach (var network in networks)
                network.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The seed of ensemble member <paramref name="member"/> (counted from 0): the run's seed for the first, so an ensemble
    /// of one is the single model, and a seed mixed from both for the others (no overlap with the members of a run seeded
    /// one higher).
    /// </summary>
    internal static int MemberSeed(int seed, int member) =>
        member == 0 ? seed : (int)(BatchStream.Mix(seed, member, 7) & int.MaxValue);

    /// <summary>
    /// The training and validation images of ensemble member <paramref name="member"/> (counted from 0) under
    /// <see cref="FineTuningOptions.EnsembleFolds"/>: fold <paramref name="member"/> of the run's seeded stratified split.
    /// </summary>
    internal static (IReadOnlyList<ImageExample> Train, IReadOnlyList<ImageExample> Validation) MemberSplit(IReadOnlyList<ImageExample> examples, FineTuningOptions o, int member) =>
        ImageFolder.StratifiedSplit(examples, o.ValidationFraction, o.Seed, member);

    // The loop's plan for one member: its seed, its checkpoint sub-folder and its member number on every report.
    private static TrainingPlan MemberPlan(FineTuningOptions o, int member)
    {
        var plan = TrainingPlan.From(o, o.Optimizer, o.Schedule, o.WarmupEpochs);
        if (o.EnsembleSize == 1)
            return plan;
        var callback = o.MetricsCallback;
        var progress = o.Progress;
        return plan with
        {
            Seed = MemberSeed(o.Seed, member),
            CheckpointDirectory = o.CheckpointDirectory is { } directory ? Path.Combine(directory, MemberFolder(member)) : null,
            MetricsCallback = callback is null ? null : m => callback(m with { Member = member + 1, Members = o.EnsembleSize }),
            Progress = progress is null ? null : new Diagnostics.CallbackProgress<TrainingProgress>(p => progress.Report(p with { Member = member + 1, Members = o.EnsembleSize })),
        };
    }

    /// <summary>The checkpoint sub-folder of ensemble member <paramref name="member"/> (counted from 0).</summary>
    internal static string MemberFolder(int member) => FormattableString.Invariant($"member{member + 1}");
}
