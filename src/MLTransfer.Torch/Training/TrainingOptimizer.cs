using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLTransfer.Torch.Training;

/// <summary>The update rules the training loop offers.</summary>
public enum OptimizerKind
{
    /// <summary>Adam with decoupled weight decay (Loshchilov &amp; Hutter 2019, "Decoupled Weight Decay Regularization"): β = (0.9, 0.999), ε = 10⁻⁸.</summary>
    AdamW,

    /// <summary>Adam (Kingma &amp; Ba 2015) with weight decay added to the gradient (L2): β = (0.9, 0.999), ε = 10⁻⁸.</summary>
    Adam,

    /// <summary>Stochastic gradient descent with momentum 0.9 (Nesterov off, no dampening); weight decay is L2 added to the gradient.</summary>
    SgdMomentum,
}

/// <summary>A set of parameters that share a learning-rate multiplier and a weight decay.</summary>
/// <param name="Name">A stable name (checkpoints store the state by it).</param>
/// <param name="Parameters">The parameters, by stable names unique within the optimiser.</param>
/// <param name="RateMultiplier">The group's learning rate as a multiple of the loop's current rate (per-layer rates).</param>
/// <param name="WeightDecay">The group's weight decay.</param>
internal sealed record ParameterGroup(string Name, IReadOnlyList<(string Name, Parameter Parameter)> Parameters, double RateMultiplier, double WeightDecay);

/// <summary>
/// AdamW, Adam and SGD with momentum computed exactly as TorchSharp's <c>torch.optim</c> does, but with every libtorch
/// <see cref="TorchSharp.Scalar"/> held until its call returns (see <see cref="SafeScalars"/>), per-group rate multipliers,
/// and its state (step counts, moment buffers) exposed by name for checkpoints. A parameter without a gradient is skipped,
/// as in PyTorch.
/// </summary>
internal sealed class TrainingOptimizer : IDisposable
{
    private const double Beta1 = 0.9;
    private const double Beta2 = 0.999;
    private const double Epsilon = 1e-8;
    private const double Momentum = 0.9;

    private readonly OptimizerKind _kind;
    private readonly Dictionary<string, State> _state = new(StringComparer.Ordinal);

    public TrainingOptimizer(OptimizerKind kind, IReadOnlyList<ParameterGroup> groups)
    {
        _kind = kind;
        Groups = groups;
        var names = groups.SelectMany(g => g.Parameters.Select(p => p.Name)).ToList();
        if (names.Distinct(StringComparer.Ordinal).Count() != names.Count)
            throw new ArgumentException("Parameter names must be unique within an optimiser.", nameof(groups));
    }

    public IReadOnlyList<ParameterGroup> Groups { get; }

    /// <summary>The base learning rate of the last step (each group uses it times its multiplier).</summary>
    public double LearningRate { get; set; }

    /// <summary>Sets every gradient to zero (PyTorch's <c>zero_grad(set_to_none=False)</c>, as TorchSharp does).</summary>
    public void ZeroGrad()
    {
        foreach (var (_, p) in Groups.SelectMany(g => g.Parameters))
        {
            using var grad = p.grad;
            grad?.zero_();
        }
    }

    /// <summary>One update of every parameter that has a gradient.</summary>
    public void Step()
    {
        using var noGrad = no_grad();
        foreach (var group in Groups)
        {
            var rate = LearningRate * group.RateMultiplier;
            foreach (var (name, parameter) in group.Parameters)
            {
                using var scope = NewDisposeScope();
                var grad = parameter.grad;
                if (grad is null)
                    continue;
                if (!_state.TryGetValue(name, out var state))
                    _state[name] = state = new State(parameter, _kind);
                state.Steps++;
                switch (_kind)
                {
                    case OptimizerKind.SgdMomentum:
                        StepSgd(parameter, grad, state, rate, group.WeightDecay);
                        break;
                    default:
                        StepAdam(parameter, grad, state, rate, group.WeightDecay, decoupled: _kind == OptimizerKind.AdamW);
                        break;
                }
            }
        }
    }

    /// <summary>The state by stable names: <c>opt:{parameter}:{buffer}</c> tensors and the step count of each parameter.</summary>
    public (IEnumerable<(string Name, Tensor Tensor)> Tensors, Dictionary<string, long> Steps) SaveState() =>
        (_state.SelectMany(kv => kv.Value.Buffers().Select(b => ($"opt:{kv.Key}:{b.Name}", b.Tensor))),
         _state.ToDictionary(kv => kv.Key, kv => kv.Value.Steps, StringComparer.Ordinal));

    /// <summary>Restores what <see cref="SaveState"/> returned (the tensors are copied).</summary>
    public void LoadState(IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, long> steps)
    {
        DisposeState();
        var parameters = Groups.SelectMany(g => g.Parameters).ToDictionary(p => p.Name, p => p.Parameter, StringComparer.Ordinal);
        foreach (var (name, count) in steps)
        {
            if (!parameters.TryGetValue(name, out var parameter))
                throw new InvalidDataException($"The checkpoint has optimiser state for '{name}', which this network does not have.");
            var state = new State(parameter, _kind) { Steps = count };
            foreach (var (buffer, tensor) in state.Buffers())
            {
                if (!tensors.TryGetValue($"opt:{name}:{buffer}", out var saved) || !saved.shape.SequenceEqual(tensor.shape))
                    throw new InvalidDataException($"The checkpoint's optimiser state for '{name}' is missing or has another shape.");
                using var noGrad = no_grad();
                tensor.copy_(saved);
            }
            _state[name] = state;
        }
    }

    public void Dispose() => DisposeState();

    private void DisposeState()
    {
        foreach (var state in _state.Values)
            state.Dispose();
        _state.Clear();
    }

    private static void StepAdam(Parameter parameter, Tensor grad, State state, double rate, double weightDecay, bool decoupled)
    {
        if (decoupled)
            parameter.ScaleInPlace(1 - rate * weightDecay);
        else
            grad = WithWeightDecay(grad, parameter, weightDecay);
        var biasCorrection1 = 1 - Math.Pow(Beta1, state.Steps);
        var biasCorrection2 = 1 - Math.Pow(Beta2, state.Steps);
        state.First.ScaleInPlace(Beta1).AddScaledInPlace(grad, 1 - Beta1);
        state.Second!.ScaleInPlace(Beta2).AddProductInPlace(grad, grad, 1 - Beta2);
        var denominator = state.Second!.sqrt().DividedBy(Math.Sqrt(biasCorrection2)).PlusInPlace(Epsilon);
        parameter.AddQuotientInPlace(state.First, denominator, -rate / biasCorrection1);
    }

    private static void StepSgd(Parameter parameter, Tensor grad, State state, double rate, double weightDecay)
    {
        grad = WithWeightDecay(grad, parameter, weightDecay);
        // The buffer starts at zero, so the first step stores the gradient itself, as PyTorch does.
        state.First.ScaleInPlace(Momentum).AddScaledInPlace(grad, 1);
        parameter.AddScaledInPlace(state.First, -rate);
    }

    private static Tensor WithWeightDecay(Tensor grad, Parameter parameter, double weightDecay)
    {
        if (weightDecay == 0)
            return grad;
        using var alpha = weightDecay.ToScalar();
        return grad.add(parameter, alpha);
    }

    /// <summary>A parameter's step count and moment buffers (Adam: first and second moments; SGD: the momentum buffer).</summary>
    private sealed class State : IDisposable
    {
        private readonly OptimizerKind _kind;

        public State(Parameter parameter, OptimizerKind kind)
        {
            _kind = kind;
            First = zeros_like(parameter).DetachFromDisposeScope();
            if (kind != OptimizerKind.SgdMomentum)
                Second = zeros_like(parameter).DetachFromDisposeScope();
        }

        public long Steps { get; set; }

        public Tensor First { get; }

        public Tensor? Second { get; }

        public IEnumerable<(string Name, Tensor Tensor)> Buffers()
        {
            yield return (_kind == OptimizerKind.SgdMomentum ? "momentum" : "exp_avg", First);
            if (Second is not null)
                yield return ("exp_avg_sq", Second);
        }

        public void Dispose()
        {
            First.Dispose();
            Second?.Dispose();
        }
    }
}
