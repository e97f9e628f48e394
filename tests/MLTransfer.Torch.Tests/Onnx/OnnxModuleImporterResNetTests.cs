using MLTransfer.Tests.TestSupport;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Torch.FineTuning;
using Google.Protobuf;
using MLTransfer.Torch.Onnx;
using NUnit.Framework;
using static TorchSharp.torch;

namespace MLTransfer.Torch.Tests.Onnx;

public class OnnxModuleImporterResNetTests
{
    private static float[][] Pixels224() =>
        ImagePixelReader.Read(TestData.Images(classes: 3, perClass: 1).Select(i => i.Path).ToArray(), 224);

    [Test]
    public void Should_match_onnx_runtime_on_real_images_through_preprocess_and_resnet18()
    {
        float[][] pixels = Pixels224();
        byte[] prepBytes = File.ReadAllBytes(TestData.ResNetPreprocessPath);
        byte[] resnetBytes = File.ReadAllBytes(TestData.ResNet18Path);
        long[] one = [1, 3, 224, 224];

        var expected = pixels.Select(p =>
        {
            float[] prepared = TestData.RunOnnxRuntime(prepBytes, "OriginalInput", p, one, "PreprocessedInput");
            return TestData.RunOnnxRuntime(resnetBytes, "Input247", prepared, one, "Pooling395_Output_0");
        }).ToArray();

        using var prep = OnnxModuleImporter.Import(TestData.ResNetPreprocessPath);
        using var resnet = OnnxModuleImporter.Import(TestData.ResNet18Path);
        prep.eval();
        resnet.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var batch = tensor(pixels.SelectMany(p => p).ToArray(), [pixels.Length, 3, 224, 224]);
        var features = resnet.forward(prep.forward(batch));
        Assert.That(features.shape, Is.EqualTo(new long[] { pixels.Length, 512, 1, 1 }));
        float[] actual = features.data<float>().ToArray();
        float[] wanted = expected.SelectMany(e => e).ToArray();

        double maxAbs = TestData.MaxAbsDifference(actual, wanted);
        double magnitude = wanted.Max(Math.Abs);
        TestContext.Out.WriteLine($"ResNet18 features: max |ORT - Torch| = {maxAbs:E3}, max |feature| = {magnitude:F3}");
        Assert.That(maxAbs, Is.LessThanOrEqualTo(1e-4));
        Assert.That(magnitude, Is.GreaterThan(0.1), "features must not be trivially zero");
    }

    [Test]
    public void Should_match_onnx_runtime_on_the_size_independent_pixel_graph_at_96_px()
    {
        float[][] pixels = ImagePixelReader.Read(TestData.Images(classes: 2, perClass: 1).Select(i => i.Path).ToArray(), 96);
        var model = FeaturizerGraph.Build(Backbone.ResNet18(), 96);
        byte[] bytes = model.ToByteArray();
        float[] expected = TestData.RunOnnxRuntime(bytes, FeaturizerGraph.InputName, pixels.SelectMany(p => p).ToArray(), [2, 3, 96, 96], FeaturizerGraph.OutputName);

        using var module = OnnxModuleImporter.Import(model);
        module.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var features = module.forward(tensor(pixels.SelectMany(p => p).ToArray(), [2, 3, 96, 96]));
        Assert.That(features.shape, Is.EqualTo(new long[] { 2, 512 }));
        double maxAbs = TestData.MaxAbsDifference(features.data<float>().ToArray(), expected);
        TestContext.Out.WriteLine($"96 px pixel graph: max |ORT - Torch| = {maxAbs:E3}, max |feature| = {expected.Max(Math.Abs):F3}");
        Assert.That(maxAbs, Is.LessThanOrEqualTo(1e-4));
    }

    [Test]
    public void Should_compute_the_same_output_when_fed_a_cached_intermediate_value()
    {
        using var resnet = OnnxModuleImporter.Import(FeaturizerGraph.Build(Backbone.ResNet18(), 64));
        resnet.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        manual_seed(3);
        var input = randn(2, 3, 64, 64) * 50;
        // The output of the last-but-one residual block (a Relu right after an Add).
        string cut = resnet.Nodes.Where(n => n.OpType == "Relu" && resnet.Nodes[n.Index - 1].OpType == "Add").SkipLast(1).Last().Outputs[0];

        var full = resnet.forward(input);
        var lower = resnet.Run(new Dictionary<string, Tensor> { [resnet.InputName] = input }, cut)[cut];
        var upper = resnet.Run(new Dictionary<string, Tensor> { [cut] = lower }, resnet.OutputName)[resnet.OutputName];

        Assert.That(upper.allclose(full, rtol: 0, atol: 1e-6), Is.True);
        Assert.That(lower.shape[1], Is.EqualTo(512));
    }

    [Test]
    public void Should_train_parameters_and_update_batchnorm_statistics_only_when_not_frozen()
    {
        using var resnet = OnnxModuleImporter.Import(FeaturizerGraph.Build(Backbone.ResNet18(), 64));
        var firstBn = resnet.Nodes.First(n => n.OpType == "BatchNormalization");
        var firstConv = resnet.Nodes.First(n => n.OpType == "Conv");
        Tensor runningMean = resnet.BatchNormStatistics[firstBn.Inputs[3]];
        using var before = runningMean.clone();
        Assert.That(resnet.TrainableParameters, Has.Count.EqualTo(firstConvCount(resnet) + (2 * resnet.Nodes.Count(n => n.OpType == "BatchNormalization"))));

        manual_seed(5);
        resnet.train();
        resnet.FreezeBatchNormStatistics = true;
        using (var scope = NewDisposeScope())
        {
            resnet.forward(randn(2, 3, 64, 64) * 50).sum().backward();
        }

        Assert.That(runningMean.allclose(before, rtol: 0, atol: 0), Is.True, "frozen statistics must not move");
        Assert.That(resnet.TrainableParameters[firstConv.Inputs[1]].grad, Is.Not.Null);

        resnet.FreezeBatchNormStatistics = false;
        using (var scope = NewDisposeScope())
        {
            resnet.forward(randn(2, 3, 64, 64) * 50).sum();
        }

        Assert.That(runningMean.allclose(before, rtol: 0, atol: 0), Is.False, "training-mode statistics must move");

        string boundary = resnet.Nodes[resnet.Nodes.Count / 2].Name;
        int frozen = resnet.FreezeNodesBefore(boundary);
        Assert.That(frozen, Is.GreaterThan(0));
        Assert.That(resnet.TrainableParameters[firstConv.Inputs[1]].requires_grad, Is.False);
        Assert.That(resnet.TrainableParameters.Values.Count(p => p.requires_grad), Is.EqualTo(resnet.TrainableParameters.Count - frozen));

        static int firstConvCount(OnnxGraphModule m) => m.Nodes.Where(n => n.OpType == "Conv").Sum(n => n.Inputs.Count(i => i.Length > 0) - 1);
    }
}
