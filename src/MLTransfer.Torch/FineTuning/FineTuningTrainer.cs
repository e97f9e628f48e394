using System.Diagnostics;
using System.Globalization;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Torch.Onnx;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLTransfer.Torch.FineTuning;

/// <summary>
/// Fine-tunes a pretrained image backbone (by default ResNet18, shipped by the Microsoft.ML.DnnImageFeaturizer.ResNet18
/// package) together with a new linear head, with TorchSharp on the CPU. See <see cref="FineTuningOptions"/> for the
/// recipe: gradual unfreezing and discriminative learning rates (Howard &amp; Ruder 2018, "Universal Language Model
/// Fine-tuning for Text Classification"), one-cycle or cosine schedules (Smith 2018), augmentation, label smoothing,
/// early stopping, checkpoints and resuming, and training only the top blocks on cached lower-block outputs.
/// </summary>
public sealed class FineTuningTrainer
{
    private readonly FineTuningOptions _options;

    /// <summary>Creates a trainer.</summary>
    /// <param name="options">The options; null uses the defaults.</param>
    public FineTuningTrainer(FineTuningOptions? options = null)
    {
        _options = options ?? new FineTuningOptions();
        _options.Validate();
    }

    /// <summary>
    /// Fine-tunes on <paramref name="train"/>; class labels are sorted ordinally to fix their order. Without
    /// <paramref name="validation"/>, <see cref="FineTuningOptions.ValidationFraction"/> of each class is held out.
    /// </summary>
    /// <param name="train">The labelled training images.</param>
    /// <param name="validation">An explicit validation set; null splits one off <paramref name="train"/>.</param>
    /// <param name="cancellationToken">Stops training between batches.</param>
    /// <returns>The fine-tuned model (weights of the best validation epoch when there is a validation set).</returns>
    public FineTunedModel Fit(IReadOnlyList<ImageExample> train, IReadOnlyList<ImageExample>? validation = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(train);
        validation ??= _options.Validation;
        if (validation is null && _options.ValidationFraction > 0)
        {
            (train, validation) = ImageFolder.StratifiedSplit(train, _options.ValidationFraction, _options.Seed);
        }

        validation ??= [];
        var all = train.Concat(validation).ToList();
        string[] classNames = train.Select(i => i.Label).Distinct().Order(StringComparer.Ordinal).ToArray();
        if (classNames.Length < 2)
        {
            throw new ArgumentException("Fine-tuning needs images of at least two classes.", nameof(train));
        }

        var index = classNames.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i, StringComparer.Ordinal);
        var unknown = validation.FirstOrDefault(e => !index.ContainsKey(e.Label));
        if (unknown is not null)
        {
            throw new ArgumentException($"Validation image '{unknown.ImagePath}' has label '{unknown.Label}', which no training image has.", nameof(validation));
        }

        float[][] pixels = ImagePixelReader.Read(all.Select(i => i.ImagePath).ToArray(), _options.ImageSize);
        return Fit(pixels, all.Select(i => index[i.Label]).ToArray(), classNames, train.Count, cancellationToken);
    }

    /// <summary>Fine-tunes on decoded images: the first <paramref name="trainCount"/> train, the rest validate.</summary>
    internal FineTunedModel Fit(float[][] pixels, int[] labels, string[] classNames, int trainCount, CancellationToken cancellationToken)
    {
        var o = _options;
        torch.set_num_threads(o.Threads ?? Environment.ProcessorCount);
        torch.manual_seed(o.Seed);
        int[] trainIndices = Enumerable.Range(0, trainCount).ToArray();
        int[] validationIndices = Enumerable.Range(trainCount, labels.Length - trainCount).ToArray();

        var description = o.Backbone ?? Backbone.ResNet18();
        var split = BackboneBlocks.Import(description, o.ImageSize);
        var backbone = split.Backbone;
        var network = new FineTuningNetwork(split, description.FeatureSize, classNames.Length);
        try
        {
            backbone.FreezeBatchNormStatistics = o.BatchNormMode == BatchNormMode.Frozen;

            // Inputs of the trained part: pixels, or the frozen lower blocks' outputs computed once.
            IReadOnlyList<float[]> inputs = pixels;
            long[] sampleShape = [3, o.ImageSize, o.ImageSize];
            int firstTrainedBlock = 0;
            if (o.TrainTopBlocksOnly)
            {
                firstTrainedBlock = split.FirstTrainedBlock(o.TopBlocks);
                string cut = split.Cut(o.TopBlocks);
                (inputs, sampleShape) = split.CacheOutputs(pixels, cut, o.BatchSize);
                network.InputValue = cut;
            }

            var optimizer = CreateOptimizer(network, o);
            string runKey = string.Join(
                ";",
                string.Join("|", classNames),
                o.ImageSize.ToString(CultureInfo.InvariantCulture),
                o.Seed.ToString(CultureInfo.InvariantCulture),
                trainIndices.Length.ToString(CultureInfo.InvariantCulture),
                validationIndices.Length.ToString(CultureInfo.InvariantCulture),
                o.TrainTopBlocksOnly ? "top" + o.TopBlocks.ToString(CultureInfo.InvariantCulture) : "all",
                o.Optimizer.ToString(),
                description.Identity);

            var state = new FineTuningCheckpointState { RunKey = runKey };
            Dictionary<string, Tensor>? best = null;
            if (o.Resume && File.Exists(FineTuningCheckpoint.PathIn(o.CheckpointDirectory!)))
            {
                var (saved, savedNetwork, savedBest) = FineTuningCheckpoint.Load(o.CheckpointDirectory!, optimizer);
                if (saved.RunKey != runKey)
                {
                    throw new InvalidOperationException($"The checkpoint in {o.CheckpointDirectory} belongs to another run ({saved.RunKey}), not to {runKey}.");
                }

                network.LoadStateTensors(savedNetwork);
                DisposeAll(savedNetwork);
                state = saved;
                best = savedBest.Count > 0 ? savedBest : null;
            }

            var augmenter = new ImageAugmenter(o.ImageSize, o.RandomResizedCropMinScale, o.RandomResizedCropMaxScale, o.HorizontalFlip, o.ColorJitter);
            bool augment = !o.TrainTopBlocksOnly && !augmenter.IsIdentity;
            var clock = Stopwatch.StartNew();
            for (int epoch = state.CompletedEpochs; epoch < o.Epochs && !state.Stopped; epoch++)
            {
                var epochClock = Stopwatch.StartNew();
                FineTuningPhase phase = epoch < o.UnfreezeAfterEpochs ? FineTuningPhase.HeadOnly
                    : o.TrainTopBlocksOnly ? FineTuningPhase.TopBlocks : FineTuningPhase.WholeNetwork;
                int phaseStart = phase == FineTuningPhase.HeadOnly ? 0 : Math.Min(o.UnfreezeAfterEpochs, o.Epochs);
                int phaseEpochs = phase == FineTuningPhase.HeadOnly ? Math.Min(o.UnfreezeAfterEpochs, o.Epochs) : o.Epochs - phaseStart;
                ConfigurePhase(network, phase, firstTrainedBlock);

                torch.manual_seed(o.Seed + 1 + epoch);
                var random = new Random(unchecked((o.Seed * 1_000_003) + (epoch * 7_919) + 17));
                int[] order = Shuffle(trainIndices, random);
                if (order.Length % o.BatchSize == 1 && order.Length > 1)
                {
                    order = order[..^1]; // a batch of one cannot train BatchNorm
                }

                int stepsPerEpoch = (order.Length + o.BatchSize - 1) / o.BatchSize;
                long phaseSteps = (long)stepsPerEpoch * phaseEpochs;
                long warmupSteps = (long)Math.Round(o.WarmupEpochs * stepsPerEpoch);
                long step = (long)(epoch - phaseStart) * stepsPerEpoch;
                double lossSum = 0, headLearningRate = 0;
                long correct = 0, seen = 0;

                using (var producer = new BatchProducer(inputs, labels, order, o.BatchSize, augment ? augmenter : null, random))
                {
                    foreach (var batch in producer.Batches())
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        headLearningRate = o.LearningRate * LearningRateSchedules.Multiplier(o.Schedule, step++, phaseSteps, warmupSteps);
                        SetLearningRates(optimizer, headLearningRate, o.LayerLearningRateDecay);
                        using var scope = torch.NewDisposeScope();
                        var x = torch.tensor(batch.Images, [batch.Count, .. sampleShape]);
                        var y = torch.tensor(batch.Labels);
                        var logits = network.forward(x);
                        var loss = F.cross_entropy(logits, y, label_smoothing: o.LabelSmoothing);
                        optimizer.zero_grad();
                        loss.backward();
                        optimizer.step();
                        lossSum += loss.item<float>() * batch.Count;
                        correct += logits.argmax(1).eq(y).sum().item<long>();
                        seen += batch.Count;
                    }
                }

                double trainSeconds = epochClock.Elapsed.TotalSeconds;
                double? validationLoss = null, validationAccuracy = null;
                if (validationIndices.Length > 0)
                {
                    (validationLoss, validationAccuracy) = Evaluate(network, inputs, labels, validationIndices, sampleShape, o.BatchSize);
                }

                bool isBest = validationAccuracy is null || validationAccuracy > state.BestAccuracy;
                if (validationAccuracy is { } accuracy)
                {
                    if (isBest)
                    {
                        state.BestAccuracy = accuracy;
                        state.EpochsWithoutImprovement = 0;
                        DisposeAll(best);
                        best = network.StateTensors().ToDictionary(p => p.Name, p => p.Tensor.detach().clone().DetachFromDisposeScope(), StringComparer.Ordinal);
                    }
                    else if (phase != FineTuningPhase.HeadOnly)
                    {
                        state.EpochsWithoutImprovement++;
                    }

                    state.Stopped = o.EarlyStoppingPatience > 0 && state.EpochsWithoutImprovement >= o.EarlyStoppingPatience;
                }

                var metrics = new FineTuningEpochMetrics(
                    epoch + 1,
                    o.Epochs,
                    phase,
                    seen > 0 ? lossSum / seen : double.NaN,
                    seen > 0 ? (double)correct / seen : double.NaN,
                    validationLoss,
                    validationAccuracy,
                    headLearningRate,
                    seen / Math.Max(trainSeconds, 1e-9),
                    clock.Elapsed,
                    state.Stopped ? TimeSpan.Zero : epochClock.Elapsed * (o.Epochs - epoch - 1),
                    isBest);
                state.History.Add(metrics);
                state.CompletedEpochs = epoch + 1;
                if (o.CheckpointDirectory is not null)
                {
                    FineTuningCheckpoint.Save(o.CheckpointDirectory, state, network.StateTensors(), best, optimizer);
                }

                o.MetricsCallback?.Invoke(metrics);
            }

            if (best is not null)
            {
                network.LoadStateTensors(best);
            }

            DisposeAll(best);
            optimizer.Dispose();
            return new FineTunedModel(network, classNames, o.ImageSize, state.History);
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    private static void ConfigurePhase(FineTuningNetwork network, FineTuningPhase phase, int firstTrainedBlock)
    {
        network.Split.TrainOnly(phase switch
        {
            FineTuningPhase.HeadOnly => [],
            FineTuningPhase.TopBlocks => network.Split.ParametersFrom(firstTrainedBlock),
            _ => network.Split.ParametersFrom(0),
        });
        network.BackboneWithoutGradients = phase == FineTuningPhase.HeadOnly;
        network.train();
        if (phase == FineTuningPhase.HeadOnly)
        {
            network.Backbone.eval();
        }
    }

    private static OptimizerHelper CreateOptimizer(FineTuningNetwork network, FineTuningOptions o)
    {
        // One parameter group per backbone block (bottom first), then the head; rates are set at every step.
        var groups = network.Blocks
            .Select(block => block.Select(n => network.Backbone.TrainableParameters[n]).ToList())
            .Append([network.Head.weight!, network.Head.bias!])
            .ToList();
        return o.Optimizer switch
        {
            FineTuningOptimizer.SgdMomentum => torch.optim.SGD(
                groups.Select(g => new SGD.ParamGroup(g, lr: o.LearningRate, momentum: 0.9, weight_decay: o.WeightDecay)),
                o.LearningRate,
                momentum: 0.9,
                weight_decay: o.WeightDecay),
            _ => torch.optim.AdamW(
                groups.Select(g => new AdamW.ParamGroup(g, lr: o.LearningRate, weight_decay: o.WeightDecay)),
                o.LearningRate,
                weight_decay: o.WeightDecay),
        };
    }

    /// <summary>Head at the full rate; block k from the top (k = 1 for the top block) at rate × decay^k.</summary>
    private static void SetLearningRates(OptimizerHelper optimizer, double headRate, double decay)
    {
        var groups = optimizer.ParamGroups.ToList();
        int blocks = groups.Count - 1;
        for (int i = 0; i < groups.Count; i++)
        {
            groups[i].LearningRate = headRate * Math.Pow(decay, blocks - i);
        }
    }

    private static (double Loss, double Accuracy) Evaluate(FineTuningNetwork network, IReadOnlyList<float[]> inputs, int[] labels, int[] indices, long[] sampleShape, int batchSize)
    {
        bool wasTraining = network.training;
        network.eval();
        using var noGrad = torch.no_grad();
        double lossSum = 0;
        long correct = 0;
        for (int start = 0; start < indices.Length; start += batchSize)
        {
            using var scope = torch.NewDisposeScope();
            int count = Math.Min(batchSize, indices.Length - start);
            var batch = indices.AsSpan(start, count).ToArray();
            var x = torch.tensor(batch.SelectMany(i => inputs[i]).ToArray(), [count, .. sampleShape]);
            var y = torch.tensor(batch.Select(i => (long)labels[i]).ToArray());
            var logits = network.forward(x);
            lossSum += F.cross_entropy(logits, y).item<float>() * count;
            correct += logits.argmax(1).eq(y).sum().item<long>();
        }

        network.train(wasTraining);
        return (lossSum / indices.Length, (double)correct / indices.Length);
    }

    private static int[] Shuffle(int[] items, Random random)
    {
        int[] copy = (int[])items.Clone();
        for (int i = copy.Length - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (copy[i], copy[j]) = (copy[j], copy[i]);
        }

        return copy;
    }

    private static void DisposeAll(Dictionary<string, Tensor>? tensors)
    {
        if (tensors is null)
        {
            return;
        }

        foreach (var t in tensors.Values)
        {
            t.Dispose();
        }
    }
}
