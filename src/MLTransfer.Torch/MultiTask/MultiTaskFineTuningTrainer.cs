using System.Globalization;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Techniques.MultiTask;
using MLTransfer.Torch.Streaming;
using MLTransfer.Torch.FineTuning;
using MLTransfer.Torch.Onnx;
using MLTransfer.Torch.Training;
using TorchSharp;

namespace MLTransfer.Torch.MultiTask;

/// <summary>
/// Multi-task fine-tuning with TorchSharp on the CPU, through the shared <see cref="TrainingLoop"/>: the imported
/// backbone is shared by every task (hard parameter sharing, Caruana 1997) and trained jointly with one head per task
/// (<see cref="MultiTaskObjective"/>). Missing labels are masked out of their task's loss; regression targets are
/// standardised for training (and un-standardised in the exported head). Losses are combined with equal, fixed,
/// uncertainty or GradNorm weights (<see cref="LossWeighting"/>), optionally with PCGrad (<see cref="GradientBalancing"/>).
/// Every epoch reports per-task validation metrics; early stopping watches their mean and keeps the best epoch; checkpoints
/// allow resuming. Images stream from their files every epoch. Deterministic for a seed and a thread count.
/// </summary>
public sealed class MultiTaskFineTuningTrainer
{
    private readonly MultiTaskFineTuningOptions _options;

    /// <summary>Creates a trainer.</summary>
    /// <param name="options">The options; null uses the defaults.</param>
    public MultiTaskFineTuningTrainer(MultiTaskFineTuningOptions? options = null)
    {
        _options = options ?? new MultiTaskFineTuningOptions();
        _options.Validate();
    }

    /// <summary>Fine-tunes on labelled images (labels in the order of <paramref name="tasks"/>, empty when missing).</summary>
    /// <param name="tasks">The tasks (classification tasks with their classes).</param>
    /// <param name="train">Training images.</param>
    /// <param name="validation">Validation images for per-task metrics and early stopping; may be empty.</param>
    /// <param name="cancellationToken">Stops training between batches.</param>
    /// <returns>The trained heads and the fine-tuned backbone graph (weights of the best validation epoch).</returns>
    public MultiTaskFineTunedModel Fit(IReadOnlyList<ManifestTask> tasks, IReadOnlyList<MultiLabelExample> train,
        IReadOnlyList<MultiLabelExample> validation, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tasks);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(validation);
        MultiTaskData.CheckTrainable(tasks, train);
        var o = _options;
        torch.manual_seed(o.Seed);
        var targets = new TaskTargets(tasks, train);
        var description = o.Backbone ?? Backbone.ResNet18();
        var backbone = OnnxModuleImporter.Import(FeaturizerGraph.Build(description, o.ImageSize), FeaturizerGraph.InputName, FeaturizerGraph.OutputName);
        backbone.FreezeBatchNormStatistics = o.BatchNorm == BatchNormMode.Frozen;
        var network = new MultiTaskNetwork(backbone, description.FeatureSize, targets.Tasks, BackboneBlocks.IsPreprocessing);
        try
        {
            var augmenter = new ImageAugmenter(o.ImageSize, o.RandomResizedCropMinScale, 1.0, o.HorizontalFlip, 0);
            var trainRows = new ImageFileRows(train.Select(e => e.ImagePath).ToList(), o.ImageSize, augmenter);
            var validationRows = new ImageFileRows(validation.Select(e => e.ImagePath).ToList(), o.ImageSize);
            var runKey = string.Join(
                ";",
                "multi-task-fine-tuning",
                string.Join("|", targets.Tasks.Select(t => $"{t.Name}:{t.Kind}:{string.Join(",", t.Classes)}")),
                o.ImageSize.ToString(CultureInfo.InvariantCulture),
                o.Seed.ToString(CultureInfo.InvariantCulture),
                train.Count.ToString(CultureInfo.InvariantCulture),
                validation.Count.ToString(CultureInfo.InvariantCulture),
                o.Weighting.ToString(),
                o.Balancing.ToString(),
                description.Identity);
            var objective = new MultiTaskObjective(network, targets, trainRows, validation, validationRows, o, runKey);
            var history = TrainingLoop.Run(objective, TrainingPlan.From(o, OptimizerKind.AdamW, LearningRateSchedule.OneCycle, warmupEpochs: 0.5), cancellationToken);
            network.eval();
            var heads = MultiTaskObjective.ExportHeads(network, targets);
            return new MultiTaskFineTunedModel(network.Backbone.ExportModel(), heads, o.ImageSize, history);
        }
        finally
        {
            network.Dispose();
        }
    }
}
