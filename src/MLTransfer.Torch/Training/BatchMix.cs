using MathNet.Numerics.Distributions;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLTransfer.Torch.Training;

/// <summary>How a training batch is mixed with a shuffled copy of itself.</summary>
internal enum BatchMixKind
{
    /// <summary>Not mixed.</summary>
    None,

    /// <summary>Mixup (Zhang et al. 2018): every input is λ·x + (1 − λ)·x′.</summary>
    Mixup,

    /// <summary>CutMix (Yun et al. 2019): a box covering a share 1 − λ of every input comes from x′.</summary>
    CutMix,
}

/// <summary>
/// Mixup and CutMix of one batch with a shuffled copy of itself, applied to whatever the network takes in: pixels when
/// the whole network trains, the cached lower-block output in top-blocks mode (then it is manifold mixup, Verma et al.
/// 2019, and CutMix of feature maps). The loss is the same mix of the two labels' cross-entropies. Everything random is
/// drawn from the step's seeded generator, so a run is reproducible given its seed.
/// </summary>
internal sealed record BatchMix(BatchMixKind Kind, double Lambda, long[] Partner, (int Top, int Left, int Height, int Width) Box)
{
    /// <summary>A batch left as it is.</summary>
    public static BatchMix Identity(int count) => new(BatchMixKind.None, 1, Enumerable.Range(0, count).Select(i => (long)i).ToArray(), default);

    /// <summary>
    /// Draws the mix of a batch: λ ~ Beta(α, α) with the α of the method drawn (one of the two with probability ½ when
    /// both are set), a random partner for every row and, for CutMix, a box of area share 1 − λ (clipped to the input;
    /// λ is then corrected to the share actually kept).
    /// </summary>
    /// <param name="random">The step's generator.</param>
    /// <param name="count">Rows in the batch.</param>
    /// <param name="height">Height of the input's spatial grid (0 for inputs without one: CutMix is then skipped).</param>
    /// <param name="width">Width of the input's spatial grid.</param>
    /// <param name="mixupAlpha">Mixup's α; 0 disables it.</param>
    /// <param name="cutMixAlpha">CutMix's α; 0 disables it.</param>
    public static BatchMix Draw(Random random, int count, int height, int width, double mixupAlpha, double cutMixAlpha)
    {
        ArgumentNullException.ThrowIfNull(random);
        var cutMix = cutMixAlpha > 0 && height > 1 && width > 1;
        var mixup = mixupAlpha > 0;
        if (count < 2 || !cutMix && !mixup)
            return Identity(count);
        var kind = cutMix && mixup ? (random.NextDouble() < 0.5 ? BatchMixKind.Mixup : BatchMixKind.CutMix) : cutMix ? BatchMixKind.CutMix : BatchMixKind.Mixup;
        var alpha = kind == BatchMixKind.Mixup ? mixupAlpha : cutMixAlpha;
        var lambda = Beta.Sample(random, alpha, alpha);
        var partner = Enumerable.Range(0, count).Select(i => (long)i).ToArray();
        random.Shuffle(partner);
        if (kind == BatchMixKind.Mixup)
            return new BatchMix(kind, lambda, partner, default);
        var side = Math.Sqrt(1 - lambda);
        var boxHeight = (int)Math.Round(height * side);
        var boxWidth = (int)Math.Round(width * side);
        var centreY = random.Next(height);
        var centreX = random.Next(width);
        var top = Math.Clamp(centreY - boxHeight / 2, 0, height);
        var bottom = Math.Clamp(centreY - boxHeight / 2 + boxHeight, 0, height);
        var left = Math.Clamp(centreX - boxWidth / 2, 0, width);
        var right = Math.Clamp(centreX - boxWidth / 2 + boxWidth, 0, width);
        var box = (top, left, bottom - top, right - left);
        return new BatchMix(kind, 1 - (double)box.Item3 * box.Item4 / (height * width), partner, box);
    }

    /// <summary>Whether the batch is left as it is.</summary>
    public bool IsIdentity => Kind == BatchMixKind.None;

    /// <summary>The mixed input: <paramref name="input"/> (rows first; CutMix needs N×C×H×W) mixed with its partners.</summary>
    public Tensor Apply(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (IsIdentity)
            return input;
        using var index = tensor(Partner, device: input.device);
        var other = input.index_select(0, index);
        if (Kind == BatchMixKind.Mixup)
            return input.mul((float)Lambda).add_(other.mul_((float)(1 - Lambda)));
        var mixed = input.clone();
        var (top, left, height, width) = Box;
        if (height > 0 && width > 0)
        {
            var rows = TensorIndex.Slice(top, top + height);
            var columns = TensorIndex.Slice(left, left + width);
            mixed[TensorIndex.Colon, TensorIndex.Colon, rows, columns] = other[TensorIndex.Colon, TensorIndex.Colon, rows, columns];
        }
        return mixed;
    }

    /// <summary>λ·CE(logits, y) + (1 − λ)·CE(logits, y of the partners), each with the given label smoothing.</summary>
    public Tensor Loss(Tensor logits, Tensor labels, double labelSmoothing)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(labels);
        var own = F.cross_entropy(logits, labels, label_smoothing: labelSmoothing);
        if (IsIdentity)
            return own;
        using var index = tensor(Partner, device: labels.device);
        var partners = labels.index_select(0, index);
        return own.mul((float)Lambda).add_(F.cross_entropy(logits, partners, label_smoothing: labelSmoothing).mul_((float)(1 - Lambda)));
    }

    /// <summary>Rows whose arg-max is their dominant label (their own when λ ≥ ½, the partner's otherwise).</summary>
    public long Correct(Tensor logits, Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(labels);
        if (IsIdentity || Lambda >= 0.5)
            return logits.argmax(1).eq(labels).sum().item<long>();
        using var index = tensor(Partner, device: labels.device);
        return logits.argmax(1).eq(labels.index_select(0, index)).sum().item<long>();
    }
}
