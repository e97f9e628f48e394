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

    [TestCase("adapter-source-only-top1", "adapter-source-only", 1, 0.0)]
    [TestCase("dann-top1", "dann", 1, 1.0)]
    [TestCase("mmd-top2", "mmd", 2, 1.0)]
    [TestCase("deep-coral", "deep-coral", 0, 1.0)]
    public void Benchmark_methods_train_the_named_blocks_and_compare_with_the_same_network_without_adaptation(string name, string trained, int blocks, double weight)
    {
        var graphs = TestData.TempFolder();
        var engine = new FeaturizerOptions { ImageSize = ImageSize, GraphDirectory = graphs, CacheDirectory = TestData.TempFolder() };
        using var featurizer = new MemoizingFeaturizer(new OnnxImageFeaturizer(Backbone.ResNet18(), engine));
        var target = Domains.TargetFolder(Domains.TargetImages(4, 10, Classes), scramble: true);
        var setup = new BenchmarkSetup(target, Backbone.ResNet18(), featurizer, engine, Seed: 5);
        var method = TorchDomainAdaptationCatalog.BenchmarkMethods.Single(m => m.Name == name);
        var peer = TorchDomainAdaptationCatalog.BenchmarkMethods.Single(m => m.Name == method.Baseline);
        var source = new MLContext().Data.LoadFromEnumerable(Domains.SourceImages(4, 0, Classes));

        (string Method, FeatureAdapterOptions Options, List<string> Changed) Train(BenchmarkMethod m)
        {
            var own = engine.Clone();
            own.GraphDirectory = TestData.TempFolder();
            var estimator = m.Create(new MLContext(seed: 1), setup with { Engine = own });
            var options = (FeatureAdapterOptions)estimator.Options;
            options.Epochs = 1;
            options.BatchSize = 8;
            var result = estimator.FitDetailed(source);
            var written = Directory.GetFiles(own.GraphDirectory, "*-backbone-*.onnx");
            var changed = written.Length == 0 ? [] : ChangedInitializers(featurizer.GraphPath, written.OrderBy(f => f.Length).First());
            return (result.Method, options, changed);
        }

        var (methodName, options, changed) = Train(method);
        var (peerName, peerOptions, peerChanged) = method == peer ? (methodName, options, changed) : Train(peer);

        Assert.That(method.Stochastic, Is.True);
        Assert.That(methodName, Is.EqualTo(trained));
        Assert.That(peerName, Is.EqualTo("adapter-source-only"));
        Assert.That(options.TrainedBackboneBlocks, Is.EqualTo(blocks));
        Assert.That((options.AdaptationWeight, peerOptions.AdaptationWeight), Is.EqualTo((weight, 0.0)));
        Assert.That((peerOptions.TrainedBackboneBlocks, peerOptions.Epochs, peerOptions.BatchSize, peerOptions.LearningRate, peerOptions.BatchNorm),
            Is.EqualTo((options.TrainedBackboneBlocks, options.Epochs, options.BatchSize, options.LearningRate, options.BatchNorm)), "same network and budget");
        Assert.That((options.Seed, options.TargetFolder), Is.EqualTo((5, target)));
        var split = BackboneBlocks.Import(Backbone.ResNet18(), ImageSize);
        var named = split.ParametersFrom(split.FirstTrainedBlock(Math.Max(1, blocks))).ToHashSet(StringComparer.Ordinal);
        var statistics = split.Backbone.Nodes.Where(n => n.OpType == "BatchNormalization" && n.Inputs.Skip(1).Any(named.Contains)).SelectMany(n => n.Inputs.Skip(3)).ToHashSet();
        if (blocks == 0)
            Assert.That(changed, Is.Empty, "no backbone block trains");
        else
        {
            var weights = changed.Where(c => !statistics.Contains(c)).ToList();
            Assert.That(weights, Is.Not.Empty.And.SubsetOf(named), $"the top {blocks} block(s) train, nothing below");
            Assert.That(split.Blocks[split.FirstTrainedBlock(blocks)].Intersect(weights), Is.Not.Empty, "the lowest named block trains too");
            Assert.That(peerChanged.Where(c => !statistics.Contains(c)), Is.SubsetOf(named).And.Not.Empty, "the peer trains the same blocks");
        }
    }

    private static List<string> ChangedInitializers(string pretrainedGraph, string exportedGraph)
    {
        var pretrained = FeaturizerGraph.Load(pretrainedGraph).Graph.Initializer.ToDictionary(t => t.Name, FeaturizerGraph.TensorValues);
        return FeaturizerGraph.Load(exportedGraph).Graph.Initializer
            .Where(t => t.DataType == 1 && pretrained.ContainsKey(t.Name) && !pretrained[t.Name].SequenceEqual(FeaturizerGraph.TensorValues(t)))
            .Select(t => t.Name).ToList();
    }

    [TestCase("dann")]
    [TestCase("mmd")]
    public void Should_pass_the_estimator_checks_with_trained_backbone_blocks(string method)
    {
        var ml = new MLContext(seed: 1);
        var options = Options(method, DomainBatchNorm.PerDomain, TestData.TempFolder());
        options.Epochs = 1;
        options.TargetImages = Domains.TargetImages(4, 10, Classes).Select(e => e.ImagePath).ToList();
        EstimatorChecks.Run(ml, Estimator(ml, options), Domains.SourceImages(4, 0, Classes), Domains.TargetImages(2, 15, Classes).Select(e => e.ImagePath).ToList());
    }

    [Test]
    public void Should_resume_a_killed_run_and_end_like_an_uninterrupted_one()
    {
        float[][] Scores(Action<FeatureAdapterOptions> change)
        {
            var ml = new MLContext(seed: 1);
            var options = Options("dann", DomainBatchNorm.PerDomain, TestData.TempFolder());
            options.Epochs = 2;
            options.TargetImages = Domains.TargetImages(4, 10, Classes).Select(e => e.ImagePath).ToList();
            change(options);
            var model = Estimator(ml, options).Fit(ml.Data.LoadFromEnumerable(Domains.SourceImages(4, 0, Classes)));
            var probes = ml.Data.LoadFromEnumerable(Domains.TargetImages(2, 15, Classes).Select(e => new ImageExample { ImagePath = e.ImagePath }));
            return model.Transform(probes).GetColumn<VBuffer<float>>("Score").Select(v => v.DenseValues().ToArray()).ToArray();
        }

        var uninterrupted = Scores(_ => { });
        var dir = TestData.TempFolder();
        Assert.Throws<KilledException>(() => Scores(o => { o.CheckpointDirectory = dir; o.MetricsCallback = m => { if (m.Epoch == 1) throw new KilledException(); }; }));
        Assert.That(Torch.Training.TrainingCheckpoint.Find(dir)?.CompletedEpochs, Is.EqualTo(1));
        var epochs = new List<int>();
        var resumed = Scores(o => { o.CheckpointDirectory = dir; o.Resume = true; o.MetricsCallback = m => epochs.Add(m.Epoch); });
        Assert.That(epochs, Is.EqualTo(new[] { 2 }));
        for (var i = 0; i < resumed.Length; i++)
            Assert.That(resumed[i], Is.EqualTo(uninterrupted[i]).Within(1e-6f));
    }

    private sealed class KilledException : Exception
    {
    }
}
