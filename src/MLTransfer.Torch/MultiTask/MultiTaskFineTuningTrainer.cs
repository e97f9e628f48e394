using System.Diagnostics;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Heads;
using MLTransfer.Techniques.MultiTask;
using MLTransfer.Torch.FineTuning;
using MLTransfer.Torch.Onnx;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLTransfer.Torch.MultiTask;

/// <summary>
/// Multi-task fine-tuning with TorchSharp on the CPU: the imported backbone is shared by every task (hard parameter
/// sharing, Caruana 1997) and trained jointly with one head per task. Missing labels are masked out of their task's
/// loss; regression targets are standardised for training (and un-standardised in the exported head). Losses are
/// combined with equal, fixed or uncertainty weights (<see cref="LossWeighting"/>), optionally with PCGrad
/// (<see cref="GradientBalancing"/>). Every epoch reports per-task validation metrics; early stopping watches
/// their mean and keeps the best epoch. Deterministic for a seed and a thread count.
/// </summary>
public sealed class MultiTaskFineTuningTrainer
{
    private const string PreprocessingPrefix = "mltransfer_";

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
        torch.set_num_threads(o.Threads ?? Environment.ProcessorCount);
        torch.manual_seed(o.Seed);
        var targets = new TaskTargets(tasks, train);
        var pixels = ImagePixelReader.Read(train.Select(e => e.ImagePath).ToArray(), o.ImageSize);
        var validationPixels = validation.Count == 0 ? [] : ImagePixelReader.Read(validation.Select(e => e.ImagePath).ToArray(), o.ImageSize);

        var description = o.Backbone ?? Backbone.ResNet18();
        var backbone = OnnxModuleImporter.Import(FeaturizerGraph.Build(description, o.ImageSize), FeaturizerGraph.InputName, FeaturizerGraph.OutputName);
        backbone.FreezeBatchNormStatistics = o.FreezeBatchNormStatistics;
        var network = new MultiTaskNetwork(backbone, description.FeatureSize, targets.Tasks, n => n.StartsWith(PreprocessingPrefix, StringComparison.Ordinal));
        try
        {
            var shared = network.SharedParameters.ToList();
            var headParameters = network.Heads.SelectMany(h => new[] { h.weight!, h.bias! }).Append(network.LogVariances).ToList();
            using var optimizer = torch.optim.AdamW(
                [new AdamW.ParamGroup(shared, lr: o.LearningRate * o.BackboneLearningRateFactor, weight_decay: o.WeightDecay),
                 new AdamW.ParamGroup(headParameters, lr: o.LearningRate, weight_decay: 0)],
                o.LearningRate, weight_decay: o.WeightDecay);
            var augmenter = new ImageAugmenter(o.ImageSize, o.RandomResizedCropMinScale, 1.0, o.HorizontalFlip, 0);
            var rowIds = Enumerable.Range(0, train.Count).ToArray();
            var history = new List<MultiTaskEpochMetrics>();
            Dictionary<string, Tensor>? best = null;
            var bestScore = double.NegativeInfinity;
            var sinceBest = 0;
            var clock = Stopwatch.StartNew();
            for (var epoch = 0; epoch < o.Epochs; epoch++)
            {
                var phase = epoch < o.UnfreezeAfterEpochs ? FineTuningPhase.HeadOnly : FineTuningPhase.WholeNetwork;
                var phaseStart = phase == FineTuningPhase.HeadOnly ? 0 : Math.Min(o.UnfreezeAfterEpochs, o.Epochs);
                var phaseEpochs = phase == FineTuningPhase.HeadOnly ? Math.Min(o.UnfreezeAfterEpochs, o.Epochs) : o.Epochs - phaseStart;
                network.train();
                network.BackboneWithoutGradients = phase == FineTuningPhase.HeadOnly;
                if (phase == FineTuningPhase.HeadOnly)
                    network.Backbone.eval();
                torch.manual_seed(o.Seed + 1 + epoch);
                var random = new Random(unchecked((o.Seed * 1_000_003) + (epoch * 7_919) + 17));
                var order = rowIds.OrderBy(_ => random.Next()).ToArray();
                if (order.Length % o.BatchSize == 1 && order.Length > 1)
                    order = order[..^1]; // a batch of one cannot train BatchNorm
                var stepsPerEpoch = (order.Length + o.BatchSize - 1) / o.BatchSize;
                var phaseSteps = (long)stepsPerEpoch * phaseEpochs;
                var step = (long)(epoch - phaseStart) * stepsPerEpoch;
                var lossSum = 0.0;
                var taskLossSums = new double[tasks.Count];
                var taskBatches = new int[tasks.Count];
                var batches = 0;
                using (var producer = new BatchProducer(pixels, rowIds, order, o.BatchSize, augmenter.IsIdentity ? null : augmenter, random))
                {
                    foreach (var batch in producer.Batches())
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        var rate = o.LearningRate * LearningRateSchedules.Multiplier(LearningRateSchedule.OneCycle, step++, phaseSteps, stepsPerEpoch / 2);
                        var groups = optimizer.ParamGroups.ToList();
                        groups[0].LearningRate = rate * o.BackboneLearningRateFactor;
                        groups[1].LearningRate = rate;
                        using var scope = torch.NewDisposeScope();
                        var features = network.forward(tensor(batch.Images, [batch.Count, 3, o.ImageSize, o.ImageSize]));
                        var losses = TaskLosses(network.Heads, targets, features, batch.Labels);
                        var weighted = losses.Select(l => (l.Task, Loss: Weigh(network, targets.Tasks[l.Task], l.Task, l.Loss))).ToList();
                        optimizer.zero_grad();
                        if (o.Balancing == GradientBalancing.PCGrad && phase == FineTuningPhase.WholeNetwork && weighted.Count > 1)
                            PCGradBackward(shared, weighted.Select(w => w.Loss).ToList(), random);
                        else
                            weighted.Select(w => w.Loss).Aggregate((a, b) => a + b).backward();
                        optimizer.step();
                        foreach (var (t, loss) in losses)
                        {
                            taskLossSums[t] += loss.item<float>();
                            taskBatches[t]++;
                        }
                        lossSum += weighted.Sum(w => w.Loss.item<float>());
                        batches++;
                    }
                }

                var reports = validation.Count == 0 ? new Dictionary<string, TaskReport>()
                    : Evaluate(network, targets, validation, validationPixels, o);
                var mean = reports.Count == 0 ? double.NaN : reports.Values.Select(r => r.Score).Where(s => !double.IsNaN(s)).DefaultIfEmpty(double.NaN).Average();
                var isBest = reports.Count == 0 || mean > bestScore;
                if (reports.Count > 0)
                {
                    if (isBest)
                    {
                        bestScore = mean;
                        sinceBest = 0;
                        DisposeAll(best);
                        best = network.Snapshot();
                    }
                    else if (phase == FineTuningPhase.WholeNetwork)
                        sinceBest++;
                }
                var metrics = new MultiTaskEpochMetrics(epoch + 1, o.Epochs, phase, batches == 0 ? double.NaN : lossSum / batches,
                    Enumerable.Range(0, tasks.Count).ToDictionary(t => tasks[t].Name, t => taskBatches[t] == 0 ? double.NaN : taskLossSums[t] / taskBatches[t]),
                    Enumerable.Range(0, tasks.Count).ToDictionary(t => tasks[t].Name, t => EffectiveWeight(network, targets.Tasks[t], t)),
                    reports, mean, isBest, clock.Elapsed);
                history.Add(metrics);
                o.MetricsCallback?.Invoke(metrics);
                if (o.EarlyStoppingPatience > 0 && sinceBest >= o.EarlyStoppingPatience)
                    break;
            }
            if (best is not null)
                network.Restore(best);
            DisposeAll(best);
            network.eval();
            var heads = ExportHeads(network, targets);
            var graph = network.Backbone.ExportModel();
            return new MultiTaskFineTunedModel(graph, heads, o.ImageSize, history);
        }
        finally
        {
            network.Dispose();
        }
    }

    /// <summary>Per-task losses of a batch; a task without any label in the batch has no loss (missing labels are masked).</summary>
    internal static List<(int Task, Tensor Loss)> TaskLosses(IReadOnlyList<Linear> heads, TaskTargets targets, Tensor features, long[] rows)
    {
        var losses = new List<(int, Tensor)>();
        for (var t = 0; t < targets.Tasks.Count; t++)
        {
            var positions = new List<long>();
            for (var k = 0; k < rows.Length; k++)
                if (targets.Has(t, (int)rows[k]))
                    positions.Add(k);
            if (positions.Count == 0)
                continue;
            var selected = features.index_select(0, tensor(positions.ToArray()));
            var output = heads[t].forward(selected);
            var loss = targets.Tasks[t].Kind == TaskKind.Classification
                ? F.cross_entropy(output, tensor(positions.Select(k => (long)targets.Classes[t][rows[k]]).ToArray()))
                : F.mse_loss(output.squeeze(1), tensor(positions.Select(k => targets.Values[t][rows[k]]).ToArray()));
            losses.Add((t, loss));
        }
        return losses;
    }

    private double FixedWeight(ManifestTask task) =>
        _options.TaskWeights is not null && _options.TaskWeights.TryGetValue(task.Name, out var w) ? w : 1.0;

    private Tensor Weigh(MultiTaskNetwork network, ManifestTask task, int t, Tensor loss)
    {
        switch (_options.Weighting)
        {
            case LossWeighting.Fixed:
                return loss * FixedWeight(task);
            case LossWeighting.Uncertainty:
                // Kendall et al. 2018, eqs. 7 and 10 with s = log σ²: regression ½e^(−s)L + ½s, classification e^(−s)L + ½s.
                var s = network.LogVariances[t];
                var scale = task.Kind == TaskKind.Regression ? 0.5 : 1.0;
                return (torch.exp(-s) * loss * scale) + (s * 0.5);
            default:
                return loss;
        }
    }

    private double EffectiveWeight(MultiTaskNetwork network, ManifestTask task, int t)
    {
        if (_options.Weighting == LossWeighting.Fixed)
            return FixedWeight(task);
        if (_options.Weighting != LossWeighting.Uncertainty)
            return 1.0;
        using var noGrad = torch.no_grad();
        using var s = network.LogVariances[t];
        return Math.Exp(-s.item<float>()) * (task.Kind == TaskKind.Regression ? 0.5 : 1.0);
    }

    /// <summary>
    /// PCGrad (Yu et al. 2020): one backward pass per task for the shared parameters' gradient g_t; each g_t is projected
    /// onto the normal plane of every g_j (j ≠ t, random order) it conflicts with; the shared gradient is the sum of the
    /// projections. Head and log-variance gradients are task-specific and accumulate unchanged.
    /// </summary>
    private static void PCGradBackward(IReadOnlyList<Parameter> shared, IReadOnlyList<Tensor> losses, Random random)
    {
        var gradients = new List<Tensor>();
        for (var t = 0; t < losses.Count; t++)
        {
            using (torch.no_grad())
                foreach (var p in shared)
                    p.grad?.zero_();
            losses[t].backward(retain_graph: t < losses.Count - 1);
            gradients.Add(torch.cat(shared.Select(p => p.grad is { } g ? g.flatten() : torch.zeros(p.numel())).ToArray()).clone());
        }
        using var noGrad = torch.no_grad();
        using var total = Combine(gradients, random);
        long offset = 0;
        foreach (var p in shared)
        {
            var n = p.numel();
            if (p.grad is { } g)
                g.copy_(total.narrow(0, offset, n).view_as(p));
            offset += n;
        }
    }

    /// <summary>The PCGrad combination of per-task gradients (flattened): project away conflicts, then sum.</summary>
    internal static Tensor Combine(IReadOnlyList<Tensor> gradients, Random random)
    {
        using var noGrad = torch.no_grad();
        var squaredNorms = gradients.Select(g => g.dot(g).item<float>()).ToArray();
        var total = torch.zeros_like(gradients[0]);
        for (var t = 0; t < gradients.Count; t++)
        {
            using var projected = gradients[t].clone();
            foreach (var j in Enumerable.Range(0, gradients.Count).Where(j => j != t).OrderBy(_ => random.Next()).ToList())
            {
                var dot = projected.dot(gradients[j]).item<float>();
                if (dot < 0 && squaredNorms[j] > 0)
                    projected.sub_(gradients[j] * (dot / squaredNorms[j]));
            }
            total.add_(projected);
        }
        return total;
    }

    private static Dictionary<string, TaskReport> Evaluate(MultiTaskNetwork network, TaskTargets targets, IReadOnlyList<MultiLabelExample> validation,
        float[][] pixels, MultiTaskFineTuningOptions o)
    {
        var features = Features(network, pixels, o.ImageSize, o.BatchSize);
        var heads = ExportHeads(network, targets);
        return heads.Select((h, t) => (h.Task.Name, Report: h.Evaluate(features, validation.Select(e => e.Labels[t]).ToList(), targets.TrainCounts[t])))
            .ToDictionary(p => p.Name, p => p.Report, StringComparer.Ordinal);
    }

    /// <summary>Backbone features of decoded images in evaluation mode (restores the training mode afterwards).</summary>
    internal static float[][] Features(MultiTaskNetwork network, float[][] pixels, int imageSize, int batchSize)
    {
        var wasTraining = network.training;
        var withoutGradients = network.BackboneWithoutGradients;
        network.eval();
        using var noGrad = torch.no_grad();
        var result = new float[pixels.Length][];
        for (var start = 0; start < pixels.Length; start += batchSize)
        {
            using var scope = torch.NewDisposeScope();
            var count = Math.Min(batchSize, pixels.Length - start);
            var x = tensor(pixels.Skip(start).Take(count).SelectMany(p => p).ToArray(), [count, 3, imageSize, imageSize]);
            var flat = network.forward(x).contiguous().data<float>().ToArray();
            var d = flat.Length / count;
            for (var i = 0; i < count; i++)
                result[start + i] = flat.AsSpan(i * d, d).ToArray();
        }
        network.train(wasTraining);
        network.BackboneWithoutGradients = withoutGradients;
        return result;
    }

    /// <summary>The current heads as <see cref="TaskHead"/>s; regression heads are un-standardised (w·σ, b·σ + μ).</summary>
    private static List<TaskHead> ExportHeads(MultiTaskNetwork network, TaskTargets targets)
    {
        var heads = new List<TaskHead>();
        for (var t = 0; t < targets.Tasks.Count; t++)
        {
            using var weight = network.Heads[t].weight!.detach().contiguous();
            using var bias = network.Heads[t].bias!.detach().contiguous();
            var w = weight.data<float>().ToArray();
            var b = bias.data<float>().ToArray();
            var d = (int)weight.shape[1];
            var task = targets.Tasks[t];
            if (task.Kind == TaskKind.Classification)
                heads.Add(new TaskHead(task, new LinearHead(Enumerable.Range(0, b.Length).Select(k => w.AsSpan(k * d, d).ToArray()).ToArray(), b, task.Classes)));
            else
            {
                var (mean, std) = (targets.Mean[t], targets.Std[t]);
                heads.Add(new TaskHead(task, new RegressionHead(w.Select(v => (float)(v * std)).ToArray(), (float)((b[0] * std) + mean))));
            }
        }
        return heads;
    }

    private static void DisposeAll(Dictionary<string, Tensor>? tensors)
    {
        foreach (var t in tensors?.Values ?? Enumerable.Empty<Tensor>())
            t.Dispose();
    }

    /// <summary>Per-task targets of the training images: class indices (−1 = missing) or standardised values (NaN = missing).</summary>
    internal sealed class TaskTargets
    {
        public TaskTargets(IReadOnlyList<ManifestTask> tasks, IReadOnlyList<MultiLabelExample> train)
        {
            Tasks = tasks.Select((task, t) => task.Kind == TaskKind.Regression ? task
                : task with { Classes = train.Select(e => e.Labels[t]).Where(l => l.Length > 0).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray() }).ToList();
            Classes = new int[tasks.Count][];
            Values = new float[tasks.Count][];
            Mean = new double[tasks.Count];
            Std = new double[tasks.Count];
            TrainCounts = new int[tasks.Count];
            for (var t = 0; t < tasks.Count; t++)
            {
                var labels = train.Select(e => e.Labels[t]).ToList();
                TrainCounts[t] = labels.Count(l => l.Length > 0);
                if (Tasks[t].Kind == TaskKind.Classification)
                {
                    var index = Tasks[t].Classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i, StringComparer.Ordinal);
                    Classes[t] = labels.Select(l => l.Length > 0 ? index[l] : -1).ToArray();
                    continue;
                }
                var raw = labels.Select(l => ImageManifest.TryParseNumber(l, out var v) ? v : double.NaN).ToArray();
                var known = raw.Where(v => !double.IsNaN(v)).ToArray();
                Mean[t] = known.Average();
                Std[t] = Math.Max(Math.Sqrt(known.Select(v => (v - Mean[t]) * (v - Mean[t])).Average()), 1e-6);
                Values[t] = raw.Select(v => (float)((v - Mean[t]) / Std[t])).ToArray();
            }
        }

        public IReadOnlyList<ManifestTask> Tasks { get; }

        public int[][] Classes { get; }

        public float[][] Values { get; }

        public double[] Mean { get; }

        public double[] Std { get; }

        public int[] TrainCounts { get; }

        public bool Has(int task, int row) => Tasks[task].Kind == TaskKind.Classification ? Classes[task][row] >= 0 : !float.IsNaN(Values[task][row]);
    }
}
