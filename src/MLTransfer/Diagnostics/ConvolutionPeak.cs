using System.Diagnostics;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLTransfer.Backbones;
using Onnx;

namespace MLTransfer.Diagnostics;

/// <summary>
/// Measures what one core of this machine sustains on the work a CNN backbone is made of: a 3×3, 256-channel
/// convolution on a 14×14 map (ResNet18's third stage) run by ONNX Runtime on one thread. The best of several timed
/// rounds is the core's convolution peak, from which benchmarks derive a CPU limit for a whole backbone.
/// </summary>
public static class ConvolutionPeak
{
    private const int Channels = 256;
    private const int Side = 14;
    private const int Kernel = 3;

    /// <summary>Floating-point operations of one run of the measured convolution (multiply and add counted apart).</summary>
    public const double FlopPerRun = 2.0 * Channels * Channels * Kernel * Kernel * Side * Side;

    /// <summary>Runs the convolution for about <paramref name="seconds"/> (after a warm-up) and returns the best rate seen, in GFLOP/s.</summary>
    /// <param name="seconds">Total time spent timing. The default value is 0.5 s.</param>
    public static double MeasureGflopsPerCore(double seconds = 0.5)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(seconds);
        using var options = new SessionOptions
        {
            IntraOpNumThreads = 1,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        using var session = new InferenceSession(Model(), options);
        var random = new Random(0);
        var input = new DenseTensor<float>(Enumerable.Range(0, Channels * Side * Side).Select(_ => (float)random.NextDouble()).ToArray(),
            [1, Channels, Side, Side]);
        var inputs = new[] { NamedOnnxValue.CreateFromTensor("x", input) };
        for (var i = 0; i < 3; i++)
            using (session.Run(inputs)) { }

        var best = double.MaxValue;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < seconds)
        {
            const int Runs = 4;
            var round = Stopwatch.StartNew();
            for (var i = 0; i < Runs; i++)
                using (session.Run(inputs)) { }
            best = Math.Min(best, round.Elapsed.TotalSeconds / Runs);
        }
        return FlopPerRun / best / 1e9;
    }

    private static byte[] Model()
    {
        var random = new Random(1);
        var weights = Enumerable.Range(0, Channels * Channels * Kernel * Kernel).Select(_ => (float)(random.NextDouble() - 0.5) * 0.05f).ToArray();
        var graph = new GraphProto { Name = "convolution-peak" };
        graph.Initializer.Add(FeaturizerGraph.Tensor("w", [Channels, Channels, Kernel, Kernel], weights));
        graph.Node.Add(FeaturizerGraph.Node("Conv", "conv", ["x", "w"], ["y"],
            new AttributeProto { Name = "pads", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 1, 1, 1, 1 } },
            new AttributeProto { Name = "kernel_shape", Type = AttributeProto.Types.AttributeType.Ints, Ints = { Kernel, Kernel } }));
        graph.Input.Add(Fixed("x"));
        graph.Output.Add(Fixed("y"));
        var model = new ModelProto { IrVersion = 7, Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        return model.ToByteArray();
    }

    private static ValueInfoProto Fixed(string name)
    {
        var shape = new TensorShapeProto();
        foreach (var d in new long[] { 1, Channels, Side, Side })
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }
}
