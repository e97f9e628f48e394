using MLTransfer.Torch.Training;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLTransfer.Torch.Onnx;

/// <summary>How one evaluation of the graph runs: training or inference, and the BatchNorm policy.</summary>
internal readonly record struct OnnxEvaluation(bool Training, bool UpdateBatchNormStatistics, double BatchNormMomentum, long Opset);

/// <summary>The TorchSharp implementation of each supported ONNX operator (2-D spatial ops, NCHW).</summary>
internal static class OnnxOperators
{
    /// <summary>The operator types <see cref="Evaluate"/> understands.</summary>
    public static readonly string[] Supported =
    [
        "Add", "AveragePool", "BatchNormalization", "Clip", "Concat", "Constant", "Conv", "Div", "Dropout", "Flatten", "Gemm",
        "GlobalAveragePool", "Identity", "MatMul", "MaxPool", "Mul", "Relu", "Reshape", "Sigmoid", "Softmax", "Split", "Sub",
    ];

    /// <summary>Computes the outputs of <paramref name="node"/>; every returned tensor is a new handle the caller owns.</summary>
    public static Tensor[] Evaluate(OnnxNode node, Tensor?[] x, OnnxEvaluation e)
    {
        if (node.Domain.Length > 0 && node.Domain != "ai.onnx")
        {
            throw new UnsupportedOnnxOperatorException(node.OpType, node.Name, $"domain '{node.Domain}' is not supported.");
        }

        return node.OpType switch
        {
            "Conv" => [Conv(node, x[0]!, x[1]!, x.Length > 2 ? x[2] : null)],
            "BatchNormalization" => [BatchNorm(node, x, e)],
            "Relu" => [F.relu(x[0]!)],
            "Sigmoid" => [x[0]!.sigmoid()],
            "Add" => [x[0]!.Plus(x[1]!)],
            "Sub" => [x[0]! - x[1]!],
            "Mul" => [x[0]! * x[1]!],
            "Div" => [x[0]! / x[1]!],
            "MatMul" => [x[0]!.matmul(x[1]!)],
            "Clip" => [Clip(node, x, e)],
            "MaxPool" => [MaxPool(node, x[0]!)],
            "AveragePool" => [AveragePool(node, x[0]!)],
            "GlobalAveragePool" => [x[0]!.mean(Enumerable.Range(2, (int)x[0]!.dim() - 2).Select(d => (long)d).ToArray(), keepdim: true)],
            "Gemm" => [Gemm(node, x)],
            "Flatten" => [Flatten(node, x[0]!)],
            "Reshape" => [Reshape(x[0]!, x[1]!)],
            "Concat" => [torch.cat(x.Select(t => t!).ToArray(), node.Int("axis", 1))],
            "Split" => Split(node, x, e),
            "Softmax" => [Softmax(node, x[0]!, e)],
            "Identity" => [x[0]!.alias()],
            "Dropout" => [Dropout(node, x, e)],
            _ => throw new UnsupportedOnnxOperatorException(node.OpType, node.Name),
        };
    }

    private static (long[] Begin, long[] End) Pads(OnnxNode node, Tensor input, long[] kernel, long[] strides, long[] dilations)
    {
        int spatial = kernel.Length;
        string autoPad = node.String("auto_pad", "NOTSET");
        var begin = new long[spatial];
        var end = new long[spatial];
        switch (autoPad)
        {
            case "NOTSET":
                long[] pads = node.Ints("pads") ?? new long[2 * spatial];
                Array.Copy(pads, 0, begin, 0, spatial);
                Array.Copy(pads, spatial, end, 0, spatial);
                break;
            case "VALID":
                break;
            case "SAME_UPPER":
            case "SAME_LOWER":
                for (int i = 0; i < spatial; i++)
                {
                    long size = input.shape[2 + i];
                    long output = (size + strides[i] - 1) / strides[i];
                    long total = Math.Max(0, ((output - 1) * strides[i]) + ((kernel[i] - 1) * dilations[i]) + 1 - size);
                    long small = total / 2;
                    (begin[i], end[i]) = autoPad == "SAME_UPPER" ? (small, total - small) : (total - small, small);
                }

                break;
            default:
                throw new UnsupportedOnnxOperatorException(node.OpType, node.Name, $"auto_pad '{autoPad}' is not supported.");
        }

        return (begin, end);
    }

    /// <summary>Pads explicitly (last dimension first, as F.pad wants) when begin and end pads differ; otherwise returns null and the symmetric pads.</summary>
    private static Tensor? PadIfAsymmetric(Tensor input, long[] begin, long[] end, double value, out long[] symmetric)
    {
        if (begin.SequenceEqual(end))
        {
            symmetric = begin;
            return null;
        }

        symmetric = new long[begin.Length];
        var pad = new long[2 * begin.Length];
        for (int i = 0; i < begin.Length; i++)
        {
            int fromLast = begin.Length - 1 - i;
            pad[2 * i] = begin[fromLast];
            pad[(2 * i) + 1] = end[fromLast];
        }

        return F.pad(input, pad, PaddingModes.Constant, value);
    }

    private static void Require2D(OnnxNode node, Tensor input)
    {
        if (input.dim() != 4)
        {
            throw new UnsupportedOnnxOperatorException(node.OpType, node.Name, $"only 4-D (NCHW) inputs are supported, got rank {input.dim()}.");
        }
    }

    private static Tensor Conv(OnnxNode node, Tensor input, Tensor weight, Tensor? bias)
    {
        Require2D(node, input);
        long[] kernel = node.Ints("kernel_shape") ?? [weight.shape[2], weight.shape[3]];
        long[] strides = node.Ints("strides") ?? [1, 1];
        long[] dilations = node.Ints("dilations") ?? [1, 1];
        var (begin, end) = Pads(node, input, kernel, strides, dilations);
        using Tensor? padded = PadIfAsymmetric(input, begin, end, 0.0, out long[] symmetric);
        return F.conv2d(padded ?? input, weight, bias, strides, symmetric, dilations, node.Int("group", 1));
    }

    private static Tensor BatchNorm(OnnxNode node, Tensor?[] x, OnnxEvaluation e)
    {
        if (node.Int("spatial", 1) != 1)
        {
            throw new UnsupportedOnnxOperatorException(node.OpType, node.Name, "spatial=0 (per-activation statistics) is not supported.");
        }

        bool training = e.Training && e.UpdateBatchNormStatistics;
        return F.batch_norm(x[0]!, x[3]!, x[4]!, x[1]!, x[2]!, training, e.BatchNormMomentum, node.Float("epsilon", 1e-5f));
    }

    private static Tensor Clip(OnnxNode node, Tensor?[] x, OnnxEvaluation e)
    {
        if (e.Opset < 11)
        {
            using var low = node.Float("min", float.MinValue).ToScalar();
            using var high = node.Float("max", float.MaxValue).ToScalar();
            return x[0]!.clamp(low, high);
        }

        using var min = x.Length > 1 && x[1] is not null ? x[1]!.item<float>().ToScalar() : null;
        using var max = x.Length > 2 && x[2] is not null ? x[2]!.item<float>().ToScalar() : null;
        return x[0]!.clamp(min, max);
    }

    private static Tensor MaxPool(OnnxNode node, Tensor input)
    {
        Require2D(node, input);
        if (node.Outputs.Count > 1 && node.Outputs[1].Length > 0)
        {
            throw new UnsupportedOnnxOperatorException(node.OpType, node.Name, "the Indices output is not supported.");
        }

        long[] kernel = node.Ints("kernel_shape")!;
        long[] strides = node.Ints("strides") ?? [1, 1];
        long[] dilations = node.Ints("dilations") ?? [1, 1];
        var (begin, end) = Pads(node, input, kernel, strides, dilations);
        using Tensor? padded = PadIfAsymmetric(input, begin, end, double.NegativeInfinity, out long[] symmetric);
        return F.max_pool2d(padded ?? input, kernel, strides, symmetric, dilations, node.Int("ceil_mode", 0) != 0);
    }

    private static Tensor AveragePool(OnnxNode node, Tensor input)
    {
        Require2D(node, input);
        long[] kernel = node.Ints("kernel_shape")!;
        long[] strides = node.Ints("strides") ?? [1, 1];
        bool ceil = node.Int("ceil_mode", 0) != 0;
        bool includePad = node.Int("count_include_pad", 0) != 0;
        var (begin, end) = Pads(node, input, kernel, strides, [1, 1]);
        using Tensor? padded = PadIfAsymmetric(input, begin, end, 0.0, out long[] symmetric);
        if (padded is null || includePad)
        {
            return F.avg_pool2d(padded ?? input, kernel, strides, symmetric, ceil, includePad);
        }

        // Asymmetric pads that must not count: average over the zero-padded input, then divide by the share of real pixels.
        using var ones = torch.ones(1, 1, input.shape[2], input.shape[3], dtype: input.dtype, device: input.device);
        using var paddedOnes = PadIfAsymmetric(ones, begin, end, 0.0, out _)!;
        using var sum = F.avg_pool2d(padded, kernel, strides, [0, 0], ceil, true);
        using var share = F.avg_pool2d(paddedOnes, kernel, strides, [0, 0], ceil, true);
        return sum / share;
    }

    private static Tensor Gemm(OnnxNode node, Tensor?[] x)
    {
        Tensor a = x[0]!;
        Tensor b = x[1]!;
        Tensor? c = x.Length > 2 ? x[2] : null;
        float alpha = node.Float("alpha", 1f);
        float beta = node.Float("beta", 1f);
        bool transA = node.Int("transA", 0) != 0;
        bool transB = node.Int("transB", 0) != 0;
        if (!transA && transB && alpha == 1f && (c is null || beta == 1f))
        {
            return F.linear(a, b, c);
        }

        using var a2 = transA ? a.t() : a.alias();
        using var b2 = transB ? b.t() : b.alias();
        using var product = a2.matmul(b2);
        using var scaled = alpha == 1f ? product.alias() : product.Times(alpha);
        if (c is null)
        {
            return scaled.alias();
        }

        using var c2 = beta == 1f ? c.alias() : c.Times(beta);
        return scaled.Plus(c2);
    }

    private static Tensor Flatten(OnnxNode node, Tensor input)
    {
        long axis = node.Int("axis", 1);
        if (axis < 0)
        {
            axis += input.dim();
        }

        long outer = 1;
        for (int i = 0; i < axis; i++)
        {
            outer *= input.shape[i];
        }

        return input.reshape(outer, -1);
    }

    private static Tensor Reshape(Tensor input, Tensor shape)
    {
        long[] target = shape.data<long>().ToArray();
        for (int i = 0; i < target.Length; i++)
        {
            if (target[i] == 0)
            {
                target[i] = input.shape[i];
            }
        }

        return input.reshape(target);
    }

    private static Tensor[] Split(OnnxNode node, Tensor?[] x, OnnxEvaluation e)
    {
        Tensor input = x[0]!;
        long axis = node.Int("axis", 0);
        long[]? sizes = e.Opset >= 13 ? (x.Length > 1 ? x[1]?.data<long>().ToArray() : null) : node.Ints("split");
        if (sizes is null || sizes.Length == 0)
        {
            long dim = input.shape[axis < 0 ? axis + input.dim() : axis];
            long parts = node.Outputs.Count;
            sizes = Enumerable.Repeat(dim / parts, (int)parts).ToArray();
        }

        return input.split(sizes, axis);
    }

    private static Tensor Softmax(OnnxNode node, Tensor input, OnnxEvaluation e)
    {
        long axis = node.Int("axis", e.Opset >= 13 ? -1 : 1);
        if (axis < 0)
        {
            axis += input.dim();
        }

        if (e.Opset >= 13 || axis == input.dim() - 1)
        {
            return F.softmax(input, axis);
        }

        // Before opset 13 the input is coerced to 2-D at axis and the softmax runs over the trailing block.
        using var flat = Flatten(node, input);
        using var soft = F.softmax(flat, 1);
        return soft.reshape(input.shape);
    }

    private static Tensor Dropout(OnnxNode node, Tensor?[] x, OnnxEvaluation e)
    {
        if (!e.Training)
        {
            return x[0]!.alias();
        }

        double ratio = e.Opset >= 12 ? (x.Length > 1 && x[1] is not null ? x[1]!.item<float>() : 0.5) : node.Float("ratio", 0.5f);
        return F.dropout(x[0]!, ratio, training: true);
    }
}
