using Onnx;

namespace MLTransfer.Torch.FineTuning;

/// <summary>
/// Builds the ResNet18 featurizer graph that fine-tuning starts from, out of the two ONNX files the NuGet package
/// Microsoft.ML.DnnImageFeaturizer.ResNet18 ships: input <see cref="InputName"/> [N,3,H,W] RGB planar 0–255
/// (what ML.NET's ExtractPixels gives), output <see cref="OutputName"/> [N,512]. The preprocessing (RGB → BGR,
/// minus the mean image; a per-channel mean when H,W ≠ 224) and the final pooling (global average pooling,
/// equal to the 7×7 average pool at 224 px) are made size-independent so small images can be trained on.
/// </summary>
/// <remarks>Stands in for the foundation library's featurizer graph until fine-tuning is wired onto it.</remarks>
internal static class ResNet18PixelGraph
{
    /// <summary>The graph input: RGB planar pixels in 0–255.</summary>
    public const string InputName = "Pixels";

    /// <summary>The graph output: the 512 backbone features.</summary>
    public const string OutputName = "Features";

    /// <summary>The number of features.</summary>
    public const int FeatureCount = 512;

    /// <summary>The folder holding DnnImageModels/ (the package's build props copy it next to the app).</summary>
    public static string ModelsFolder => Path.Combine(AppContext.BaseDirectory, "DnnImageModels");

    /// <summary>Builds the graph for square images of side <paramref name="imageSize"/>.</summary>
    /// <param name="imageSize">The image side in pixels.</param>
    public static ModelProto Build(int imageSize)
    {
        var prep = ModelProto.Parser.ParseFromFile(Path.Combine(ModelsFolder, "ResNetPrepOnnx", "ResNetPreprocess.onnx"));
        var resnet = ModelProto.Parser.ParseFromFile(Path.Combine(ModelsFolder, "ResNet18Onnx", "ResNet18.onnx"));
        GraphProto graph = resnet.Graph;
        string resnetInput = graph.Input.Select(i => i.Name).First(n => graph.Initializer.All(t => t.Name != n));
        string resnetOutput = graph.Output[0].Name;

        // Preprocessing: same nodes, renamed input; the mean image becomes a per-channel mean when the size differs.
        TensorProto mean = prep.Graph.Initializer.Single();
        if (imageSize != 224)
        {
            float[] values = mean.FloatData.Count > 0 ? mean.FloatData.ToArray() : System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(mean.RawData.Span).ToArray();
            int plane = values.Length / 3;
            var channelMean = new TensorProto { Name = mean.Name, DataType = mean.DataType };
            channelMean.Dims.AddRange([1, 3, 1, 1]);
            channelMean.FloatData.AddRange(Enumerable.Range(0, 3).Select(c => values.Skip(c * plane).Take(plane).Average()));
            mean = channelMean;
        }

        var fused = new GraphProto { Name = "ResNet18Pixels" };
        fused.Initializer.Add(mean);
        string prepInput = prep.Graph.Input.Select(i => i.Name).First(n => n != mean.Name);
        string prepOutput = prep.Graph.Output[0].Name;
        foreach (var node in prep.Graph.Node)
        {
            var copy = node.Clone();
            Rename(copy, prepInput, InputName);
            Rename(copy, prepOutput, resnetInput);
            fused.Node.Add(copy);
        }

        foreach (var node in graph.Node)
        {
            var copy = node.Clone();
            if (copy.Output.Contains(resnetOutput) && copy.OpType == "AveragePool")
            {
                copy.OpType = "GlobalAveragePool";
                copy.Attribute.Clear();
            }

            fused.Node.Add(copy);
        }

        fused.Node.Add(new NodeProto { OpType = "Flatten", Name = "FeaturesFlatten", Input = { resnetOutput }, Output = { OutputName }, Attribute = { new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 } } });
        fused.Initializer.AddRange(graph.Initializer);
        fused.Input.Add(FloatValue(InputName, ["N", 3, imageSize, imageSize]));
        fused.Output.Add(FloatValue(OutputName, ["N", FeatureCount]));

        var model = new ModelProto { IrVersion = resnet.IrVersion, ProducerName = "MLTransfer", Graph = fused };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = string.Empty, Version = 8 });
        return model;
    }

    /// <summary>Describes a float tensor value; a string dimension is symbolic.</summary>
    internal static ValueInfoProto FloatValue(string name, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (object d in dims)
        {
            shape.Dim.Add(d is string s ? new TensorShapeProto.Types.Dimension { DimParam = s } : new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(d, System.Globalization.CultureInfo.InvariantCulture) });
        }

        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    private static void Rename(NodeProto node, string from, string to)
    {
        for (int i = 0; i < node.Input.Count; i++)
        {
            if (node.Input[i] == from)
            {
                node.Input[i] = to;
            }
        }

        for (int i = 0; i < node.Output.Count; i++)
        {
            if (node.Output[i] == from)
            {
                node.Output[i] = to;
            }
        }
    }
}
