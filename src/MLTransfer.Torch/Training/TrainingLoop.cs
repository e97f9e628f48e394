using System.Diagnostics;
using System.Runtime.InteropServices;
using MLTransfer.Torch.Streaming;
using TorchSharp;
using static TorchSharp.torch;

namespace MLTransfer.Torch.Training;

/// <summary>
/// The one training loop of every TorchSharp technique (fastai's <c>Learner</c>, PyTorch Lightning's <c>Trainer</c>):
/// the technique's <see cref="ITrainingObjective"/> says what its network is and what one step computes; the loop owns
/// the rest. Each epoch it shuffles the training rows (and draws the paired rows), streams the batches from worker threads
/// (<see cref="BatchStream"/>: reading, decoding and augmentation overlap with libtorch, memory does not grow with the
/// number of images), sets every parameter group's learning rate from the schedule of the current phase (head-only first,
/// then the body; per-layer multipliers), steps the optimiser, stops with a one-line error when the loss is no longer a
/// number, reports progress about once a second, scores the validation split, keeps the best epoch's weights, stops
/// early, writes a checkpoint and calls the metrics callback. Everything random is seeded from the run's seed and the
/// epoch, so a resumed run ends exactly like an uninterrupted one. Every batch runs in a dispose scope; batch tensors,
/// snapshots and optimiser state are released when the run ends, on success and on error.
/// </summary>
internal static class TrainingLoop
{
    /// <summary>Trains; on return the network holds the best epoch's weights (the last epoch's without a validation split).</summary>
    /// <param name="objective">The technique.</param>
    /// <param name="plan">How to train.</param>
    /// <param name="cancellationToken">Stops training between batches (the last checkpoint stays).</param>
    /// <returns>The metrics of every epoch, including those restored from a checkpoint.</returns>
    public static IReadOnlyList<TrainingEpochMetrics> Run(ITrainingObjective objective, TrainingPlan plan, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(objective);
        ArgumentNullException.ThrowIfNull(plan);
        plan.Validate();
        torch.set_num_threads(plan.Threads ?? Environment.ProcessorCount);
        using var optimizer = new TrainingOptimizer(plan.Optimizer, objective.ParameterGroups);
        // The weight average is part of the run: a checkpoint written with another decay (or none) is refused.
        var runKey = plan.WeightAverageDecay > 0 ? FormattableString.Invariant($"{objective.RunKey};ema{plan.WeightAverageDecay}") : objective.RunKey;
        var state = new CheckpointState { RunKey = runKey };
        Dictionary<string, Tensor>? best = null;
        using var average = plan.WeightAverageDecay > 0 ? new WeightAverage(plan.WeightAverageDecay, objective.StateTensors().ToList()) : null;
        try
        {
            if (plan.Resume && File.Exists(TrainingCheckpoint.PathIn(plan.CheckpointDirectory!)))
                (state, best) = Restore(objective, runKey, plan, optimizer, average);
            var clock = Stopwatch.StartNew();
            for (var epoch = state.CompletedEpochs; epoch < plan.Epochs && !state.Stopped; epoch++)
            {
                var metrics = RunEpoch(objective, plan, optimizer, average, state, epoch, clock, ref best, cancellationToken);
                state.History.Add(metrics);
                state.CompletedEpochs = epoch + 1;
                if (plan.CheckpointDirectory is { } directory)
                {
                    var (tensors, steps) = optimizer.SaveState();
                    state.OptimizerSteps = steps;
                    state.WeightAverageUpdates = average?.Updates ?? 0;
                    TrainingCheckpoint.Save(directory, state, objective.StateTensors(), best, tensors, average?.Averages ?? []);
                }
                plan.MetricsCallback?.Invoke(metrics);
            }
            if (best is not null)
                Copy(best, objective.StateTensors());
            else
                average?.CopyIntoNetwork();
            return state.History;
        }
        finally
        {
            DisposeAll(best);
        }
    }

    /// <summary>The phase of an epoch: head-only for the first <see cref="TrainingPlan.UnfreezeAfterEpochs"/>, then the body.</summary>
    public static TrainingPhase PhaseOf(int epoch, TrainingPlan plan, TrainingPhase body) =>
        epoch < plan.UnfreezeAfterEpochs ? TrainingPhase.HeadOnly : body;

    private static TrainingEpochMetrics RunEpoch(ITrainingObjective objective, TrainingPlan plan, TrainingOptimizer optimizer, WeightAverage? average, CheckpointState state,
        int epoch, Stopwatch clock, ref Dictionary<string, Tensor>? best, CancellationToken cancellationToken)
    {
        var epochClock = Stopwatch.StartNew();
        var phase = PhaseOf(epoch, plan, objective.BodyPhase);
        var headEpochs = Math.Min(plan.UnfreezeAfterEpochs, plan.Epochs);
        var phaseStart = phase == TrainingPhase.HeadOnly ? 0 : headEpochs;
        var phaseEpochs = phase == TrainingPhase.HeadOnly ? headEpochs : plan.Epochs - headEpochs;
        objective.ConfigurePhase(phase);
        torch.manual_seed(plan.Seed + 1 + epoch);

        var order = Shuffle(objective.TrainRows.Count, new Random(BatchStream.Mix(plan.Seed, epoch, 1)));
        if (order.Length % plan.BatchSize == 1 && order.Length > 1)
            order = order[..^1]; // a batch of one cannot train BatchNorm
        var paired = objective.PairedRows is { } pairedRows ? Draw(pairedRows.Count, order.Length, new Random(BatchStream.Mix(plan.Seed, epoch, 2))) : null;
        var steps = (order.Length + plan.BatchSize - 1) / plan.BatchSize;
        var phaseSteps = (long)steps * phaseEpochs;
        var warmupSteps = (long)Math.Round(plan.WarmupEpochs * steps);
        var totalSteps = (double)steps * plan.Epochs;
        double lossSum = 0, rate = 0;
        long correct = 0, seen = 0, scored = 0;
        var taskSums = new Dictionary<int, (double Sum, int Batches)>();
        var lastReport = TimeSpan.Zero;
        var step = 0;
        try
        {
            using var stream = new BatchStream(objective.TrainRows, order, plan.BatchSize, BatchStream.Mix(plan.Seed, epoch, 3),
                plan.DataThreads ?? BatchStream.DefaultWorkers, pairedSource: objective.PairedRows, pairedOrder: paired);
            foreach (var batch in stream.Batches())
            {
                using (batch)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    rate = plan.LearningRate * LearningRateSchedules.Multiplier(plan.Schedule, ((long)(epoch - phaseStart) * steps) + step, phaseSteps, warmupSteps);
                    var context = new StepContext(epoch, phase, step, steps, ((epoch * (double)steps) + step) / totalSteps, new Random(BatchStream.Mix(plan.Seed, epoch, step, 4)));
                    using var scope = torch.NewDisposeScope();
                    optimizer.ZeroGrad();
                    var result = objective.Step(batch, context);
                    var loss = result.Loss.item<float>();
                    if (!float.IsFinite(loss))
                        throw new TrainingDivergedException(
                            $"The training loss became {loss} in epoch {epoch + 1}, step {step + 1} (learning rate {rate:G3}); training stopped and nothing was saved. Lower the learning rate or check the images.");
                    if (result.Backward is null)
                        result.Loss.backward();
                    else
                        result.Backward();
                    optimizer.LearningRate = rate;
                    optimizer.Step();
                    objective.AfterStep(context);
                    average?.Update();
                    lossSum += loss * batch.Count;
                    seen += batch.Count;
                    if (result.Correct >= 0)
                    {
                        correct += result.Correct;
                        scored += batch.Count;
                    }
                    foreach (var (task, value) in result.TaskLosses ?? new Dictionary<int, double>())
                    {
                        var (sum, count) = taskSums.GetValueOrDefault(task);
                        taskSums[task] = (sum + value, count + 1);
                    }
                }
                step++;
                if (plan.Progress is { } progress && (epochClock.Elapsed - lastReport >= plan.ProgressInterval || step == steps))
                {
                    lastReport = epochClock.Elapsed;
                    var perStep = epochClock.Elapsed / step;
                    var left = (steps - step) + ((long)steps * (plan.Epochs - epoch - 1));
                    progress.Report(new TrainingProgress(epoch + 1, plan.Epochs, phase, step, steps, lossSum / Math.Max(1, seen),
                        seen / Math.Max(epochClock.Elapsed.TotalSeconds, 1e-9), perStep * left));
                }
            }
        }
        catch (ExternalException e)
        {
            throw new TorchFailureException($"libtorch failed in epoch {epoch + 1}, step {step + 1}: {TorchErrors.FirstLine(e.Message)}", e);
        }

        var trainSeconds = epochClock.Elapsed.TotalSeconds;
        // With a weight average, the average is what is validated, snapshotted as the best epoch and returned.
        using var averaged = average?.Applied();
        var validation = TorchErrors.Translate($"scoring the validation split after epoch {epoch + 1}", objective.Validate);
        var isBest = validation is null || validation.Score > state.BestScore;
        if (validation is not null)
        {
            if (isBest)
            {
                state.BestScore = validation.Score;
                state.EpochsWithoutImprovement = 0;
                if (plan.RestoreBest)
                {
                    DisposeAll(best);
                    best = Snapshot(objective.StateTensors());
                }
            }
            else if (epoch >= plan.UnfreezeAfterEpochs)
                state.EpochsWithoutImprovement++;
            state.Stopped = plan.EarlyStoppingPatience > 0 && state.EpochsWithoutImprovement >= plan.EarlyStoppingPatience;
        }

        var tasks = objective.Tasks;
        return new TrainingEpochMetrics(
            epoch + 1,
            plan.Epochs,
            phase,
            seen > 0 ? lossSum / seen : double.NaN,
            scored > 0 ? (double)correct / scored : double.NaN,
            validation?.Loss,
            validation?.Score,
            rate,
            seen / Math.Max(trainSeconds, 1e-9),
            clock.Elapsed,
            state.Stopped ? TimeSpan.Zero : epochClock.Elapsed * (plan.Epochs - epoch - 1),
            isBest)
        {
            TaskTrainLosses = Enumerable.Range(0, tasks.Count).ToDictionary(t => tasks[t],
                t => taskSums.TryGetValue(t, out var s) && s.Batches > 0 ? s.Sum / s.Batches : double.NaN, StringComparer.Ordinal),
            TaskWeights = objective.TaskWeights(),
            TaskValidation = validation?.Tasks ?? new Dictionary<string, Evaluation.TaskReport>(),
        };
    }

    private static (CheckpointState State, Dictionary<string, Tensor>? Best) Restore(ITrainingObjective objective, string runKey, TrainingPlan plan, TrainingOptimizer optimizer, WeightAverage? average)
    {
        var (saved, network, best, moments, averages) = TrainingCheckpoint.Load(plan.CheckpointDirectory!, runKey);
        try
        {
            Copy(network, objective.StateTensors());
            optimizer.LoadState(moments, saved.OptimizerSteps);
            average?.Load(averages, saved.WeightAverageUpdates);
        }
        catch
        {
            DisposeAll(best);
            throw;
        }
        finally
        {
            DisposeAll(network);
            DisposeAll(moments);
            DisposeAll(averages);
        }
        return (saved, best.Count > 0 ? best : null);
    }

    /// <summary>Detached copies of state tensors, by name (owned by the caller).</summary>
    internal static Dictionary<string, Tensor> Snapshot(IEnumerable<(string Name, Tensor Tensor)> tensors) =>
        tensors.ToDictionary(p => p.Name, p => p.Tensor.detach().clone().DetachFromDisposeScope(), StringComparer.Ordinal);

    /// <summary>Copies saved values into state tensors of the same names and shapes; throws on a missing or misshapen one.</summary>
    internal static void Copy(IReadOnlyDictionary<string, Tensor> values, IEnumerable<(string Name, Tensor Tensor)> into)
    {
        using var noGrad = torch.no_grad();
        foreach (var (name, tensor) in into)
        {
            if (!values.TryGetValue(name, out var value) || !value.shape.SequenceEqual(tensor.shape))
                throw new InvalidDataException($"The saved state has no tensor '{name}' of shape [{string.Join(", ", tensor.shape)}].");
            tensor.copy_(value);
        }
    }

    private static int[] Shuffle(int count, Random random)
    {
        var order = Enumerable.Range(0, count).ToArray();
        for (var i = order.Length - 1; i > 0; i--)
        {
            var j = random.Next(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    /// <summary><paramref name="length"/> items of <paramref name="count"/>: consecutive shuffled passes over all of them.</summary>
    private static int[] Draw(int count, int length, Random random)
    {
        var result = new int[length];
        for (var start = 0; start < length; start += count)
        {
            var pass = Shuffle(count, random);
            Array.Copy(pass, 0, result, start, Math.Min(count, length - start));
        }
        return result;
    }

    internal static void DisposeAll(Dictionary<string, Tensor>? tensors)
    {
        foreach (var t in tensors?.Values ?? Enumerable.Empty<Tensor>())
            t.Dispose();
    }
}
