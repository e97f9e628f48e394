namespace MLTransfer.Torch.Training;

/// <summary>How the <see cref="TrainingLoop"/> runs: what every technique's options map to.</summary>
internal sealed record TrainingPlan
{
    public required int Epochs { get; init; }

    public required int BatchSize { get; init; }

    public required OptimizerKind Optimizer { get; init; }

    /// <summary>The peak base learning rate (groups use a multiple of it).</summary>
    public required double LearningRate { get; init; }

    public LearningRateSchedule Schedule { get; init; } = LearningRateSchedule.OneCycle;

    /// <summary>Warm-up length in epochs (fractions allowed), capped at half of each phase.</summary>
    public double WarmupEpochs { get; init; } = 1;

    /// <summary>Head-only epochs before the body phase.</summary>
    public int UnfreezeAfterEpochs { get; init; }

    /// <summary>Body-phase epochs without a better validation score before stopping; 0 never stops early.</summary>
    public int EarlyStoppingPatience { get; init; }

    /// <summary>Whether the network ends with the best validation epoch's weights (rather than the last epoch's).</summary>
    public bool RestoreBest { get; init; } = true;

    /// <summary>The per-step decay of the weight average (<see cref="WeightAverage"/>); 0 keeps none.</summary>
    public double WeightAverageDecay { get; init; }

    public string? CheckpointDirectory { get; init; }

    public bool Resume { get; init; }

    public int Seed { get; init; }

    /// <summary>libtorch threads; null means one per core.</summary>
    public int? Threads { get; init; }

    /// <summary>Threads that read and augment rows; null means <see cref="Streaming.BatchStream.DefaultWorkers"/>.</summary>
    public int? DataThreads { get; init; }

    public Action<TrainingEpochMetrics>? MetricsCallback { get; init; }

    public IProgress<TrainingProgress>? Progress { get; init; }

    /// <summary>How often <see cref="Progress"/> hears from the loop. The default value is one second.</summary>
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>A plan from a technique's shared loop settings, with the optimiser and schedule the technique uses.</summary>
    public static TrainingPlan From(ILoopSettings settings, OptimizerKind optimizer, LearningRateSchedule schedule, double warmupEpochs) => new()
    {
        Epochs = settings.Epochs,
        BatchSize = settings.BatchSize,
        Optimizer = optimizer,
        LearningRate = settings.LearningRate,
        Schedule = schedule,
        WarmupEpochs = warmupEpochs,
        UnfreezeAfterEpochs = settings.UnfreezeAfterEpochs,
        EarlyStoppingPatience = settings.EarlyStoppingPatience,
        WeightAverageDecay = settings.WeightAverageDecay,
        CheckpointDirectory = settings.CheckpointDirectory,
        Resume = settings.Resume,
        Seed = settings.Seed,
        Threads = settings.Threads,
        DataThreads = settings.DataThreads,
        MetricsCallback = settings.MetricsCallback,
        Progress = settings.Progress,
    };

    /// <summary>Throws when a setting is out of range.</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(Epochs, 1, nameof(Epochs));
        ArgumentOutOfRangeException.ThrowIfLessThan(BatchSize, 1, nameof(BatchSize));
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "must be a positive number.");
        ArgumentOutOfRangeException.ThrowIfNegative(WarmupEpochs, nameof(WarmupEpochs));
        ArgumentOutOfRangeException.ThrowIfNegative(UnfreezeAfterEpochs, nameof(UnfreezeAfterEpochs));
        ArgumentOutOfRangeException.ThrowIfNegative(EarlyStoppingPatience, nameof(EarlyStoppingPatience));
        if (!(WeightAverageDecay is >= 0 and < 1))
            throw new ArgumentOutOfRangeException(nameof(WeightAverageDecay), WeightAverageDecay, "must be 0 (none) or in (0, 1).");
        if (Resume && CheckpointDirectory is null)
            throw new ArgumentException("Resume needs a CheckpointDirectory.", nameof(Resume));
    }
}
