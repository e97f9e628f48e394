using MLTransfer.Torch.Streaming;
using MLTransfer.Torch.Training;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLTransfer.Torch.FineTuning;

/// <summary>
/// Fine-tuning's objective for the <see cref="TrainingLoop"/>: the imported backbone and a new linear head, cross-entropy
/// with label smoothing (Szegedy et al. 2016) and optional mixup/CutMix of each batch (<see cref="BatchMix"/>), one parameter group per backbone block with discriminative rates
/// (block k from the top at LearningRate × decay^k; Howard &amp; Ruder 2018), the head alone first, then the whole network
/// or its top blocks; validation accuracy picks the best epoch.
/// </summary>
internal sealed class FineTuningObjective : ITrainingObjective
{
    private readonly FineTuningNetwork _network;
    private readonly int[] _labels;
    private readonly IRowSource? _validationRows;
    private readonly int[] _validationLabels;
    private readonly FineTuningOptions _options;
    private readonly int _firstTrainedBlock;

    public FineTuningObjective(FineTuningNetwork network, IRowSource trainRows, int[] labels, IRowSource? validationRows, int[] validationLabels,
        FineTuningOptions options, int firstTrainedBlock, string runKey)
    {
        _network = network;
        TrainRows = trainRows;
        _labels = labels;
        _validationRows = validationRows;
        _validationLabels = validationLabels;
        _options = options;
        _firstTrainedBlock = firstTrainedBlock;
        RunKey = runKey;
        var blocks = network.Blocks.Count;
        ParameterGroups = network.Blocks
            .Select((block, i) => new ParameterGroup($"block{i}", block.Select(n => ("param:" + n, network.Backbone.TrainableParameters[n])).ToList(),
                Math.Pow(options.LayerLearningRateDecay, blocks - i), options.WeightDecay))
            .Append(new ParameterGroup("head", [("head:weight", network.Head.weight!), ("head:bias", network.Head.bias!)], 1, options.WeightDecay))
            .ToList();
    }

    public string RunKey { get; }

    public IRowSource TrainRows { get; }

    public IRowSource? PairedRows => null;

    public TrainingPhase BodyPhase => _options.TrainTopBlocksOnly ? TrainingPhase.TopBlocks : TrainingPhase.WholeNetwork;

    public IReadOnlyList<ParameterGroup> ParameterGroups { get; }

    public IEnumerable<(string Name, Tensor Tensor)> StateTensors() => _network.StateTensors();

    public void ConfigurePhase(TrainingPhase phase)
    {
        _network.Split.TrainOnly(phase switch
        {
            TrainingPhase.HeadOnly => [],
            TrainingPhase.TopBlocks => _network.Split.ParametersFrom(_firstTrainedBlock),
            _ => _network.Split.ParametersFrom(0),
        });
        _network.BackboneWithoutGradients = phase == TrainingPhase.HeadOnly;
        _network.train();
        if (phase == TrainingPhase.HeadOnly)
            _network.Backbone.eval();
    }

    public StepResult Step(LoadedBatch batch, StepContext context)
    {
        var y = tensor(batch.Items.Select(i => (long)_labels[i]).ToArray());
        var shape = batch.Input.shape;
        var mix = BatchMix.Draw(context.Random, batch.Count, shape.Length == 4 ? (int)shape[2] : 0, shape.Length == 4 ? (int)shape[3] : 0,
            _options.MixupAlpha, _options.CutMixAlpha);
        var logits = _network.forward(mix.Apply(batch.Input));
        return new StepResult(mix.Loss(logits, y, _options.LabelSmoothing), mix.Correct(logits, y));
    }

    public EpochValidation? Validate()
    {
        if (_validationRows is null || _validationRows.Count == 0)
            return null;
        var wasTraining = _network.training;
        _network.eval();
        double lossSum = 0;
        long correct = 0;
        using (no_grad())
        {
            foreach (var batch in BatchStream.Ordered(_validationRows, Enumerable.Range(0, _validationRows.Count).ToArray(), _options.BatchSize, _options.DataThreads ?? 0))
            {
                using (batch)
                using (NewDisposeScope())
                {
                    var y = tensor(batch.Items.Select(i => (long)_validationLabels[i]).ToArray());
                    var logits = _network.forward(batch.Input);
                    lossSum += F.cross_entropy(logits, y).item<float>() * batch.Count;
                    correct += logits.argmax(1).eq(y).sum().item<long>();
                }
            }
        }
        _network.train(wasTraining);
        var n = _validationRows.Count;
        return new EpochValidation((double)correct / n, lossSum / n, new Dictionary<string, Evaluation.TaskReport>());
    }
}
