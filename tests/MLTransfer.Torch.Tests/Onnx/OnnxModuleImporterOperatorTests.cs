using MLTransfer.Tests.TestSupport;
using Google.Protobuf;
using MLTransfer.Torch.Onnx;
using NUnit.Framework;
using Onnx;
using static TorchSharp.torch;

namespace MLTransfer.Torch.Tests.Onnx;

/// <summary>Every supported operator, with the awkward options (groups, dilations, asymmetric pads), against ONNX Runtime.</summary>
public class OnnxModuleImporterOperatorTests
{
    private static readonly Random Rng = new(42);

    private static TensorProto Floats(string name, params long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(dims);
        long count = dims.Aggregate(1L, (a, b) => a * b);
        for (long i = 0; i < count; i++)
        {
            t.FloatData.Add((float)((Rng.NextDouble() * 2) - 1));
        }

        return t;
    }

    private static TensorProto Scalar(string name, float value)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.FloatData.Add(value);
        return t;
    }

    private static TensorProto Longs(string name, params long[] values)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        t.Dims.Add(values.Length);
        t.Int64Data.AddRange(values);
        return t;
    }

    private static AttributeProto Ints(string name, params long[] v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Ints, Ints = { v } };

    private static AttributeProto Int(string name, long v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = v };

    private static AttributeProto Float(string name, float v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = v };

    private static NodeProto Node(string op, string[] inputs, string[] outputs, params AttributeProto[] attributes) =>
        new() { OpType = op, Name = op + "_" + outputs[0], Input = { inputs }, Output = { outputs }, Attribute = { attributes } };

    private static ValueInfoProto Value(string name, params long[] dims)
    {
        var shape = new TensorShapeProto();
        shape.Dim.AddRange(dims.Select(d => new TensorShapeProto.Types.Dimension { DimValue = d }));
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = 1, Shape = shape } } };
    }

    private static ModelProto AllOperatorsModel()
    {
        var g = new GraphProto { Name = "ops" };
        g.Initializer.AddRange(
        [
            Floats("W", 6, 2, 3, 3), Floats("B", 6),
            Floats("bnScale", 6), Floats("bnBias", 6), Floats("bnMean", 6),
            Scalar("clipMin", 0f), Scalar("clipMax", 0.5f), Floats("shift", 6, 1, 1), Longs("splitSizes", 12, 12), Longs("shape", 0, -1),
            Floats("Wg", 5, 12), Floats("Cg", 5), Floats("Wg2", 12, 5), Floats("Cg2", 5), Floats("Wm", 5, 5),
        ]);
        var variance = Floats("bnVar", 6);
        for (int i = 0; i < variance.FloatData.Count; i++)
        {
            variance.FloatData[i] = Math.Abs(variance.FloatData[i]) + 0.1f;
        }

        g.Initializer.Add(variance);
        g.Node.AddRange(
        [
            Node("Conv", ["X", "W", "B"], ["C0"], Int("group", 2), Ints("strides", 2, 1), Ints("dilations", 1, 2), Ints("pads", 1, 0, 2, 1), Ints("kernel_shape", 3, 3)),
            Node("BatchNormalization", ["C0", "bnScale", "bnBias", "bnMean", "bnVar"], ["C1"], Float("epsilon", 1e-3f)),
            Node("Clip", ["C1", "clipMin", "clipMax"], ["R"]),
            Node("MaxPool", ["C1"], ["M"], Ints("kernel_shape", 3, 2), Ints("strides", 2, 2), Ints("pads", 1, 0, 0, 1)),
            Node("AveragePool", ["C1"], ["A0"], Ints("kernel_shape", 2, 3), Ints("strides", 1, 2), Ints("pads", 0, 1, 1, 0), Int("count_include_pad", 0)),
            Node("AveragePool", ["C1"], ["A1"], Ints("kernel_shape", 2, 3), Ints("strides", 1, 2), Ints("pads", 0, 1, 1, 0), Int("count_include_pad", 1)),
            Node("Relu", ["C0"], ["Rl"]),
            Node("Sigmoid", ["R"], ["S"]),
            Node("Mul", ["S", "Rl"], ["Mu"]),
            Node("Sub", ["Mu", "shift"], ["Sb"]),
            Node("GlobalAveragePool", ["M"], ["G1"]),
            Node("GlobalAveragePool", ["A0"], ["G2"]),
            Node("GlobalAveragePool", ["A1"], ["G3"]),
            Node("GlobalAveragePool", ["Sb"], ["G4"]),
            Node("Concat", ["G1", "G2", "G3", "G4"], ["Cat"], Int("axis", 1)),
            Node("Split", ["Cat", "splitSizes"], ["S1", "S2"], Int("axis", 1)),
            Node("Add", ["S1", "S2"], ["Ad"]),
            Node("Flatten", ["Ad"], ["Fl"], Int("axis", 1)),
            Node("Reshape", ["Fl", "shape"], ["Rs"]),
            Node("Identity", ["Rs"], ["Id"]),
            Node("Dropout", ["Id"], ["Dr"]),
            Node("Gemm", ["Dr", "Wg", "Cg"], ["Gm"], Int("transB", 1), Float("alpha", 0.5f), Float("beta", 2f)),
            Node("Gemm", ["Dr", "Wg2", "Cg2"], ["Gm2"]),
            Node("Constant", [], ["two"]),
            Node("Div", ["Gm2", "two"], ["Dv"]),
            Node("MatMul", ["Dv", "Wm"], ["Mm"]),
            Node("Add", ["Gm", "Mm"], ["Sum"]),
            Node("Softmax", ["Sum"], ["Y"], Int("axis", 1)),
        ]);
        g.Node.Single(n => n.OpType == "Constant").Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = Scalar("two", 2f) });
        g.Input.Add(Value("X", 2, 4, 9, 11));
        g.Output.Add(Value("Y", 2, 5));
        var model = new ModelProto { IrVersion = 7, Graph = g };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = string.Empty, Version = 13 });
        return model;
    }

    [Test]
    public void Should_match_onnx_runtime_for_every_supported_operator()
    {
        var model = AllOperatorsModel();
        Assert.That(model.Graph.Node.Select(n => n.OpType).Distinct(), Is.EquivalentTo(OnnxModuleImporter.SupportedOperators));

        float[] input = Enumerable.Range(0, 2 * 4 * 9 * 11).Select(_ => (float)((Rng.NextDouble() * 4) - 2)).ToArray();
        string[] probes = ["C1", "M", "A0", "A1", "Cat", "Y"];
        using var module = OnnxModuleImporter.Import(model);
        module.eval();
        using var scope = NewDisposeScope();
        var results = module.Run(new Dictionary<string, Tensor> { ["X"] = tensor(input, [2, 4, 9, 11]) }, probes);
        foreach (string probe in probes)
        {
            var probeModel = model.Clone();
            probeModel.Graph.Output.Clear();
            probeModel.Graph.Output.Add(new ValueInfoProto { Name = probe });
            float[] expected = TestData.RunOnnxRuntime(probeModel.ToByteArray(), "X", input, [2, 4, 9, 11], probe);
            double maxAbs = TestData.MaxAbsDifference(results[probe].data<float>().ToArray(), expected);
            Assert.That(maxAbs, Is.LessThanOrEqualTo(1e-5), probe);
        }

        Assert.That(results["M"].shape, Is.EqualTo(new long[] { 2, 6, 2, 4 }));
        Assert.That(results["A0"].shape, Is.EqualTo(new long[] { 2, 6, 5, 4 }));
    }

    [Test]
    public void Should_name_the_operator_and_node_when_the_operator_is_not_supported()
    {
        var model = AllOperatorsModel();
        model.Graph.Node.Add(Node("LSTM", ["Y"], ["Z"]));
        model.Graph.Node[^1].Name = "my_lstm";
        var error = Assert.Throws<UnsupportedOnnxOperatorException>(() => OnnxModuleImporter.Import(model))!;
        Assert.That(error.OpType, Is.EqualTo("LSTM"));
        Assert.That(error.NodeName, Is.EqualTo("my_lstm"));
        Assert.That(error.Message, Does.Contain("LSTM").And.Contain("my_lstm"));
    }
}
