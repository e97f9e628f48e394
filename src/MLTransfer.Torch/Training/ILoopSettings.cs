namespace MLTransfer.Torch.Training;

/// <summary>
/// The settings every end-to-end TorchSharp technique's options share with the <see cref="TrainingLoop"/> (budget, phases,
/// early stopping, checkpoints, threads and callbacks), mapped to a <see cref="TrainingPlan"/> in one place.
/// </summary>
internal interface ILoopSettings
{
    int Epochs { get; }

    int BatchSize { get; }

    double LearningRate { get; }

    int UnfreezeAfterEpochs { get; }

    int EarlyStoppingPatience { get; }

    double WeightAverageDecay { get; }

    string? CheckpointDirectory { get; }

    bool Resume { get; }

    int Seed { get; }

    int? Threads { get; }

    int? DataThreads { get; }

    Action<TrainingEpochMetrics>? MetricsCallback { get; }

    IProgress<TrainingProgress>? Progress { get; }
}
