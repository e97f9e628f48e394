using MLTransfer.Tests.TestSupport;
using MLTransfer.Torch.Training;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLTransfer.Torch.Tests.Training;

/// <summary>The one training loop, tested once on a toy objective: everything a technique relies on.</summary>
public class TrainingLoopTests
{
    private static TrainingPlan Plan(Action<TrainingPlanBuilder>? change = null)
    {
        var builder = new TrainingPlanBuilder();
        change?.Invoke(builder);
        return builder.Build();
    }

    [Test]
    public void Should_train_the_head_first_then_the_body_with_each_phase_on_its_own_schedule()
    {
        using var objective = new ToyObjective(bodyMultiplier: 0.5, validation: 0);
        var bodyBefore = objective.ParameterGroups[0].Parameters[0].Parameter.data<float>().ToArray();
        var headBefore = objective.ParameterGroups[1].Parameters[0].Parameter.data<float>().ToArray();
        var history = TrainingLoop.Run(objective, Plan(p => { p.Epochs = 3; p.UnfreezeAfterEpochs = 1; }));

        Assert.That(objective.Phases, Is.EqualTo(new[] { TrainingPhase.HeadOnly, TrainingPhase.WholeNetwork, TrainingPhase.WholeNetwork }));
        Assert.That(history.Select(m => m.Phase), Is.EqualTo(objective.Phases));
        Assert.That(history.Select(m => m.Epoch), Is.EqualTo(new[] { 1, 2, 3 }));
        Assert.That(history.All(m => double.IsFinite(m.TrainLoss) && m.TrainAccuracy is >= 0 and <= 1 && m.ImagesPerSecond > 0 && m.ValidationScore is null), Is.True);
        // One-cycle per phase: each phase ends at peak / 10^4 (the head-only phase is one epoch of 5 steps).
        Assert.That(history[0].LearningRate, Is.EqualTo(0.01 / 1e4).Within(1e-9));
        Assert.That(history[2].LearningRate, Is.EqualTo(0.01 / 1e4).Within(1e-9));
        Assert.That(objective.ParameterGroups[1].Parameters[0].Parameter.data<float>().ToArray(), Is.Not.EqualTo(headBefore));
        Assert.That(objective.ParameterGroups[0].Parameters[0].Parameter.data<float>().ToArray(), Is.Not.EqualTo(bodyBefore), "the body trains after unfreezing");
        Assert.That(objective.Batches.Sum(b => b.Items.Length), Is.EqualTo(3 * 40));
    }

    [Test]
    public void Should_give_each_group_its_share_of_the_learning_rate()
    {
        using var frozenBody = new ToyObjective(bodyMultiplier: 0);
        var bodyBefore = frozenBody.ParameterGroups[0].Parameters[0].Parameter.data<float>().ToArray();
        TrainingLoop.Run(frozenBody, Plan(p => p.Epochs = 2));
        var after = frozenBody.ParameterGroups[0].Parameters[0].Parameter.data<float>().ToArray();
        // AdamW's decoupled decay also scales by the group's rate, so a zero rate leaves the group exactly as it was.
        Assert.That(after, Is.EqualTo(bodyBefore));
    }

    [Test]
    public void Should_validate_and_return_the_moving_average_of_the_weights_while_training_goes_on_from_the_live_ones()
    {
        const double decay = 0.8;
        using var objective = new ToyObjective { RecordSteps = true };
        var initial = objective.Weights();
        TrainingLoop.Run(objective, Plan(p => { p.Epochs = 3; p.WeightAverageDecay = decay; p.EarlyStoppingPatience = 0; }));

        // The average, computed here from the live weights after every step: a ← d·a + (1 − d)·w, d = min(decay, (1 + n)/(10 + n)).
        var average = initial.Select(v => (double)v).ToArray();
        var expectedAtValidation = new List<double[]>();
        var stepsPerEpoch = objective.StepWeights.Count / 3;
        for (var n = 0; n < objective.StepWeights.Count; n++)
        {
            var d = Math.Min(decay, (1.0 + n) / (10.0 + n));
            for (var i = 0; i < average.Length; i++)
                average[i] = (d * average[i]) + ((1 - d) * objective.StepWeights[n][i]);
            if ((n + 1) % stepsPerEpoch == 0)
                expectedAtValidation.Add((double[])average.Clone());
        }
        Assert.That(objective.ValidatedWeights, Has.Count.EqualTo(3));
        for (var e = 0; e < 3; e++)
            Assert.That(objective.ValidatedWeights[e], Is.EqualTo(expectedAtValidation[e]).Within(1e-5), $"epoch {e + 1} validates the average");
        Assert.That(objective.ValidatedWeights[2], Is.Not.EqualTo(objective.StepWeights[^1]).Within(1e-3), "the average is not the last step's weights");
        // Training goes on from the live weights: each epoch's first step starts where the previous epoch's last step left them.
        Assert.That(objective.StepStartWeights[stepsPerEpoch], Is.EqualTo(objective.StepWeights[stepsPerEpoch - 1]));
        // The best epoch here is the best-scoring average; with every epoch scored alike the first best stays, so check the
        // network holds one of the validated averages.
        Assert.That(objective.ValidatedWeights.Any(w => w.Zip(objective.Weights(), (a, b) => Math.Abs(a - b)).Max() < 1e-5), Is.True);
    }

    [Test]
    public void Should_end_with_the_moving_average_when_there_is_no_validation_split()
    {
        const double decay = 0.9;
        using var objective = new ToyObjective(validation: 0) { RecordSteps = true };
        var average = objective.Weights().Select(v => (double)v).ToArray();
        TrainingLoop.Run(objective, Plan(p => { p.Epochs = 2; p.WeightAverageDecay = decay; }));
        for (var n = 0; n < objective.StepWeights.Count; n++)
        {
            var d = Math.Min(decay, (1.0 + n) / (10.0 + n));
            for (var i = 0; i < average.Length; i++)
                average[i] = (d * average[i]) + ((1 - d) * objective.StepWeights[n][i]);
        }
        Assert.That(objective.Weights(), Is.EqualTo(average).Within(1e-5));
    }

    [TestCase(0.0)]
    [TestCase(0.9)]
    public void Should_resume_a_killed_run_and_end_exactly_like_an_uninterrupted_one(double weightAverageDecay)
    {
        var dir = TestData.TempFolder();
        using var uninterrupted = new ToyObjective(rows: new NoisyRows(40), paired: new NoisyRows(13));
        var plan = Plan(p => { p.Epochs = 3; p.UnfreezeAfterEpochs = 1; p.WeightAverageDecay = weightAverageDecay; });
        var full = TrainingLoop.Run(uninterrupted, plan);

        using var killed = new ToyObjective(rows: new NoisyRows(40), paired: new NoisyRows(13));
        using var kill = new CancellationTokenSource();
        var killedPlan = plan with { CheckpointDirectory = dir, MetricsCallback = m => { if (m.Epoch == 2) kill.Cancel(); } };
        Assert.Throws<OperationCanceledException>(() => TrainingLoop.Run(killed, killedPlan, kill.Token));
        Assert.That(TrainingCheckpoint.Find(dir)?.CompletedEpochs, Is.EqualTo(2));
        Assert.That(Directory.GetFiles(dir, "*.tmp", SearchOption.AllDirectories), Is.Empty);

        using var resumed = new ToyObjective(rows: new NoisyRows(40), paired: new NoisyRows(13));
        var ran = new List<int>();
        var history = TrainingLoop.Run(resumed, plan with { CheckpointDirectory = dir, Resume = true, MetricsCallback = m => ran.Add(m.Epoch) });
        Assert.That(ran, Is.EqualTo(new[] { 3 }), "only the missing epoch runs");
        Assert.That(history.Select(m => m.TrainLoss), Is.EqualTo(full.Select(m => m.TrainLoss)));
        Assert.That(resumed.Weights(), Is.EqualTo(uninterrupted.Weights()));
        Assert.That(resumed.Batches.Select(b => b.Paired), Is.EqualTo(uninterrupted.Batches.Where(b => b.Epoch == 2).Select(b => b.Paired)));
    }

    [Test]
    public void Should_refuse_another_runs_checkpoint_before_reading_its_tensors()
    {
        var dir = TestData.TempFolder();
        using (var first = new ToyObjective(runKey: "toy;classes a|b"))
            TrainingLoop.Run(first, Plan(p => { p.Epochs = 1; p.CheckpointDirectory = dir; }));
        using var other = new ToyObjective(runKey: "toy;classes a|b|c", hidden: 6);
        var error = Assert.Throws<InvalidOperationException>(() => TrainingLoop.Run(other, Plan(p => { p.Epochs = 2; p.CheckpointDirectory = dir; p.Resume = true; })));
        Assert.That(error!.Message, Does.Contain("belongs to another run").And.Contain("a|b|c").And.Not.Contain("\n"));

        using var averaged = new ToyObjective(runKey: "toy;classes a|b");
        var withAverage = Assert.Throws<InvalidOperationException>(() => TrainingLoop.Run(averaged, Plan(p => { p.Epochs = 2; p.CheckpointDirectory = dir; p.Resume = true; p.WeightAverageDecay = 0.99; })));
        Assert.That(withAverage!.Message, Does.Contain("belongs to another run").And.Contain("ema0.99"), "a checkpoint without a weight average does not resume a run with one");
    }

    [Test]
    public void Should_stop_early_and_keep_the_best_epoch()
    {
        using var scripted = new ToyObjective { ScriptedScores = epoch => new[] { 0.5, 0.7, 0.6, 0.65, 0.9 }[epoch] };
        var weights = new List<float[]>();
        var stopped = TrainingLoop.Run(scripted, Plan(p => { p.Epochs = 5; p.EarlyStoppingPatience = 2; p.MetricsCallback = _ => weights.Add(scripted.Weights()); }));
        Assert.That(stopped.Select(m => m.Epoch), Is.EqualTo(new[] { 1, 2, 3, 4 }), "two epochs without a better score after epoch 2");
        Assert.That(stopped.Select(m => m.IsBest), Is.EqualTo(new[] { true, true, false, false }));
        Assert.That(stopped[^1].EstimatedRemaining, Is.EqualTo(TimeSpan.Zero));
        Assert.That(scripted.Weights(), Is.EqualTo(weights[1]), "the best epoch's weights are kept");
    }

    [Test]
    public void Should_stop_with_a_one_line_error_when_the_loss_is_no_longer_a_number_and_save_nothing_of_that_epoch()
    {
        var dir = TestData.TempFolder();
        using var objective = new ToyObjective { NaNAt = (1, 2) };
        var error = Assert.Throws<TrainingDivergedException>(() => TrainingLoop.Run(objective, Plan(p => { p.Epochs = 3; p.CheckpointDirectory = dir; })));
        Assert.That(error!.Message, Does.Contain("NaN").And.Contain("epoch 2, step 3").And.Contain("nothing was saved").And.Not.Contain("\n"));
        Assert.That(TrainingCheckpoint.Find(dir)?.CompletedEpochs, Is.EqualTo(1), "only the finished epoch is in the checkpoint");
    }

    [Test]
    public void Should_translate_libtorch_failures_into_one_line()
    {
        using var objective = new ToyObjective(rows: new WrongShapeRows());
        var error = Assert.Throws<TorchFailureException>(() => TrainingLoop.Run(objective, Plan(p => p.Epochs = 1)));
        TestContext.Out.WriteLine(error!.Message);
        Assert.That(error.Message, Does.StartWith("libtorch failed in epoch 1, step 1: ").And.Not.Contain("\n").And.Not.Contain("frame #"));
        Assert.That(error.InnerException, Is.InstanceOf<System.Runtime.InteropServices.ExternalException>(), "the native report stays available (--verbose)");
    }

    [Test]
    public void Should_report_progress_inside_each_epoch()
    {
        using var objective = new ToyObjective();
        var reports = new List<TrainingProgress>();
        TrainingLoop.Run(objective, Plan(p => { p.Epochs = 2; p.Progress = new Recorder<TrainingProgress>(reports); p.ProgressInterval = TimeSpan.Zero; }));
        Assert.That(reports.Select(r => (r.Epoch, r.Step)), Is.EqualTo(Enumerable.Range(1, 2).SelectMany(e => Enumerable.Range(1, 5).Select(s => (e, s)))));
        Assert.That(reports.All(r => r.Steps == 5 && r.ImagesPerSecond > 0 && double.IsFinite(r.TrainLoss)), Is.True);
        Assert.That(reports[^1].EstimatedRemaining, Is.EqualTo(TimeSpan.Zero));
    }

    [Test]
    public void Should_give_the_same_batches_and_weights_whatever_the_number_of_data_threads_and_their_timing()
    {
        float[] Train(int threads, int delay, out List<(int, int, int[], int[]?, float[])> batches)
        {
            using var objective = new ToyObjective(rows: new NoisyRows(40, delay), paired: new NoisyRows(9, delay));
            TrainingLoop.Run(objective, Plan(p => { p.Epochs = 2; p.DataThreads = threads; }));
            batches = objective.Batches;
            return objective.Weights();
        }
        var one = Train(1, 0, out var oneBatches);
        var three = Train(3, 3, out var threeBatches);
        Assert.That(threeBatches.Select(b => b.Item3), Is.EqualTo(oneBatches.Select(b => b.Item3)));
        Assert.That(threeBatches.Select(b => b.Item5), Is.EqualTo(oneBatches.Select(b => b.Item5)), "augmented rows are the same bits");
        Assert.That(three, Is.EqualTo(one));
        Assert.That(oneBatches.Select(b => b.Item5).Distinct(new ArrayComparer()).Count(), Is.EqualTo(oneBatches.Count), "augmentation is re-drawn every epoch");
    }

    [Test]
    public void Should_not_grow_live_native_tensors_across_epochs()
    {
        using var objective = new ToyObjective();
        var live = new List<long>();
        TrainingLoop.Run(objective, Plan(p => { p.Epochs = 4; p.MetricsCallback = _ => live.Add(LiveTensors()); }));
        Assert.That(live[3], Is.EqualTo(live[1]), $"live tensors per epoch: {string.Join(", ", live)}");
    }

    [Test]
    public void Should_survive_the_garbage_collector_finalising_temporary_scalars_during_optimiser_steps()
    {
        // TorchSharp's own Adam fails within seconds under this load ("Expected false to be true … toFloat"): its implicit
        // Scalars are freed by the finalizer thread while libtorch reads them. The loop's optimiser keeps them alive.
        using var objective = new ToyObjective(count: 400, hidden: 64);
        using (new GarbageCollectorPressure())
        {
            foreach (var kind in new[] { OptimizerKind.Adam, OptimizerKind.AdamW, OptimizerKind.SgdMomentum })
                TrainingLoop.Run(objective, Plan(p => { p.Epochs = 8; p.BatchSize = 4; p.Optimizer = kind; }));
        }
        Assert.That(objective.Batches, Has.Count.EqualTo(3 * 8 * 100));
    }

    /// <summary>Live tensors of this thread, counting the batch tensors that worker threads made and this thread disposed.</summary>
    internal static long LiveTensors() => DisposeScopeManager.Statistics.ThreadTotalLiveCount + MLTransfer.Torch.Streaming.BatchStream.CreatedTensors;

    private sealed class WrongShapeRows : MLTransfer.Torch.Streaming.IRowSource
    {
        public int Count => 8;

        public long[] RowShape => [3];

        public void Fill(int index, Span<float> destination, Random? random) => destination.Fill(index);
    }

    private sealed class Recorder<T>(List<T> into) : IProgress<T>
    {
        public void Report(T value) => into.Add(value);
    }

    private sealed class ArrayComparer : IEqualityComparer<float[]>
    {
        public bool Equals(float[]? x, float[]? y) => x!.AsSpan().SequenceEqual(y);

        public int GetHashCode(float[] obj) => obj.Length == 0 ? 0 : obj[0].GetHashCode();
    }
}

/// <summary>Mutable defaults for <see cref="TrainingPlan"/> in tests.</summary>
internal sealed class TrainingPlanBuilder
{
    public int Epochs { get; set; } = 2;
    public int BatchSize { get; set; } = 8;
    public OptimizerKind Optimizer { get; set; } = OptimizerKind.AdamW;
    public int UnfreezeAfterEpochs { get; set; }
    public int EarlyStoppingPatience { get; set; }
    public double WeightAverageDecay { get; set; }
    public string? CheckpointDirectory { get; set; }
    public bool Resume { get; set; }
    public int? DataThreads { get; set; }
    public Action<TrainingEpochMetrics>? MetricsCallback { get; set; }
    public IProgress<TrainingProgress>? Progress { get; set; }
    public TimeSpan ProgressInterval { get; set; } = TimeSpan.FromSeconds(1);

    public TrainingPlan Build() => new()
    {
        Epochs = Epochs, BatchSize = BatchSize, Optimizer = Optimizer, LearningRate = 0.01, UnfreezeAfterEpochs = UnfreezeAfterEpochs,
        EarlyStoppingPatience = EarlyStoppingPatience, WeightAverageDecay = WeightAverageDecay, CheckpointDirectory = CheckpointDirectory, Resume = Resume, Seed = 3, Threads = 1,
        DataThreads = DataThreads, MetricsCallback = MetricsCallback, Progress = Progress, ProgressInterval = ProgressInterval,
    };
}
