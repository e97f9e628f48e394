using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Heads;
using MLTransfer.Techniques.MultiTask;
using MLTransfer.Torch.Streaming;
using MLTransfer.Torch.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLTransfer.Torch.MultiTask;

/// <summary>
/// Multi-task fine-tuning's objective for the <see cref="TrainingLoop"/>: hard parameter sharing (Caruana 1997), one
/// backbone and one head per task; each task's loss (cross-entropy, or MSE on standardised targets) is computed on the
/// rows that have its label (missing labels are masked); the losses are combined with equal, fixed, uncertainty (Kendall
/// et al. 2018) or GradNorm (Chen et al. 2018) weights, optionally with PCGrad gradient surgery (Yu et al. 2020);
/// validation reports every task and the mean of their scores picks the best epoch.
/// </summary>
internal sealed class MultiTaskObjective : ITrainingObjective
{
    private readonly MultiTaskNetwork _network;
    private readonly TaskTargets _targets;
    private readonly IReadOnlyList<MultiLabelExample> _validation;
    private readonly IRowSource _validationRows;
    private readonly MultiTaskFineTuningOptions _options;
    private readonly IReadOnlyList<Parameter> _shared;

    public MultiTaskObjective(MultiTaskNetwork network, TaskTargets targets, IRowSource trainRows, IReadOnlyList<MultiLabelExample> validation, IRowSource validationRows,
        MultiTaskFineTuningOptions options, string runKey)
    {
        _network = network;
        _targets = targets;
        TrainRows = trainRows;
        _validation = validation;
        _validationRows = validationRows;
        _options = options;
        RunKey = runKey;
        var sharedNames = network.Backbone.TrainableParameters.Where(p => !network.FixedNames.Contains(p.Key)).ToList();
        _shared = sharedNames.Select(p => p.Value).ToList();
        var heads = network.Heads.SelectMany((h, t) => new[] { ($"head{t}:weight", h.weight!), ($"head{t}:bias", h.bias!) })
            .Append(("log_variances", network.LogVariances)).Append(("loss_weights", network.LossWeights)).ToList();
        ParameterGroups =
        [
            new ParameterGroup("backbone", sharedNames.Select(p => ("param:" + p.Key, p.Value)).ToList(), options.BackboneLearningRateFactor, options.WeightDecay),
            new ParameterGroup("heads", heads, 1, 0),
        ];
    }

    public string RunKey { get; }

    public IRowSource TrainRows { get; }

    public IRowSource? PairedRows => null;

    public TrainingPhase BodyPhase => TrainingPhase.WholeNetwork;

    public IReadOnlyList<ParameterGroup> ParameterGroups { get; }

    public IReadOnlyList<string> Tasks => _targets.Tasks.Select(t => t.Name).ToList();

    public IEnumerable<(string Name, Tensor Tensor)> StateTensors() => _network.StateTensors();

    public void ConfigurePhase(TrainingPhase phase)
    {
        _network.train();
        _network.BackboneWithoutGradients = phase == TrainingPhase.HeadOnly;
        if (phase == TrainingPhase.HeadOnly)
            _network.Backbone.eval();
    }

    public StepResult Step(LoadedBatch batch, StepContext context)
    {
        var features = _network.forward(batch.Input);
        var losses = TaskLosses(_network.Heads, _targets, features, batch.Items.Select(i => (long)i).ToArray());
        var gradNorm = _options.Weighting == LossWeighting.GradNorm && context.Phase != TrainingPhase.HeadOnly;
        var weighted = losses.Select(l => Weigh(l.Task, l.Loss)).ToList();
        var total = weighted.Aggregate((a, b) => a.Plus(b));
        var taskLosses = losses.ToDictionary(l => l.Task, l => (double)l.Loss.item<float>());
        var pcGrad = _options.Balancing == GradientBalancing.PCGrad && context.Phase == TrainingPhase.WholeNetwork && weighted.Count > 1;
        Action? backward = null;
        if (gradNorm || pcGrad)
            backward = () =>
            {
                if (gradNorm)
                    GradNormWeightGradient(losses, _network.LossWeights, _network.LastSharedWeight, _network.InitialLosses, _options.GradNormAlpha);
                if (pcGrad)
                    PCGradBackward(_shared, weighted, context.Random);
                else
                    total.backward();
            };
        return new StepResult(total, TaskLosses: taskLosses, Backward: backward);
    }

    public void AfterStep(StepContext context)
    {
        if (_options.Weighting != LossWeighting.GradNorm || context.Phase == TrainingPhase.HeadOnly)
            return;
        // Chen et al. 2018: renormalise so that the weights sum to the number of tasks (kept positive).
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var w = _network.LossWeights;
        var positive = w.AtLeast(1e-3);
        w.copy_(positive.Times(w.shape[0]).div(positive.sum()));
    }

    public IReadOnlyDictionary<string, double> TaskWeights() =>
        Enumerable.Range(0, _targets.Tasks.Count).ToDictionary(t => _targets.Tasks[t].Name, EffectiveWeight, StringComparer.Ordinal);

    public EpochValidation? Validate()
    {
        if (_validation.Count == 0)
            return null;
        var features = Features(_network, _validationRows, _options.BatchSize);
        var heads = ExportHeads(_network, _targets);
        var reports = heads.Select((h, t) => (h.Task.Name, Report: h.Evaluate(features, _validation.Select(e => e.Labels[t]).ToList(), _targets.TrainCounts[t])))
            .ToDictionary(p => p.Name, p => p.Report, StringComparer.Ordinal);
        var mean = reports.Values.Select(r => r.Score).Where(s => !double.IsNaN(s)).DefaultIfEmpty(double.NaN).Average();
        return new EpochValidation(mean, null, reports);
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

    /// <summary>The PCGrad combination of per-task gradients (flattened): project away conflicts, then sum.</summary>
    internal static Tensor Combine(IReadOnlyList<Tensor> gradients, Random random)
    {
        using var noGrad = no_grad();
        var squaredNorms = gradients.Select(g => g.dot(g).item<float>()).ToArray();
        var total = zeros_like(gradients[0]);
        for (var t = 0; t < gradients.Count; t++)
        {
            using var projected = gradients[t].clone();
            foreach (var j in Enumerable.Range(0, gradients.Count).Where(j => j != t).OrderBy(_ => random.Next()).ToList())
            {
                var dot = projected.dot(gradients[j]).item<float>();
                if (dot < 0 && squaredNorms[j] > 0)
                    projected.sub_(gradients[j].Times(dot / squaredNorms[j]));
            }
            total.PlusInPlace(projected);
        }
        return total;
    }

    /// <summary>Backbone features [N, D] of rows in evaluation mode (restores the training mode afterwards).</summary>
    internal static float[][] Features(MultiTaskNetwork network, IRowSource rows, int batchSize)
    {
        var wasTraining = network.training;
        var withoutGradients = network.BackboneWithoutGradients;
        network.eval();
        var result = new float[rows.Count][];
        using (no_grad())
        {
            foreach (var batch in BatchStream.Ordered(rows, Enumerable.Range(0, rows.Count).ToArray(), batchSize))
            {
                using (batch)
                using (NewDisposeScope())
                {
                    var flat = network.forward(batch.Input).contiguous().data<float>().ToArray();
                    var d = flat.Length / batch.Count;
                    for (var k = 0; k < batch.Count; k++)
                        result[batch.Items[k]] = flat.AsSpan(k * d, d).ToArray();
                }
            }
        }
        network.train(wasTraining);
        network.BackboneWithoutGradients = withoutGradients;
        return result;
    }

    /// <summary>The current heads as <see cref="TaskHead"/>s; regression heads are un-standardised (w·σ, b·σ + μ).</summary>
    internal static List<TaskHead> ExportHeads(MultiTaskNetwork network, TaskTargets targets)
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

    private double FixedWeight(ManifestTask task) =>
        _options.TaskWeights is not null && _options.TaskWeights.TryGetValue(task.Name, out var w) ? w : 1.0;

    private Tensor Weigh(int t, Tensor loss)
    {
        var task = _targets.Tasks[t];
        switch (_options.Weighting)
        {
            case LossWeighting.Fixed:
                return loss.Times(FixedWeight(task));
            case LossWeighting.Uncertainty:
                // Kendall et al. 2018, eqs. 7 and 10 with s = log σ²: regression ½e^(−s)L + ½s, classification e^(−s)L + ½s.
                var s = _network.LogVariances[t];
                var scale = task.Kind == TaskKind.Regression ? 0.5 : 1.0;
                return (exp(-s) * loss).Times(scale).Plus(s.Times(0.5));
            case LossWeighting.GradNorm:
                return _network.LossWeights[t].detach() * loss;
            default:
                return loss;
        }
    }

    private double EffectiveWeight(int t)
    {
        var task = _targets.Tasks[t];
        using var noGrad = no_grad();
        switch (_options.Weighting)
        {
            case LossWeighting.Fixed:
                return FixedWeight(task);
            case LossWeighting.Uncertainty:
                {
                    using var s = _network.LogVariances[t];
                    return Math.Exp(-s.item<float>()) * (task.Kind == TaskKind.Regression ? 0.5 : 1.0);
                }
            case LossWeighting.GradNorm:
                {
                    using var w = _network.LossWeights[t];
                    return w.item<float>();
                }
            default:
                return 1.0;
        }
    }

    /// <summary>
    /// GradNorm's update of the task weights (Chen et al. 2018, eq. 2): with g_t = ‖∇_W L_t‖ on the last shared layer W,
    /// G_t = w_t·g_t, loss ratios L̃_t = L_t/L_t(0) and r_t = L̃_t / mean(L̃), the weights' gradient is that of
    /// Σ_t |G_t − mean(G)·r_t^α| with the target held constant, i.e. sign(G_t − target_t)·g_t. Tasks missing from the
    /// batch get no gradient.
    /// </summary>
    internal static void GradNormWeightGradient(IReadOnlyList<(int Task, Tensor Loss)> losses, Parameter weights, Tensor lastShared, Tensor initial, double alpha)
    {
        var norms = new double[losses.Count];
        for (var i = 0; i < losses.Count; i++)
        {
            var grad = autograd.grad([losses[i].Loss], [lastShared], retain_graph: true)[0];
            norms[i] = grad.norm().item<float>();
        }
        var w = weights.detach().data<float>().ToArray();
        var ratios = new double[losses.Count];
        for (var i = 0; i < losses.Count; i++)
        {
            var (t, loss) = losses[i];
            var value = loss.item<float>();
            using var l0 = initial[t];
            var first = l0.item<float>();
            if (float.IsNaN(first))
            {
                using (no_grad())
                    l0.copy_(tensor(value));
                first = value;
            }
            ratios[i] = first > 0 && value >= 0 ? value / first : 1;
        }
        var meanRatio = ratios.Average();
        var g = losses.Select((l, i) => w[l.Task] * norms[i]).ToArray();
        var meanG = g.Average();
        var gradient = new float[w.Length];
        for (var i = 0; i < losses.Count; i++)
        {
            var target = meanG * Math.Pow(ratios[i] / Math.Max(meanRatio, 1e-12), alpha);
            var difference = g[i] - target;
            gradient[losses[i].Task] = double.IsFinite(difference) ? (float)(Math.Sign(difference) * norms[i]) : 0f;
        }
        using var enableGrad = enable_grad();
        using var surrogate = (weights * tensor(gradient)).sum();
        surrogate.backward(); // the weights appear only here (the task losses use them detached), so their gradient is exactly `gradient`
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
            using (no_grad())
                foreach (var p in shared)
                    p.grad?.zero_();
            losses[t].backward(retain_graph: t < losses.Count - 1);
            gradients.Add(cat(shared.Select(p => p.grad is { } g ? g.flatten() : zeros(p.numel())).ToArray()).clone());
        }
        using var noGrad = no_grad();
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
