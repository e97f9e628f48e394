using MLTransfer.Evaluation;

namespace MLTransfer.Torch.Training;

/// <summary>Which part of the network a training epoch updates.</summary>
public enum TrainingPhase
{
    /// <summary>Only the new layers (heads, bottleneck, discriminator); the pretrained backbone is frozen.</summary>
    HeadOnly,

    /// <summary>The whole network, with per-layer learning rates.</summary>
    WholeNetwork,

    /// <summary>The top blocks of the backbone and the new layers, on cached outputs of the frozen lower blocks.</summary>
    TopBlocks,
}

/// <summary>
/// What one training epoch did: the one record every TorchSharp technique (fine-tuning, multi-task fine-tuning, DANN,
/// MMD / Deep CORAL) passes to its <c>MetricsCallback</c> after each epoch and keeps in its history.
/// </summary>
/// <param name="Epoch">The epoch just finished, counted from 1.</param>
/// <param name="Epochs">The number of epochs planned.</param>
/// <param name="Phase">Which part of the network this epoch trained.</param>
/// <param name="TrainLoss">The mean training loss over the epoch (what the optimiser minimised, adaptation and weighting included).</param>
/// <param name="TrainAccuracy">The share of training images (as trained on, augmented) classified right; NaN for multi-task.</param>
/// <param name="ValidationLoss">The mean loss on the validation split; null without one (or for multi-task).</param>
/// <param name="ValidationScore">The score that picks the best epoch and drives early stopping: accuracy on the validation split, or for multi-task the mean of the tasks' scores (accuracy, R²); null without a validation split.</param>
/// <param name="LearningRate">The base learning rate at the end of the epoch (the head's; lower layers may use a fraction of it).</param>
/// <param name="ImagesPerSecond">Training images per second during the epoch, waiting for data included.</param>
/// <param name="Elapsed">The wall time of the run so far (this process only).</param>
/// <param name="EstimatedRemaining">The estimated wall time left, from the pace of this epoch.</param>
/// <param name="IsBest">True when this epoch's validation score is the best so far (or there is no validation split).</param>
public sealed record TrainingEpochMetrics(
    int Epoch,
    int Epochs,
    TrainingPhase Phase,
    double TrainLoss,
    double TrainAccuracy,
    double? ValidationLoss,
    double? ValidationScore,
    double LearningRate,
    double ImagesPerSecond,
    TimeSpan Elapsed,
    TimeSpan EstimatedRemaining,
    bool IsBest)
{
    /// <summary>Multi-task only: the mean unweighted training loss of each task. The default value is empty.</summary>
    public IReadOnlyDictionary<string, double> TaskTrainLosses { get; init; } = new Dictionary<string, double>();

    /// <summary>Multi-task only: each task's effective loss weight at the end of the epoch. The default value is empty.</summary>
    public IReadOnlyDictionary<string, double> TaskWeights { get; init; } = new Dictionary<string, double>();

    /// <summary>Multi-task only: per-task validation metrics. The default value is empty.</summary>
    public IReadOnlyDictionary<string, TaskReport> TaskValidation { get; init; } = new Dictionary<string, TaskReport>();

    /// <summary>Ensembles only: the member this epoch trained, counted from 1 (of <see cref="Members"/>). The default value is 1.</summary>
    public int Member { get; init; } = 1;

    /// <summary>The number of networks the run trains, one after the other (<c>EnsembleSize</c>). The default value is 1.</summary>
    public int Members { get; init; } = 1;
}

/// <summary>Progress inside an epoch, reported about once a second while a TorchSharp technique trains.</summary>
/// <param name="Epoch">The current epoch, counted from 1.</param>
/// <param name="Epochs">The number of epochs planned.</param>
/// <param name="Phase">The current phase.</param>
/// <param name="Step">Steps done in this epoch.</param>
/// <param name="Steps">Steps in this epoch.</param>
/// <param name="TrainLoss">The mean training loss so far in this epoch.</param>
/// <param name="ImagesPerSecond">Training images per second so far in this epoch.</param>
/// <param name="EstimatedRemaining">The estimated wall time left for the whole run (validation passes not included).</param>
public sealed record TrainingProgress(int Epoch, int Epochs, TrainingPhase Phase, int Step, int Steps, double TrainLoss, double ImagesPerSecond, TimeSpan EstimatedRemaining)
{
    /// <summary>Ensembles only: the member training, counted from 1 (of <see cref="Members"/>). The default value is 1.</summary>
    public int Member { get; init; } = 1;

    /// <summary>The number of networks the run trains, one after the other. The default value is 1.</summary>
    public int Members { get; init; } = 1;
}
