using MLTransfer.Evaluation;
using MLTransfer.Torch.Streaming;
using MLTransfer.Torch.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLTransfer.Torch.Tests.Training;

/// <summary>Rows of 4 numbers (two separable classes) with noise drawn from the item's generator when augmenting.</summary>
internal sealed class NoisyRows(int count, int delayMilliseconds = 0) : IRowSource
{
    public int Count => count;

    public long[] RowShape => [4];

    public int Fills;

    public void Fill(int index, Span<float> destination, Random? random)
    {
        Interlocked.Increment(ref Fills);
        if (delayMilliseconds > 0)
            Thread.Sleep(Random.Shared.Next(delayMilliseconds));
        var label = ToyObjective.Label(index);
        for (var k = 0; k < 4; k++)
            destination[k] = (float)(((label * 2) - 1) * (k + 1) * 0.5 + Math.Sin(index * 7.3 + k) + (random is null ? 0 : (random.NextDouble() - 0.5)));
    }
}

/// <summary>A tiny objective for testing the loop: a body layer and a head on <see cref="NoisyRows"/>.</summary>
internal sealed class ToyObjective : ITrainingObjective, IDisposable
{
    private readonly Linear _body;
    private readonly Linear _head;
    private readonly IRowSource? _validation;

    public ToyObjective(int count = 40, int validation = 10, IRowSource? rows = null, IRowSource? paired = null, double bodyMultiplier = 0.5, string runKey = "toy", int hidden = 4)
    {
        torch.manual_seed(1);
        _body = nn.Linear(4, hidden);
        _head = nn.Linear(hidden, 2);
        TrainRows = rows ?? new NoisyRows(count);
        PairedRows = paired;
        _validation = validation > 0 ? new NoisyRows(validation) : null;
        RunKey = runKey;
        ParameterGroups =
        [
            new ParameterGroup("body", [("body:weight", _body.weight!), ("body:bias", _body.bias!)], bodyMultiplier, 1e-4),
            new ParameterGroup("head", [("head:weight", _head.weight!), ("head:bias", _head.bias!)], 1, 1e-4),
        ];
    }

    public static int Label(int index) => index % 2;

    public string RunKey { get; }

    public IRowSource TrainRows { get; }

    public IRowSource? PairedRows { get; }

    public TrainingPhase BodyPhase => TrainingPhase.WholeNetwork;

    public IReadOnlyList<ParameterGroup> ParameterGroups { get; }

    /// <summary>Scores to return from <see cref="Validate"/>, by epoch (from 0); null scores the validation rows.</summary>
    public Func<int, double>? ScriptedScores { get; set; }

    /// <summary>The step (epoch, step) whose loss becomes NaN.</summary>
    public (int Epoch, int Step)? NaNAt { get; set; }

    public List<TrainingPhase> Phases { get; } = [];

    public List<(int Epoch, int Step, int[] Items, int[]? Paired, float[] Input)> Batches { get; } = [];

    private int _validations;

    /// <summary>Whether <see cref="StepWeights"/> and <see cref="StepStartWeights"/> are recorded.</summary>
    public bool RecordSteps { get; init; }

    /// <summary>The weights after every optimiser step (with <see cref="RecordSteps"/>).</summary>
    public List<float[]> StepWeights { get; } = [];

    /// <summary>The weights before every step (with <see cref="RecordSteps"/>).</summary>
    public List<float[]> StepStartWeights { get; } = [];

    /// <summary>The weights every validation pass saw.</summary>
    public List<float[]> ValidatedWeights { get; } = [];

    public IEnumerable<(string Name, Tensor Tensor)> StateTensors() =>
        ParameterGroups.SelectMany(g => g.Parameters).Select(p => (p.Name, (Tensor)p.Parameter));

    public void ConfigurePhase(TrainingPhase phase)
    {
        Phases.Add(phase);
        _body.weight!.requires_grad = phase != TrainingPhase.HeadOnly;
        _body.bias!.requires_grad = phase != TrainingPhase.HeadOnly;
    }

    public StepResult Step(LoadedBatch batch, StepContext context)
    {
        Batches.Add((context.Epoch, context.Step, batch.Items, batch.PairedItems, batch.Input.data<float>().ToArray()));
        if (RecordSteps)
            StepStartWeights.Add(Weights());
        var y = tensor(batch.Items.Select(i => (long)Label(i)).ToArray());
        var logits = _head.forward(F.relu(_body.forward(batch.Input)));
        var loss = F.cross_entropy(logits, y);
        if (NaNAt == (context.Epoch, context.Step))
            loss = loss * tensor(float.NaN);
        return new StepResult(loss, logits.argmax(1).eq(y).sum().item<long>());
    }

    public void AfterStep(StepContext context)
    {
        if (RecordSteps)
            StepWeights.Add(Weights());
    }

    public EpochValidation? Validate()
    {
        if (_validation is null)
            return null;
        ValidatedWeights.Add(Weights());
        var epoch = _validations++;
        if (ScriptedScores is { } scores)
            return new EpochValidation(scores(epoch), null, new Dictionary<string, TaskReport>());
        using var noGrad = no_grad();
        long correct = 0;
        foreach (var batch in BatchStream.Ordered(_validation, Enumerable.Range(0, _validation.Count).ToArray(), 8))
        {
            using (batch)
            using (NewDisposeScope())
            {
                var y = tensor(batch.Items.Select(i => (long)Label(i)).ToArray());
                correct += _head.forward(F.relu(_body.forward(batch.Input))).argmax(1).eq(y).sum().item<long>();
            }
        }
        return new EpochValidation((double)correct / _validation.Count, null, new Dictionary<string, TaskReport>());
    }

    public float[] Weights() => StateTensors().SelectMany(t => t.Tensor.data<float>().ToArray()).ToArray();

    public void Dispose()
    {
        _body.Dispose();
        _head.Dispose();
    }
}
