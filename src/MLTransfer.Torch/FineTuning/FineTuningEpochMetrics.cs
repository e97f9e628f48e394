namespace MLTransfer.Torch.FineTuning;

/// <summary>What one fine-tuning epoch did; passed to <see cref="FineTuningOptions.MetricsCallback"/> after each epoch.</summary>
/// <param name="Epoch">The epoch just finished, counted from 1.</param>
/// <param name="Epochs">The number of epochs planned.</param>
/// <param name="Phase">Which part of the network this epoch trained.</param>
/// <param name="TrainLoss">The mean training loss (with label smoothing) over the epoch.</param>
/// <param name="TrainAccuracy">The share of training images (augmented, as trained on) classified right during the epoch.</param>
/// <param name="ValidationLoss">The mean loss on the validation split, or null without one.</param>
/// <param name="ValidationAccuracy">The accuracy on the validation split, or null without one.</param>
/// <param name="LearningRate">The head's learning rate at the end of the epoch.</param>
/// <param name="ImagesPerSecond">Training images processed per second during the epoch.</param>
/// <param name="Elapsed">The wall time of the run so far (this process only).</param>
/// <param name="EstimatedRemaining">The estimated wall time left, from the pace of this epoch.</param>
/// <param name="IsBest">True when this epoch's validation accuracy is the best so far (or there is no validation split).</param>
public sealed record FineTuningEpochMetrics(
    int Epoch,
    int Epochs,
    FineTuningPhase Phase,
    double TrainLoss,
    double TrainAccuracy,
    double? ValidationLoss,
    double? ValidationAccuracy,
    double LearningRate,
    double ImagesPerSecond,
    TimeSpan Elapsed,
    TimeSpan EstimatedRemaining,
    bool IsBest);
