using MLTransfer.Torch.Training;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLTransfer.Torch.Tests.Training;

public class BatchMixTests
{
    [Test]
    public void Should_mix_each_row_with_its_partner_by_lambda_and_mix_the_two_losses_alike()
    {
        torch.manual_seed(1);
        using var input = torch.randn(6, 3, 4, 4);
        using var logits = torch.randn(6, 5);
        using var labels = torch.tensor(new long[] { 0, 1, 2, 3, 4, 0 });
        var mix = BatchMix.Draw(new Random(7), 6, 4, 4, mixupAlpha: 0.4, cutMixAlpha: 0);

        Assert.That(mix.Kind, Is.EqualTo(BatchMixKind.Mixup));
        Assert.That(mix.Lambda, Is.InRange(0.0, 1.0));
        Assert.That(mix.Partner.Order(), Is.EqualTo(Enumerable.Range(0, 6).Select(i => (long)i)), "the partners are a permutation of the batch");
        using var mixed = mix.Apply(input);
        for (var row = 0; row < 6; row++)
        {
            var expected = input[row].mul((float)mix.Lambda).add(input[mix.Partner[row]].mul((float)(1 - mix.Lambda)));
            Assert.That(mixed[row].allclose(expected, rtol: 1e-5, atol: 1e-6), $"row {row}");
        }

        var partners = torch.tensor(mix.Partner.Select(p => labels[p].item<long>()).ToArray());
        var expectedLoss = mix.Lambda * F.cross_entropy(logits, labels, label_smoothing: 0.1).item<float>()
            + (1 - mix.Lambda) * F.cross_entropy(logits, partners, label_smoothing: 0.1).item<float>();
        Assert.That(mix.Loss(logits, labels, 0.1).item<float>(), Is.EqualTo(expectedLoss).Within(1e-5));
    }

    [Test]
    public void Should_paste_a_box_of_the_partner_and_set_lambda_to_the_share_kept()
    {
        // Row r is filled with r + 1, so every element says where it came from.
        using var input = torch.arange(1, 5, dtype: float32).reshape(4, 1, 1, 1).expand(4, 2, 10, 10).contiguous();
        for (var seed = 0; seed < 20; seed++)
        {
            var mix = BatchMix.Draw(new Random(seed), 4, 10, 10, mixupAlpha: 0, cutMixAlpha: 1);
            Assert.That(mix.Kind, Is.EqualTo(BatchMixKind.CutMix));
            using var mixed = mix.Apply(input);
            for (var row = 0; row < 4; row++)
            {
                var fromPartner = mixed[row].eq(mix.Partner[row] + 1).sum().item<long>();
                var own = mixed[row].eq(row + 1).sum().item<long>();
                if (mix.Partner[row] == row)
                    continue;
                Assert.That(own + fromPartner, Is.EqualTo(200), "every element comes from the row or its partner");
                Assert.That(own / 200.0, Is.EqualTo(mix.Lambda).Within(1e-12), $"seed {seed} row {row}: λ is the share kept");
            }
            var (top, left, height, width) = mix.Box;
            Assert.That(top + height, Is.LessThanOrEqualTo(10));
            Assert.That(left + width, Is.LessThanOrEqualTo(10));
        }
    }

    [Test]
    public void Should_draw_the_same_mix_from_the_same_seed_and_lambdas_that_follow_a_symmetric_beta()
    {
        var first = BatchMix.Draw(new Random(3), 32, 7, 7, 0.4, 1);
        var second = BatchMix.Draw(new Random(3), 32, 7, 7, 0.4, 1);
        Assert.That(second.Kind, Is.EqualTo(first.Kind));
        Assert.That(second.Lambda, Is.EqualTo(first.Lambda));
        Assert.That(second.Partner, Is.EqualTo(first.Partner));
        Assert.That(second.Box, Is.EqualTo(first.Box));

        var random = new Random(11);
        var draws = Enumerable.Range(0, 4000).Select(_ => BatchMix.Draw(random, 8, 0, 0, 0.4, 0)).ToList();
        var lambdas = draws.Select(d => d.Lambda).ToList();
        Assert.That(lambdas.Average(), Is.EqualTo(0.5).Within(0.02), "Beta(α, α) has mean ½");
        // Beta(0.4, 0.4) puts most of its mass near 0 and 1: its variance is 1 / (4 (2α + 1)) = 0.139.
        var variance = lambdas.Select(l => (l - 0.5) * (l - 0.5)).Average();
        Assert.That(variance, Is.EqualTo(1 / (4 * (2 * 0.4 + 1))).Within(0.01));

        var both = Enumerable.Range(0, 400).Select(_ => BatchMix.Draw(random, 8, 7, 7, 0.4, 1).Kind).ToList();
        Assert.That(both.Count(k => k == BatchMixKind.CutMix), Is.InRange(160, 240), "with both set, each batch picks one with probability ½");
    }

    [Test]
    public void Should_leave_the_batch_alone_when_off_or_when_there_is_nothing_to_mix()
    {
        using var input = torch.randn(5, 3);
        Assert.That(BatchMix.Draw(new Random(1), 5, 0, 0, 0, 0).IsIdentity);
        Assert.That(BatchMix.Draw(new Random(1), 1, 7, 7, 0.4, 1).IsIdentity, "a batch of one has no partner");
        Assert.That(BatchMix.Draw(new Random(1), 5, 0, 0, 0, 1).IsIdentity, "CutMix needs a spatial grid");
        var identity = BatchMix.Draw(new Random(1), 5, 0, 0, 0, 0);
        Assert.That(ReferenceEquals(identity.Apply(input), input));
    }
}
