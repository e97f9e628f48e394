using TorchSharp;
using static TorchSharp.torch;

namespace MLTransfer.Torch.Training;

/// <summary>
/// An exponential moving average of the trained state (Polyak &amp; Juditsky 1992; timm's <c>ModelEmaV2</c>, Keras'
/// <c>use_ema</c>): after every optimiser step each state tensor's average moves towards its current value,
/// a ← d·a + (1 − d)·w, with d = min(decay, (1 + n)/(10 + n)) after n updates, so the first steps do not tie the average
/// to the initial weights. BatchNorm's running statistics are averaged with the weights. Validation, the best-epoch
/// snapshot and the final network use the average; training continues on the live weights.
/// </summary>
internal sealed class WeightAverage : IDisposable
{
    private readonly double _decay;
    private readonly List<(string Name, Tensor Live, Tensor Average)> _tensors;

    /// <summary>Starts the average at the current state.</summary>
    /// <param name="decay">The per-step decay d, in (0, 1).</param>
    /// <param name="state">The network's state tensors.</param>
    public WeightAverage(double decay, IEnumerable<(string Name, Tensor Tensor)> state)
    {
        if (!(decay is > 0 and < 1))
            throw new ArgumentOutOfRangeException(nameof(decay), decay, "must be in (0, 1).");
        _decay = decay;
        using var noGrad = torch.no_grad();
        _tensors = state.Select(p => (p.Name, p.Tensor, p.Tensor.detach().clone().DetachFromDisposeScope())).ToList();
    }

    /// <summary>Updates so far (saved in checkpoints: the decay's warm-up depends on it).</summary>
    public long Updates { get; private set; }

    /// <summary>The averaged tensors by name (for checkpoints and snapshots; owned by this object).</summary>
    public IEnumerable<(string Name, Tensor Tensor)> Averages => _tensors.Select(t => (t.Name, t.Average));

    /// <summary>Moves the average one step towards the live weights.</summary>
    public void Update()
    {
        var decay = Math.Min(_decay, (1.0 + Updates) / (10.0 + Updates));
        using var noGrad = torch.no_grad();
        using var keep = decay.ToScalar();
        using var weight = (1 - decay).ToScalar();
        foreach (var (_, live, average) in _tensors)
            average.mul_(keep).add_(live, weight);
        Updates++;
    }

    /// <summary>Restores a saved average (the checkpoint's tensors and update count).</summary>
    public void Load(IReadOnlyDictionary<string, Tensor> averages, long updates)
    {
        TrainingLoop.Copy(averages, Averages);
        Updates = updates;
    }

    /// <summary>Puts the average into the network until the returned scope is disposed, which puts the live weights back.</summary>
    public IDisposable Applied()
    {
        var live = _tensors.Select(t => (t.Name, t.Live)).ToList();
        var saved = TrainingLoop.Snapshot(live);
        CopyIntoNetwork();
        return new Restore(saved, live);
    }

    /// <summary>Leaves the average in the network for good.</summary>
    public void CopyIntoNetwork()
    {
        using var noGrad = torch.no_grad();
        foreach (var (_, live, average) in _tensors)
            live.copy_(average);
    }

    public void Dispose()
    {
        foreach (var (_, _, average) in _tensors)
            average.Dispose();
    }

    private sealed class Restore(Dictionary<string, Tensor> saved, List<(string Name, Tensor Live)> live) : IDisposable
    {
        public void Dispose()
        {
            TrainingLoop.Copy(saved, live);
            TrainingLoop.DisposeAll(saved);
        }
    }
}
