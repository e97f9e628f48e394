using MLTransfer.Tests.TestSupport;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Featurization;
using MLTransfer.Techniques.DomainAdaptation;
using MLTransfer.Torch.DomainAdaptation;
using MLTransfer.Torch.FineTuning;
using NUnit.Framework;

namespace MLTransfer.Torch.Tests.DomainAdaptation;

/// <summary>DANN and MMD / Deep CORAL trained end to end through the backbone's top block (<see cref="FeatureAdapterOptions.TrainedBackboneBlocks"/>).</summary>
public class EndToEndDomainAdaptationTests
{
    private const int ImageSize = 32;
    private static readonly string[] Classes = ["0", "1", "2"];

    private static FeatureAdapterOptions Options(string method, DomainBatchNorm batchNorm, string graphFolder)
    {
        FeatureAdapterOptions options = method switch
        {
            "dann" => new DannOptions(),
            "mmd" => new MmdOptions(),
            "deep-coral" => new MmdOptions { Loss = DiscrepancyLoss.DeepCoral },
            _ => new MmdOptions { AdaptationWeight = 0 },
        };
        options.TrainedBackboneBlocks = 1;
        options.BatchNorm = batchNorm;
        options.Epochs = 2;
        options.BatchSize = 8;
        options.Seed = 3;
        options.Engine = new FeaturizerOptions { ImageSize = ImageSize, GraphDirectory = graphFolder };
        return options;
    }

    private static DomainAdaptationEstimator Estimator(MLContext ml, FeatureAdapterOptions options) => options switch
    {
        DannOptions dann => ml.Transfer().DomainAdaptation(dann),
        MmdOptions mmd => ml.Transfer().DomainAdaptation(mmd),
        _ => throw new ArgumentOutOfRangeException(nameof(options)),
    };

    [TestCase("dann", DomainBatchNorm.PerDomain)]
    [TestCase("mmd", DomainBatchNorm.Mixed)]
    [TestCase("deep-coral", DomainBatchNorm.Frozen)]
    public void The_reloaded_zip_agrees_with_the_TorchSharp_model_and_only_the_top_block_changed(string method, DomainBatchNorm batchNorm)
    {
        var graphs = TestData.TempFolder();
        var source = Domains.SourceImages(6, 0, Classes);
        var options = Options(method, batchNorm, graphs);
        options.TargetImages = Domains.TargetImages(6, 10, Classes).Select(e => e.ImagePath).ToList();
        var probes = Domains.TargetImages(3, 15, Classes).Select(e => new ImageExample { ImagePath = e.ImagePath }).ToList();
        var ml = new MLContext(seed: 1);

        var result = Estimator(ml, options).FitDetailed(ml.Data.LoadFromEnumerable(source));
        var path = Path.Combine(TestData.TempFolder(), "model.zip");
        ml.Model.Save(result.Model, ml.Data.LoadFromEnumerable(probes).Schema, path);

        var fresh = new MLContext();
        var scored = fresh.Model.Load(path, out _).Transform(fresh.Data.LoadFromEnumerable(probes));
        var reloaded = scored.GetColumn<VBuffer<float>>("Score").Select(v => v.DenseValues().ToArray()).ToArray();
        var labels = scored.GetColumn<ReadOnlyMemory<char>>("PredictedLabel").Select(l => l.ToString()).ToArray();
        using var featurizer = new OnnxImageFeaturizer(Backbone.ResNet18(), options.Engine);
        var raw = featurizer.Featurize(probes.Select(p => p.ImagePath).ToList()).Features.Select(f => f!).ToArray();
        var torch = result.ToHeadFeatures(raw, probes).Select(f => result.Head.Predict(f)).ToArray();
        var fromImagesOnly = result.ToHeadFeatures(raw.Select(f => new float[f.Length]).ToArray(), probes).Select(f => result.Head.Predict(f)).ToArray();

        Assert.That(result.Method, Is.EqualTo(method));
        var maxDifference = reloaded.Zip(torch).Max(p => p.First.Zip(p.Second).Max(q => Math.Abs(q.First - q.Second)));
        Assert.That(maxDifference, Is.LessThanOrEqualTo(1e-4), "the exported .zip computes what the trained TorchSharp network computes");
        Assert.That(labels, Is.EqualTo(torch.Select(p => Classes[Array.IndexOf(p, p.Max())]).ToArray()));
        Assert.That(reloaded.Select(p => p.Sum()), Is.All.EqualTo(1f).Within(1e-3f));
        Assert.That(fromImagesOnly, Is.EqualTo(torch), "the trained blocks run on the images, not on the frozen features");

        var blocks = BackboneBlocks.Import(Backbone.ResNet18(), ImageSize);
        var firstTrainedNode = blocks.Backbone.IndexOfNode(blocks.Cut(1)) + 1;
        var trainedInputs = blocks.Backbone.Nodes.Skip(firstTrainedNode).SelectMany(n => n.Inputs).ToHashSet(StringComparer.Ordinal);
        var exported = Directory.GetFiles(graphs, "*.onnx").Where(f => f.Contains("-backbone-", StringComparison.Ordinal)).OrderBy(f => f.Length).First();
        var pretrained = FeaturizerGraph.Load(featurizer.GraphPath).Graph.Initializer.ToDictionary(t => t.Name, FeaturizerGraph.TensorValues);
        var changed = FeaturizerGraph.Load(exported).Graph.Initializer
            .Where(t => t.DataType == 1 && !pretrained[t.Name].SequenceEqual(FeaturizerGraph.TensorValues(t)))
            .Select(t => t.Name).ToList();
        Assert.That(changed, Is.Not.Empty, "the top block trained");
        Assert.That(changed, Is.SubsetOf(trainedInputs), "the lower blocks stay frozen");
    }

    [TestCase("dann")]
    [TestCase("mmd")]
    public void Training_never_reads_target_labels(string method)
    {
        // The same target images, in the same order, under their true class folders and renamed into one folder with
        // nothing in a path that carries a label, must give the same model.
        var images = Domains.TargetImages(5, 10, Classes);
        var labelledFolder = TestData.TempFolder();
        var unlabelledFolder = TestData.TempFolder();
        Directory.CreateDirectory(Path.Combine(unlabelledFolder, "unsorted"));
        for (var i = 0; i < images.Count; i++)
        {
            Directory.CreateDirectory(Path.Combine(labelledFolder, images[i].Label));
            File.Copy(images[i].ImagePath, Path.Combine(labelledFolder, images[i].Label, Path.GetFileName(images[i].ImagePath)));
            File.Copy(images[i].ImagePath, Path.Combine(unlabelledFolder, "unsorted", $"x{i:D4}.png"));
        }
        var source = Domains.SourceImages(5, 0, Classes);
        var probes = Domains.TargetImages(2, 15, Classes).Select(e => new ImageExample { ImagePath = e.ImagePath }).ToList();
        var outputs = new List<float[][]>();
        foreach (var folder in new[] { labelledFolder, unlabelledFolder })
        {
            var ml = new MLContext(seed: 1);
            var options = Options(method, DomainBatchNorm.PerDomain, TestData.TempFolder());
            options.TargetFolder = folder;
            var model = Estimator(ml, options).Fit(ml.Data.LoadFromEnumerable(source));
            outputs.Add(model.Transform(ml.Data.LoadFromEnumerable(probes)).GetColumn<VBuffer<float>>("Score").Select(v => v.DenseValues().ToArray()).ToArray());
        }
        for (var i = 0; i < outputs[0].Length; i++)
            Assert.That(outputs[1][i], Is.EqualTo(outputs[0][i]).Within(1e-5f));
    }

    [TestCase("adapter-source-only-top1", 1, 0.0)]
    [TestCase("dann-top1", 1, 1.0)]
    [TestCase("mmd-top2", 2, 1.0)]
    [TestCase("deep-coral", 0, 1.0)]
    public void Benchmark_methods_train_the_named_blocks_and_compare_with_the_same_network_without_adaptation(string name, int blocks, double weight)
    {
        var setup = new BenchmarkSetup(Domains.Target, Backbone.ResNet18(), null!, new FeaturizerOptions { ImageSize = ImageSize }, Seed: 5);
        var method = TorchDomainAdaptationCatalog.BenchmarkMethods.Single(m => m.Name == name);
        var peer = TorchDomainAdaptationCatalog.BenchmarkMethods.Single(m => m.Name == method.Baseline);

        var options = (FeatureAdapterOptions)method.Create(new MLContext(), setup).Options;
        var peerOptions = (FeatureAdapterOptions)peer.Create(new MLContext(), setup).Options;

        Assert.That(method.Stochastic, Is.True);
        Assert.That(options.TrainedBackboneBlocks, Is.EqualTo(blocks));
        Assert.That(options.AdaptationWeight, Is.EqualTo(weight));
        Assert.That(peerOptions.AdaptationWeight, Is.Zero);
        Assert.That((peerOptions.TrainedBackboneBlocks, peerOptions.Epochs, peerOptions.BatchSize, peerOptions.LearningRate, peerOptions.BatchNorm),
            Is.EqualTo((options.TrainedBackboneBlocks, options.Epochs, options.BatchSize, options.LearningRate, options.BatchNorm)), "same network and budget");
        Assert.That((options.Seed, options.TargetFolder), Is.EqualTo((5, Domains.Target)));
    }
}
