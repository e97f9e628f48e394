using MLTransfer.Evaluation;
using MLTransfer.Torch.Streaming;
using static TorchSharp.torch;

namespace MLTransfer.Torch.Training;

/// <summary>
/// What a technique tells the <see cref="TrainingLoop"/>: its network (parameter groups, state tensors, how each phase
/// freezes it), its data (the training rows and, for domain adaptation, the unlabelled rows drawn with each batch) and
/// what one step computes (its loss); the loop owns everything else. The spirit of PyTorch Lightning's
/// <c>training_step</c> and of tllib, where a method is a loss added inside one shared loop.
/// </summary>
internal interface ITrainingObjective
{
    /// <summary>Identifies the run in its checkpoint (technique, classes or tasks, image size, seed, split, mode).</summary>
    string RunKey { get; }

    /// <summary>The training rows (the labelled source images).</summary>
    IRowSource TrainRows { get; }

    /// <summary>Rows drawn alongside every training batch, as many as it has (the unlabelled target domain), or null.</summary>
    IRowSource? PairedRows { get; }

    /// <summary>The phase that follows the head-only epochs: <see cref="TrainingPhase.WholeNetwork"/> or <see cref="TrainingPhase.TopBlocks"/>.</summary>
    TrainingPhase BodyPhase { get; }

    /// <summary>The optimiser's parameter groups (per-layer rate multipliers and weight decays).</summary>
    IReadOnlyList<ParameterGroup> ParameterGroups { get; }

    /// <summary>Every tensor that defines the trained state, by stable names (checkpoints, best-epoch snapshots).</summary>
    IEnumerable<(string Name, Tensor Tensor)> StateTensors();

    /// <summary>Freezes and unfreezes for a phase and puts the modules in training mode.</summary>
    void ConfigurePhase(TrainingPhase phase);

    /// <summary>The forward pass of one batch: the loss to minimise and what to report.</summary>
    StepResult Step(LoadedBatch batch, StepContext context);

    /// <summary>Called after every optimiser step (e.g. to renormalise learnt task weights).</summary>
    void AfterStep(StepContext context)
    {
    }

    /// <summary>Scores the validation split in evaluation mode; null when there is none.</summary>
    EpochValidation? Validate();

    /// <summary>Multi-task: the task names, in task-index order; empty otherwise.</summary>
    IReadOnlyList<string> Tasks => [];

    /// <summary>Multi-task: each task's current effective loss weight; empty otherwise.</summary>
    IReadOnlyDictionary<string, double> TaskWeights() => new Dictionary<string, double>();
}

/// <summary>Where a step is in the run.</summary>
/// <param name="Epoch">The epoch, from 0.</param>
/// <param name="Phase">The current phase.</param>
/// <param name="Step">The step within the epoch, from 0.</param>
/// <param name="StepsPerEpoch">Steps in an epoch.</param>
/// <param name="Progress">The share of all the run's steps done before this one, in [0, 1).</param>
/// <param name="Random">A generator for this step only (seeded from the run's seed, the epoch and the step).</param>
internal sealed record StepContext(int Epoch, TrainingPhase Phase, int Step, int StepsPerEpoch, double Progress, Random Random);

/// <summary>What one step computed.</summary>
/// <param name="Loss">The scalar loss to minimise.</param>
/// <param name="Correct">Training rows classified right, or −1 when accuracy does not apply.</param>
/// <param name="TaskLosses">Multi-task: the unweighted loss of each task present in the batch, by task index; else null.</param>
/// <param name="Backward">A replacement for <c>Loss.backward()</c> (gradient surgery such as PCGrad or GradNorm), or null.</param>
internal sealed record StepResult(Tensor Loss, long Correct = -1, IReadOnlyDictionary<int, double>? TaskLosses = null, Action? Backward = null);

/// <summary>A validation pass.</summary>
/// <param name="Score">Higher is better: it picks the best epoch and drives early stopping.</param>
/// <param name="Loss">The mean validation loss, or null.</param>
/// <param name="Tasks">Multi-task: per-task reports; else empty.</param>
internal sealed record EpochValidation(double Score, double? Loss, IReadOnlyDictionary<string, TaskReport> Tasks);
