using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLTransfer.Backbones;
using MLTransfer.Featurization;
using MLTransfer.Quantization;
using MLTransfer.Tests.Featurization;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;
using Onnx;

namespace MLTransfer.Tests.Quantization;

public class QdqQuantizerTests
{
    private const int Size = 64;

    // The CNTK ResNet18 has 22 convolutions, each followed by a BatchNormalization.
    private const int ResNet18Convolutions = 22;

    private static readonly string[] Calibration = TestData.SampleSubset(3, "0", "1", "2", "3", "4", "5", "6", "7", "8", "9").Select(e => e.ImagePath).ToArray();

    private static readonly string[] Probes = TestData.Subset(TestData.Sample, 1, 10, ["0", "2", "5", "7", "9"]).Select(e => e.ImagePath).ToArray();

    private static readonly Lazy<ModelProto> Fused = new(() => FeaturizerGraph.Build(Backbone.ResNet18(), Size));

    private static readonly Lazy<(ModelProto Graph, QuantizationSummary Summary)> Quantized = new(() =>
        (QdqQuantizer.Quantize(Fused.Value, Calibration, null, out var summary), summary));

    [Test]
    public void Should_write_a_standard_opset_13_graph_with_per_channel_int8_weights()
    {
        var (quantized, summary) = Quantized.Value;

        Assert.That(summary.QuantizedConvolutions, Is.EqualTo(ResNet18Convolutions));
        Assert.That(summary.FoldedBatchNormalizations, Is.EqualTo(ResNet18Convolutions));
        Assert.That(summary.SourceOpset, Is.EqualTo(8));
        Assert.That(summary.CalibrationImages, Is.EqualTo(Calibration.Length));
        Assert.That(quantized.OpsetImport.Single(o => o.Domain == "").Version, Is.EqualTo(13));
        Assert.That(quantized.Graph.Node.Select(n => n.Domain).Distinct(), Is.EqualTo(new[] { "" }), "standard operators only");
        Assert.That(quantized.Graph.Node.Count(n => n.OpType == "BatchNormalization"), Is.Zero);
        var graph = quantized.Graph;
        foreach (var conv in graph.Node.Where(n => n.OpType == "Conv"))
        {
            var weightDq = graph.Node.Single(n => n.Output[0] == conv.Input[1]);
            Assert.That(weightDq.OpType, Is.EqualTo("DequantizeLinear"));
            Assert.That(weightDq.Attribute.Single(a => a.Name == "axis").I, Is.Zero);
            var weights = graph.Initializer.Single(t => t.Name == weightDq.Input[0]);
            var scales = graph.Initializer.Single(t => t.Name == weightDq.Input[1]);
            Assert.That(weights.DataType, Is.EqualTo((int)TensorProto.Types.DataType.Int8));
            Assert.That(scales.Dims, Is.EqualTo(new[] { weights.Dims[0] }), "one scale per output channel");
            var bytes = weights.RawData.ToByteArray().Select(b => (sbyte)b).ToArray();
            Assert.That(bytes.Min(), Is.GreaterThanOrEqualTo(-QuantizationOptions.PortableWeightLevels), "symmetric 7-bit range");
            Assert.That(bytes.Select(b => Math.Abs((int)b)).Max(), Is.EqualTo(QuantizationOptions.PortableWeightLevels), "the largest weight of some channel maps to ±63");
            Assert.That(graph.Node.Single(n => n.Output[0] == conv.Input[0]).OpType, Is.EqualTo("DequantizeLinear"), "activations enter through DQ");
            var bias = graph.Node.Single(n => n.Output[0] == conv.Input[2]);
            Assert.That(graph.Initializer.Single(t => t.Name == bias.Input[0]).DataType, Is.EqualTo((int)TensorProto.Types.DataType.Int32));
        }
        Assert.That(graph.Input.Select(i => i.Name), Is.EqualTo(new[] { FeaturizerGraph.InputName }), "no initializer is also an input");
    }

    [Test]
    public void Should_run_every_convolution_on_int8_kernels_in_onnx_runtime()
    {
        var quantized = Quantized.Value.Graph;
        var optimizedPath = Path.Combine(TestData.TempFolder(), "optimized.onnx");

        using (var options = OnnxImageFeaturizer.CreateSessionOptions(1))
        {
            options.OptimizedModelFilePath = optimizedPath;
            using var session = new InferenceSession(quantized.ToByteArray(), options);
        }

        var optimized = FeaturizerGraph.Load(optimizedPath).Graph.Node.GroupBy(n => n.OpType).ToDictionary(g => g.Key, g => g.Count());
        Assert.That(optimized.GetValueOrDefault("QLinearConv"), Is.EqualTo(ResNet18Convolutions), string.Join(", ", optimized));
        Assert.That(optimized.GetValueOrDefault("Conv"), Is.Zero, "no float convolution is left");
        Assert.That(optimized.GetValueOrDefault("QLinearAdd"), Is.EqualTo(8), "the residual additions run on uint8 too");
    }

    [Test]
    public void Should_give_features_close_to_the_float_graph()
    {
        var pixels = Pixels(Probes);

        var reference = Run(Fused.Value, pixels, Probes.Length);
        var int8 = Run(Quantized.Value.Graph, pixels, Probes.Length);

        for (var i = 0; i < Probes.Length; i++)
        {
            var cosine = Cosine(reference[i], int8[i]);
            Assert.That(cosine, Is.GreaterThan(0.98), $"{Probes[i]}: cosine {cosine}");
            Assert.That(reference[i], Is.Not.EqualTo(int8[i]), "the int8 graph really computes something else");
        }
    }

    [Test]
    public void Should_compute_on_this_cpus_int8_kernels_what_the_quantised_graph_means()
    {
        // Without graph optimisation ONNX Runtime runs QuantizeLinear, DequantizeLinear and Conv one by one in float: the
        // arithmetic the QDQ graph describes, on any CPU. Optimised, it runs QLinearConv on this CPU's int8 kernels, which on
        // x86 without VNNI add pairs of uint8 × int8 products in saturating 16 bits: 7-bit weights must keep every pair in range.
        var pixels = Pixels(Probes);

        var kernels = Run(Quantized.Value.Graph, pixels, Probes.Length);
        var meaning = Run(Quantized.Value.Graph, pixels, Probes.Length, optimize: false);

        for (var i = 0; i < Probes.Length; i++)
        {
            var cosine = Cosine(meaning[i], kernels[i]);
            Assert.That(cosine, Is.GreaterThan(0.999), $"{Probes[i]}: cosine {cosine}");
        }
    }

    [Test]
    public void Should_use_all_eight_bits_of_the_weights_only_when_asked()
    {
        var full = QdqQuantizer.Quantize(Fused.Value, Calibration, new QuantizationOptions { WeightLevels = 127, BiasCorrection = false }, out _);

        var largest = full.Graph.Node.Where(n => n.OpType == "DequantizeLinear" && n.Name.EndsWith("w_dq", StringComparison.Ordinal))
            .Select(n => full.Graph.Initializer.Single(t => t.Name == n.Input[0]).RawData.ToByteArray().Max(b => Math.Abs((int)(sbyte)b)))
            .ToList();
        Assert.That(largest, Has.Count.EqualTo(ResNet18Convolutions));
        Assert.That(largest, Is.All.EqualTo(127), "each convolution's largest weight maps to ±127");
        Assert.That(new QuantizationOptions { WeightLevels = 127 }.Key, Is.Not.EqualTo(new QuantizationOptions().Key), "a stored graph is not reused across weight ranges");
        Assert.That(() => QdqQuantizer.Quantize(Fused.Value, Calibration, new QuantizationOptions { WeightLevels = 128 }, out _), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void Should_keep_the_function_of_the_graph_when_folding_and_raising_the_opset()
    {
        var fused = Fused.Value;

        var prepared = QdqQuantizer.Prepare(fused, Size, out var folded);

        Assert.That(folded, Is.EqualTo(ResNet18Convolutions));
        Assert.That(prepared.OpsetImport.Single(o => o.Domain == "").Version, Is.EqualTo(13));
        var pixels = Pixels(Probes);
        var reference = Run(fused, pixels, Probes.Length);
        var same = Run(prepared, pixels, Probes.Length);
        for (var i = 0; i < Probes.Length; i++)
            Assert.That(TestData.MaxAbsDifference(reference[i], same[i]), Is.LessThan(1e-3));
    }

    [Test]
    public void Should_reduce_the_mean_shift_of_the_features_with_bias_correction()
    {
        var uncorrected = QdqQuantizer.Quantize(Fused.Value, Calibration, new QuantizationOptions { BiasCorrection = false }, out var plain);
        var pixels = Pixels(Calibration);

        var reference = MeanFeatures(Run(Fused.Value, pixels, Calibration.Length));
        var shiftBefore = MeanAbsDifference(reference, MeanFeatures(Run(uncorrected, pixels, Calibration.Length)));
        var shiftAfter = MeanAbsDifference(reference, MeanFeatures(Run(Quantized.Value.Graph, pixels, Calibration.Length)));

        Assert.That(plain.BiasCorrectedConvolutions, Is.Zero);
        Assert.That(Quantized.Value.Summary.BiasCorrectedConvolutions, Is.EqualTo(ResNet18Convolutions));
        Assert.That(shiftAfter, Is.LessThan(shiftBefore * 0.85), $"mean |Δ| of the feature means: {shiftBefore} → {shiftAfter}");
    }

    [Test]
    public void Should_keep_the_most_sensitive_convolutions_float_and_move_the_features_less()
    {
        var options = new QuantizationOptions { FloatConvolutions = 3, SensitivityImages = 8 };
        var mixed = QdqQuantizer.Quantize(Fused.Value, Calibration, options, out var summary);
        var optimizedPath = Path.Combine(TestData.TempFolder(), "optimized.onnx");
        using (var sessionOptions = OnnxImageFeaturizer.CreateSessionOptions(1))
        {
            sessionOptions.OptimizedModelFilePath = optimizedPath;
            using var session = new InferenceSession(mixed.ToByteArray(), sessionOptions);
        }

        Assert.That(summary.QuantizedConvolutions, Is.EqualTo(ResNet18Convolutions - 3));
        var graph = mixed.Graph;
        var floats = graph.Node.Where(n => n.OpType == "Conv" && graph.Initializer.Any(t => t.Name == n.Input[1] && t.DataType == (int)TensorProto.Types.DataType.Float)).ToList();
        Assert.That(floats, Has.Count.EqualTo(3), "three convolutions keep float weights");
        Assert.That(summary.FloatConvolutions, Is.EquivalentTo(floats.Select(c => c.Output[0])), "the summary names them");
        foreach (var conv in floats)
            Assert.That(graph.Node.Single(n => n.Output.Contains(conv.Input[0])).OpType, Is.Not.EqualTo("DequantizeLinear"), "and read float activations");
        var optimized = FeaturizerGraph.Load(optimizedPath).Graph.Node.GroupBy(n => n.OpType).ToDictionary(g => g.Key, g => g.Count());
        Assert.That(optimized.GetValueOrDefault("QLinearConv"), Is.EqualTo(ResNet18Convolutions - 3), string.Join(", ", optimized));
        Assert.That(options.Key, Is.Not.EqualTo(new QuantizationOptions().Key), "the option is part of the cache key");

        var pixels = Pixels(Probes);
        var reference = Run(Fused.Value, pixels, Probes.Length);
        var full = Run(Quantized.Value.Graph, pixels, Probes.Length);
        var partial = Run(mixed, pixels, Probes.Length);
        var fullError = Enumerable.Range(0, Probes.Length).Average(i => 1 - Cosine(reference[i], full[i]));
        var partialError = Enumerable.Range(0, Probes.Length).Average(i => 1 - Cosine(reference[i], partial[i]));
        Assert.That(partialError, Is.LessThan(fullError), $"mean 1 − cosine: all int8 {fullError}, three float {partialError}");
    }

    private static double[] MeanFeatures(float[][] features) =>
        Enumerable.Range(0, features[0].Length).Select(j => features.Average(f => (double)f[j])).ToArray();

    private static double MeanAbsDifference(double[] a, double[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Average();

    [Test]
    public void Should_be_deterministic()
    {
        var first = Quantized.Value.Graph.ToByteArray();
        var second = QdqQuantizer.Quantize(Fused.Value, Calibration, null, out _).ToByteArray();

        Assert.That(second, Is.EqualTo(first));
    }

    [Test]
    public void Should_refuse_a_graph_that_is_already_quantised_or_not_an_image_graph()
    {
        var quantized = Quantized.Value.Graph;
        var noPixels = FeaturizerGraph.Build(Backbone.ResNet18(), Size);
        noPixels.Graph.Input[0].Name = "Image";

        Assert.That(() => QdqQuantizer.Quantize(quantized, Calibration, null, out _),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains("already quantised"));
        Assert.That(() => QdqQuantizer.Quantize(noPixels, Calibration, null, out _),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains("'Pixels'"));
    }

    [Test]
    public void Should_refuse_an_operator_whose_meaning_changed_before_opset_13()
    {
        var fused = FeaturizerGraph.Build(Backbone.ResNet18(), Size);
        var last = fused.Graph.Node.Last();
        fused.Graph.Node.Add(new NodeProto { OpType = "Softmax", Name = "probabilities", Input = { last.Output[0] }, Output = { "probabilities" } });

        Assert.That(() => QdqQuantizer.Quantize(fused, Calibration, null, out _),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains("'Softmax'").And.Message.Contains("opset 8 and 13"));
    }

    [Test]
    public void Should_skip_unreadable_calibration_images_and_fail_when_none_is_readable()
    {
        var folder = TestData.TempFolder();
        var (empty, text, truncated) = FeaturizationTestSupport.UnreadableImages(folder);
        var fused = Fused.Value;

        QdqQuantizer.Quantize(fused, [empty, Calibration[0], text], null, out var summary);

        Assert.That(summary.CalibrationImages, Is.EqualTo(1));
        Assert.That(summary.RejectedCalibrationImages, Is.EqualTo(2));
        Assert.That(() => QdqQuantizer.Quantize(fused, [empty, text, truncated], null, out _),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains("None of the 3 calibration images"));
    }

    [Test]
    public void Should_spread_the_calibration_images_over_the_folder()
    {
        var selected = QdqQuantizer.SelectCalibrationImages(new QuantizationOptions { CalibrationFolder = TestData.Sample, MaxCalibrationImages = 20 });

        Assert.That(selected, Has.Count.EqualTo(20));
        Assert.That(selected.Select(p => Path.GetFileName(Path.GetDirectoryName(p))).Distinct().Count(), Is.EqualTo(10), "every class folder");
        Assert.That(() => QdqQuantizer.SelectCalibrationImages(new QuantizationOptions { CalibrationFolder = TestData.TempFolder() }),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains("has no images"));
    }

    internal static float[] Pixels(IReadOnlyList<string> paths)
    {
        var plane = ImagePreprocessor.PixelCount(Size);
        var pixels = new float[paths.Count * plane];
        for (var i = 0; i < paths.Count; i++)
            Assert.That(ImagePreprocessor.TryLoadPixels(paths[i], Size, pixels.AsSpan(i * plane, plane)), Is.Null);
        return pixels;
    }

    internal static float[][] Run(ModelProto model, float[] pixels, int count, bool optimize = true)
    {
        using var options = OnnxImageFeaturizer.CreateSessionOptions(1);
        if (!optimize)
            options.GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL;
        using var session = new InferenceSession(model.ToByteArray(), options);
        var input = new DenseTensor<float>(pixels, [count, 3, Size, Size]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(FeaturizerGraph.InputName, input)]);
        var all = results.First().AsTensor<float>().ToArray();
        var length = all.Length / count;
        return Enumerable.Range(0, count).Select(i => all.AsSpan(i * length, length).ToArray()).ToArray();
    }

    internal static double Cosine(float[] a, float[] b)
    {
        double dot = 0, na = 0, nb = 0;
        for (var i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            na += (double)a[i] * a[i];
            nb += (double)b[i] * b[i];
        }
        return dot / Math.Sqrt(na * nb);
    }
}
