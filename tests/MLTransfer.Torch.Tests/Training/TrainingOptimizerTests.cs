using MLTransfer.Torch.Training;
using NUnit.Framework;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLTransfer.Torch.Tests.Training;

public class TrainingOptimizerTests
{
    [TestCase(OptimizerKind.AdamW)]
    [TestCase(OptimizerKind.Adam)]
    [TestCase(OptimizerKind.SgdMomentum)]
    public void Should_update_parameters_exactly_as_torch_optim_does(OptimizerKind kind)
    {
        const double Rate = 0.05, Decay = 0.01;
        torch.manual_seed(4);
        var start = torch.randn(3, 5);
        var target = torch.randn(3, 5);
        var ours = new Parameter(start.clone());
        var theirs = new Parameter(start.clone());
        using var optimizer = new TrainingOptimizer(kind, [new ParameterGroup("all", [("p", ours)], 1, Decay)]) { LearningRate = Rate };
        using var reference = kind switch
        {
            OptimizerKind.AdamW => (OptimizerHelper)torch.optim.AdamW([theirs], Rate, weight_decay: Decay),
            OptimizerKind.Adam => torch.optim.Adam([theirs], Rate, weight_decay: Decay),
            _ => torch.optim.SGD([theirs], Rate, momentum: 0.9, weight_decay: Decay),
        };
        for (var step = 0; step < 12; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.ZeroGrad();
            ((ours - target) * (ours - target)).sum().backward();
            optimizer.Step();
            reference.zero_grad();
            ((theirs - target) * (theirs - target)).sum().backward();
            reference.step();
        }
        Assert.That(ours.data<float>().ToArray(), Is.EqualTo(theirs.data<float>().ToArray()).Within(1e-6f));
        Assert.That(ours.data<float>().ToArray(), Is.Not.EqualTo(start.data<float>().ToArray()));
    }

    [Test]
    public void Should_skip_parameters_without_gradients_and_restore_its_state_by_name()
    {
        var trained = new Parameter(torch.ones(4));
        var frozen = new Parameter(torch.ones(4), requires_grad: false);
        using var optimizer = new TrainingOptimizer(OptimizerKind.AdamW, [new ParameterGroup("g", [("trained", trained), ("frozen", frozen)], 1, 0.1)]) { LearningRate = 0.1 };
        optimizer.ZeroGrad();
        (trained * frozen).sum().backward();
        optimizer.Step();
        Assert.That(frozen.data<float>().ToArray(), Is.All.EqualTo(1f), "no gradient, no update (and no weight decay)");
        var (tensors, steps) = optimizer.SaveState();
        Assert.That(steps, Is.EqualTo(new Dictionary<string, long> { ["trained"] = 1 }));
        var saved = tensors.ToDictionary(t => t.Name, t => t.Tensor.clone());

        using var restored = new TrainingOptimizer(OptimizerKind.AdamW, [new ParameterGroup("g", [("trained", trained), ("frozen", frozen)], 1, 0.1)]);
        restored.LoadState(saved, steps);
        Assert.That(restored.SaveState().Tensors.Select(t => t.Name), Is.EquivalentTo(saved.Keys));
        Assert.That(() => restored.LoadState(saved, new Dictionary<string, long> { ["missing"] = 1 }), Throws.InstanceOf<InvalidDataException>());
    }
}
