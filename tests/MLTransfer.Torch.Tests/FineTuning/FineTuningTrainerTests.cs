using MLTransfer.Tests.TestSupport;
using MLTransfer.Backbones;
using MLTransfer.Data;
using Google.Protobuf;
using MLTransfer.Torch.FineTuning;
using MLTransfer.Torch.Training;
using NUnit.Framework;
using TorchSharp;

namespace MLTransfer.Torch.Tests.FineTuning;

public class FineTuningTrainerTests
{
    private static ImageExample[] Images(int classes = 3, int perClass = 4) =>
        TestData.Images(classes, perClass).Select(i => new ImageExample { ImagePath = i.Path, Label = "digit" + i.Label }).ToArray();

    private static FineTuningOptions Tiny(Action<FineTuningOptions>? change = null)
    {
        var options = new FineTuningOptions
        {
            Epochs = 2,
            BatchSize = 4,
            ImageSize = 64,
            UnfreezeAfterEpochs = 1,
            ValidationFraction = 0.25,
            WarmupEpochs = 0.5,
            Seed = 7,
            TrainTopBlocksOnly = false,
            TopBlockViews = 1,
        };
        change?.Invoke(options);
        return options;
    }

    [Test]
    public void Should_train_head_then_whole_network_and_export_onnx_that_matches_torchsharp()
    {
        var metrics = new List<TrainingEpochMetrics>();
        var images = Images();
        using var model = new FineTuningTrainer(Tiny(o => o.MetricsCallback = metrics.Add)).Fit(images);

        Assert.That(metrics.Select(m => m.Phase), Is.EqualTo(new[] { TrainingPhase.HeadOnly, TrainingPhase.WholeNetwork }));
        Assert.That(metrics.Select(m => m.Epoch), Is.EqualTo(new[] { 1, 2 }));
        Assert.That(metrics.All(m => double.IsFinite(m.TrainLoss) && m.TrainLoss > 0 && m.ImagesPerSecond > 0), Is.True);
        Assert.That(metrics.All(m => m.ValidationScore is >= 0 and <= 1), Is.True);
        Assert.That(model.ClassNames, Is.EqualTo(new[] { "digit0", "digit1", "digit2" }));

        float[][] pixels = ImagePixelReader.Read(images.Select(i => i.ImagePath).ToArray(), 64);
        float[][] torchProbabilities = model.PredictProbabilities(pixels);
        Assert.That(torchProbabilities.All(p => Math.Abs(p.Sum() - 1) < 1e-5), Is.True);

        byte[] onnx = model.ToOnnx().ToByteArray();
        float[] ortProbabilities = TestData.RunOnnxRuntime(onnx, model.InputName, pixels.SelectMany(p => p).ToArray(), [pixels.Length, 3, 64, 64], FineTunedModel.ProbabilitiesName);
        double maxAbs = TestData.MaxAbsDifference(torchProbabilities.SelectMany(p => p).ToArray(), ortProbabilities);
        TestContext.Out.WriteLine($"exported ONNX vs TorchSharp: max |Δp| = {maxAbs:E3}");
        Assert.That(maxAbs, Is.LessThanOrEqualTo(1e-4));

        // The export carries the trained weights: the original backbone must give different probabilities.
        using var original = Torch.Onnx.OnnxModuleImporter.Import(FeaturizerGraph.Build(Backbone.ResNet18(), 64));
        var exported = global::Onnx.ModelProto.Parser.ParseFrom(onnx);
        var firstConvWeight = exported.Graph.Node.First(n => n.OpType == "Conv" && !n.Input[1].StartsWith("mltransfer_", StringComparison.Ordinal)).Input[1];
        var trained = exported.Graph.Initializer.Single(t => t.Name == firstConvWeight);
        var before = original.TrainableParameters[firstConvWeight].data<float>().ToArray();
        var after = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(trained.RawData.Span).ToArray();
        Assert.That(after, Is.Not.EqualTo(before), "whole-network epochs must change the first convolution");
    }

    [Test]
    public void Should_export_and_predict_the_mean_of_each_image_and_its_mirror_image_with_test_time_flip()
    {
        var images = Images();
        using var plain = new FineTuningTrainer(Tiny()).Fit(images);
        using var flipped = new FineTuningTrainer(Tiny(o => o.TestTimeFlip = true)).Fit(images);
        Assert.That(flipped.TestTimeFlip && !plain.TestTimeFlip, Is.True);

        float[][] pixels = ImagePixelReader.Read(images.Select(i => i.ImagePath).ToArray(), 64);
        // The mirror images, made here: every row of every channel reversed.
        float[][] mirrored = pixels.Select(p =>
        {
            var m = new float[p.Length];
            for (var row = 0; row < p.Length / 64; row++)
                for (var x = 0; x < 64; x++)
                    m[(row * 64) + x] = p[(row * 64) + 63 - x];
            return m;
        }).ToArray();
        long[] shape = [pixels.Length, 3, 64, 64];
        var plainGraph = plain.ToOnnx().ToByteArray();
        var a = TestData.RunOnnxRuntime(plainGraph, plain.InputName, pixels.SelectMany(p => p).ToArray(), shape, plain.FeaturesName);
        var b = TestData.RunOnnxRuntime(plainGraph, plain.InputName, mirrored.SelectMany(p => p).ToArray(), shape, plain.FeaturesName);
        var expected = a.Zip(b, (u, v) => (u + v) / 2).ToArray();

        var flipGraph = flipped.ToOnnx().ToByteArray();
        var features = TestData.RunOnnxRuntime(flipGraph, flipped.InputName, pixels.SelectMany(p => p).ToArray(), shape, flipped.FeaturesName);
        Assert.That(TestData.MaxAbsDifference(features, expected), Is.LessThan(1e-3), "the same run trained the same weights; the export averages the two feature vectors");
        Assert.That(TestData.MaxAbsDifference(a, expected), Is.GreaterThan(1e-3), "mirroring changes the features");

        var ort = TestData.RunOnnxRuntime(flipGraph, flipped.InputName, pixels.SelectMany(p => p).ToArray(), shape, FineTunedModel.ProbabilitiesName);
        var torchProbabilities = flipped.PredictProbabilities(pixels).SelectMany(p => p).ToArray();
        Assert.That(TestData.MaxAbsDifference(torchProbabilities, ort), Is.LessThanOrEqualTo(1e-4), "TorchSharp predicts what the export computes");
        var fromFiles = flipped.PredictProbabilities(images.Select(i => i.ImagePath).ToArray()).SelectMany(p => p).ToArray();
        Assert.That(TestData.MaxAbsDifference(fromFiles, ort), Is.LessThanOrEqualTo(1e-4));
    }

    [Test]
    public void Should_average_the_logits_of_members_that_train_like_single_runs_with_their_seeds_on_the_shared_lower_blocks()
    {
        var images = Images();
        var cache = TestData.TempFolder();
        try
        {
            void TopBlocks(FineTuningOptions o)
            {
                o.ValidationFraction = 0;
                o.TrainTopBlocksOnly = true;
                o.TopBlocks = 2;
                o.CacheDirectory = cache;
            }
            var metrics = new List<TrainingEpochMetrics>();
            using var ensemble = new FineTuningTrainer(Tiny(o => { TopBlocks(o); o.EnsembleSize = 2; o.MetricsCallback = metrics.Add; })).Fit(images);
            using var first = new FineTuningTrainer(Tiny(TopBlocks)).Fit(images);
            using var second = new FineTuningTrainer(Tiny(o => { TopBlocks(o); o.Seed = FineTuningTrainer.MemberSeed(7, 1); })).Fit(images);
            Assert.That(FineTuningTrainer.MemberSeed(7, 1), Is.Not.EqualTo(7).And.Not.EqualTo(8));
            Assert.That(metrics.Select(m => (m.Member, m.Members, m.Epoch)), Is.EqualTo(new[] { (1, 2, 1), (1, 2, 2), (2, 2, 1), (2, 2, 2) }));
            Assert.That(ensemble.History, Has.Count.EqualTo(4));
            Assert.That((ensemble.EnsembleSize, ensemble.FeatureCount), Is.EqualTo((2, 2 * first.FeatureCount)));

            // The ground truth: the two single runs' logits, from their own exports, averaged, then a softmax, here.
            float[][] pixels = ImagePixelReader.Read(images.Select(i => i.ImagePath).ToArray(), 64);
            var flat = pixels.SelectMany(p => p).ToArray();
            long[] shape = [pixels.Length, 3, 64, 64];
            var classes = first.ClassNames.Count;
            float[] Logits(FineTunedModel single)
            {
                var features = TestData.RunOnnxRuntime(single.ToOnnx().ToByteArray(), single.InputName, flat, shape, single.FeaturesName);
                var (weights, biases) = single.HeadParameters();
                var n = single.FeatureCount;
                return Enumerable.Range(0, pixels.Length * classes)
                    .Select(j => biases[j % classes] + Enumerable.Range(0, n).Sum(f => weights[((j % classes) * n) + f] * features[((j / classes) * n) + f]))
                    .ToArray();
            }
            var a = Logits(first);
            var b = Logits(second);
            Assert.That(TestData.MaxAbsDifference(a, b), Is.GreaterThan(1e-3), "the members differ");
            var expected = new float[a.Length];
            for (var i = 0; i < pixels.Length; i++)
            {
                var mean = Enumerable.Range(0, classes).Select(k => (a[(i * classes) + k] + b[(i * classes) + k]) / 2.0).ToArray();
                var sum = mean.Sum(v => Math.Exp(v - mean.Max()));
                for (var k = 0; k < classes; k++)
                    expected[(i * classes) + k] = (float)(Math.Exp(mean[k] - mean.Max()) / sum);
            }

            var graph = ensemble.ToOnnx();
            var ort = TestData.RunOnnxRuntime(graph.ToByteArray(), ensemble.InputName, flat, shape, FineTunedModel.ProbabilitiesName);
            Assert.That(TestData.MaxAbsDifference(ort, expected), Is.LessThanOrEqualTo(1e-4), "the export averages the members' logits");
            var torchProbabilities = ensemble.PredictProbabilities(pixels).SelectMany(p => p).ToArray();
            Assert.That(TestData.MaxAbsDifference(torchProbabilities, expected), Is.LessThanOrEqualTo(1e-4), "TorchSharp predicts the same");
            var convolutions = first.ToOnnx().Graph.Node.Count(n => n.OpType == "Conv");
            Assert.That(graph.Graph.Node.Count(n => n.OpType == "Conv"), Is.GreaterThan(convolutions).And.LessThan(2 * convolutions), "the frozen lower blocks run once");
        }
        finally
        {
            Directory.Delete(cache, recursive: true);
        }
    }

    [Test]
    public void Should_train_each_member_of_a_folds_ensemble_like_a_single_run_on_its_own_fold()
    {
        var images = Images(classes: 2, perClass: 4);
        var cache = TestData.TempFolder();
        try
        {
            void Folds(FineTuningOptions o)
            {
                o.ValidationFraction = 0.5;
                o.TrainTopBlocksOnly = true;
                o.CacheDirectory = cache;
            }
            var ensembleOptions = Tiny(o => { Folds(o); o.EnsembleSize = 2; o.EnsembleFolds = true; });
            using var ensemble = new FineTuningTrainer(ensembleOptions).Fit(images);

            // The ground truth for member 2: a single run with its seed, trained on the images outside its fold and
            // validated on the fold, which the test picks by hand as the other half of each class's shuffle.
            var (_, firstFold) = ImageFolder.StratifiedSplit(images, 0.5, 7);
            var secondFold = images.Where(i => !firstFold.Contains(i)).ToArray();
            Assert.That(FineTuningTrainer.MemberSplit(images, ensembleOptions, 1).Validation, Is.EquivalentTo(secondFold));
            using var second = new FineTuningTrainer(Tiny(o => { Folds(o); o.Seed = FineTuningTrainer.MemberSeed(7, 1); }))
                .Fit(firstFold, secondFold);
            var paths = images.Select(i => i.ImagePath).ToArray();
            Assert.That(TestData.MaxAbsDifference(
                    ensemble.PredictMemberProbabilities(paths, 1).SelectMany(p => p).ToArray(),
                    second.PredictProbabilities(paths).SelectMany(p => p).ToArray()),
                Is.LessThanOrEqualTo(1e-5));
            Assert.That(ensemble.History.Select(m => m.ValidationScore), Has.All.Not.Null, "each member validates on its fold");
            Assert.Throws<ArgumentException>(() => new FineTuningTrainer(ensembleOptions).Fit(firstFold, secondFold));
            Assert.Throws<ArgumentOutOfRangeException>(() => new FineTuningTrainer(Tiny(o => { Folds(o); o.EnsembleSize = 3; o.EnsembleFolds = true; })));
        }
        finally
        {
            Directory.Delete(cache, recursive: true);
        }
    }

    [Test]
    public void Should_checkpoint_each_ensemble_member_in_its_folder_and_resume_a_finished_run_without_training()
    {
        var dir = TestData.TempFolder();
        try
        {
            var images = Images(classes: 2, perClass: 3);
            using var trained = new FineTuningTrainer(Tiny(o => { o.ValidationFraction = 0; o.Epochs = 1; o.UnfreezeAfterEpochs = 0; o.EnsembleSize = 2; o.CheckpointDirectory = dir; })).Fit(images);
            Assert.That(Enumerable.Range(0, 2).Select(k => File.Exists(Path.Combine(dir, FineTuningTrainer.MemberFolder(k), TrainingCheckpoint.FileName))), Is.All.True);

            var epochs = new List<TrainingEpochMetrics>();
            using var resumed = new FineTuningTrainer(Tiny(o =>
            {
                o.ValidationFraction = 0; o.Epochs = 1; o.UnfreezeAfterEpochs = 0; o.EnsembleSize = 2; o.CheckpointDirectory = dir; o.Resume = true; o.MetricsCallback = epochs.Add;
            })).Fit(images);
            Assert.That(epochs, Is.Empty, "both members had finished");
            Assert.That(resumed.HeadParameters().Weights, Is.EqualTo(trained.HeadParameters().Weights));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void Should_repeat_a_run_exactly_given_the_seed()
    {
        var images = Images(classes: 2, perClass: 3);
        var options = Tiny(o => { o.ValidationFraction = 0; o.UnfreezeAfterEpochs = 0; o.Epochs = 1; });
        using var a = new FineTuningTrainer(options).Fit(images);
        using var b = new FineTuningTrainer(options).Fit(images);
        Assert.That(b.History.Select(m => m.TrainLoss), Is.EqualTo(a.History.Select(m => m.TrainLoss)));
        Assert.That(b.HeadParameters().Weights, Is.EqualTo(a.HeadParameters().Weights));

        options.Seed = 8;
        using var c = new FineTuningTrainer(options).Fit(images);
        Assert.That(c.HeadParameters().Weights, Is.Not.EqualTo(a.HeadParameters().Weights));
    }

    [Test]
    public void Should_repeat_a_run_with_mixup_and_cutmix_exactly_given_the_seed_and_train_on_mixed_batches()
    {
        var images = Images(classes: 2, perClass: 3);
        var plain = Tiny(o => { o.ValidationFraction = 0; o.UnfreezeAfterEpochs = 0; o.Epochs = 1; });
        var mixed = Tiny(o => { o.ValidationFraction = 0; o.UnfreezeAfterEpochs = 0; o.Epochs = 1; o.MixupAlpha = 0.4; o.CutMixAlpha = 1; });
        using var a = new FineTuningTrainer(mixed).Fit(images);
        using var b = new FineTuningTrainer(mixed).Fit(images);
        using var c = new FineTuningTrainer(plain).Fit(images);
        Assert.That(b.History.Select(m => m.TrainLoss), Is.EqualTo(a.History.Select(m => m.TrainLoss)));
        Assert.That(b.HeadParameters().Weights, Is.EqualTo(a.HeadParameters().Weights));
        Assert.That(c.History.Select(m => m.TrainLoss), Is.Not.EqualTo(a.History.Select(m => m.TrainLoss)), "the batches were mixed");
        Assert.Throws<ArgumentOutOfRangeException>(() => new FineTuningTrainer(Tiny(o => o.MixupAlpha = double.NaN)).Fit(images));
    }

    [Test]
    public void Should_resume_a_killed_run_from_its_checkpoint_and_end_like_an_uninterrupted_one()
    {
        var images = Images(classes: 2, perClass: 3);
        string dir = TestData.TempFolder();
        try
        {
            var uninterruptedOptions = Tiny(o => o.ValidationFraction = 0);
            using var uninterrupted = new FineTuningTrainer(uninterruptedOptions).Fit(images);

            using var kill = new CancellationTokenSource();
            var killedOptions = Tiny(o => { o.ValidationFraction = 0; o.CheckpointDirectory = dir; o.MetricsCallback = _ => kill.Cancel(); });
            Assert.Throws<OperationCanceledException>(() => new FineTuningTrainer(killedOptions).Fit(images, cancellationToken: kill.Token));
            Assert.That(File.Exists(Path.Combine(dir, TrainingCheckpoint.FileName)), Is.True);
            Assert.That(Directory.GetFiles(dir, "*.tmp"), Is.Empty);

            var resumed = new List<TrainingEpochMetrics>();
            var resumeOptions = Tiny(o => { o.ValidationFraction = 0; o.CheckpointDirectory = dir; o.Resume = true; o.MetricsCallback = resumed.Add; });
            using var model = new FineTuningTrainer(resumeOptions).Fit(images);

            Assert.That(resumed.Select(m => m.Epoch), Is.EqualTo(new[] { 2 }), "only the missing epoch runs");
            Assert.That(model.History, Has.Count.EqualTo(2));
            Assert.That(model.History.Select(m => m.TrainLoss), Is.EqualTo(uninterrupted.History.Select(m => m.TrainLoss)));
            Assert.That(model.HeadParameters().Weights, Is.EqualTo(uninterrupted.HeadParameters().Weights));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void Should_train_only_the_top_blocks_on_lower_block_outputs_cached_on_disk_and_reuse_them()
    {
        var images = Images(classes: 2, perClass: 3);
        var metrics = new List<TrainingEpochMetrics>();
        var cache = TestData.TempFolder();
        var options = Tiny(o => { o.TrainTopBlocksOnly = true; o.TopBlocks = 2; o.UnfreezeAfterEpochs = 0; o.ValidationFraction = 0; o.MetricsCallback = metrics.Add; o.CacheDirectory = cache; });
        using var model = new FineTuningTrainer(options).Fit(images);
        Assert.That(metrics.All(m => m.Phase == TrainingPhase.TopBlocks), Is.True);
        var entries = Directory.GetFiles(cache, "*.bin", SearchOption.AllDirectories);
        Assert.That(entries, Has.Length.EqualTo(images.Length), "one cached lower-block output per image");
        var written = entries.ToDictionary(f => f, File.GetLastWriteTimeUtc);

        var progress = new List<Featurization.FeaturizationProgress>();
        options.CachingProgress = new Recorder<Featurization.FeaturizationProgress>(progress);
        options.MetricsCallback = null;
        using var again = new FineTuningTrainer(options).Fit(images);
        Assert.That(progress[0].FromCache, Is.EqualTo(images.Length), "a second run computes nothing");
        Assert.That(again.HeadParameters().Weights, Is.EqualTo(model.HeadParameters().Weights), "and trains on the same values");

        var original = FeaturizerGraph.Build(Backbone.ResNet18(), 64);
        var exported = model.ToOnnx(includeHead: false);
        var convs = exported.Graph.Node.Where(n => n.OpType == "Conv" && !n.Input[1].StartsWith("mltransfer_", StringComparison.Ordinal)).Select(n => n.Input[1]).ToList();
        float[] Weights(global::Onnx.ModelProto m, string name)
        {
            var t = m.Graph.Initializer.Single(i => i.Name == name);
            return t.FloatData.Count > 0 ? t.FloatData.ToArray() : System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(t.RawData.Span).ToArray();
        }

        Assert.That(Weights(exported, convs[0]), Is.EqualTo(Weights(original, convs[0])), "the lowest convolution is frozen");
        Assert.That(Weights(exported, convs[^1]), Is.Not.EqualTo(Weights(original, convs[^1])), "the top convolution trains");
    }

    [Test]
    public void Should_augment_top_blocks_training_with_several_cached_views_per_image()
    {
        var images = Images(classes: 2, perClass: 3);
        var cache = TestData.TempFolder();
        var options = Tiny(o => { o.TrainTopBlocksOnly = true; o.TopBlockViews = 3; o.UnfreezeAfterEpochs = 0; o.ValidationFraction = 0; o.CacheDirectory = cache; o.Epochs = 1; });
        using var model = new FineTuningTrainer(options).Fit(images);
        var contexts = Directory.GetDirectories(Path.Combine(cache, "blocks"));
        Assert.That(contexts, Has.Length.EqualTo(3), "the exact view and two augmented ones");
        var first = images[0].ImagePath;
        var hash = Convert.ToHexStringLower(Featurization.BottleneckCache.ContentHash(File.ReadAllBytes(first)));
        var views = contexts.Select(c => File.ReadAllBytes(Path.Combine(c, hash[..2], hash + ".bin"))).ToList();
        Assert.That(views.Select(Convert.ToBase64String).Distinct().Count(), Is.EqualTo(3), "each view holds a different picture");
    }

    [Test]
    public void Should_stop_with_one_line_when_the_loss_becomes_nan()
    {
        var options = Tiny(o => { o.LearningRate = 1e30; o.UnfreezeAfterEpochs = 0; o.ValidationFraction = 0; });
        var error = Assert.Throws<TrainingDivergedException>(() => new FineTuningTrainer(options).Fit(Images(classes: 2, perClass: 4)));
        Assert.That(error!.Message, Does.Contain("nothing was saved").And.Not.Contain("\n"));
    }

    [Test]
    public void Should_refuse_to_resume_another_runs_checkpoint_even_with_another_class_count()
    {
        var dir = TestData.TempFolder();
        using (new FineTuningTrainer(Tiny(o => { o.Epochs = 1; o.UnfreezeAfterEpochs = 0; o.ValidationFraction = 0; o.CheckpointDirectory = dir; })).Fit(Images(classes: 2, perClass: 3)))
        {
        }
        var error = Assert.Throws<InvalidOperationException>(() =>
            new FineTuningTrainer(Tiny(o => { o.ValidationFraction = 0; o.CheckpointDirectory = dir; o.Resume = true; })).Fit(Images(classes: 3, perClass: 2)));
        Assert.That(error!.Message, Does.Contain("belongs to another run"));
    }

    [Test]
    public void Should_not_grow_live_native_tensors_across_epochs()
    {
        var images = Images(classes: 2, perClass: 3);
        var live = new List<long>();
        var options = Tiny(o => { o.Epochs = 3; o.UnfreezeAfterEpochs = 0; o.ValidationFraction = 0.34; o.MetricsCallback = _ => live.Add(Training.TrainingLoopTests.LiveTensors()); });
        using var model = new FineTuningTrainer(options).Fit(images);
        Assert.That(live, Has.Count.EqualTo(3));
        Assert.That(live[2], Is.EqualTo(live[1]), $"live tensors per epoch: {string.Join(", ", live)}");
    }

    private sealed class Recorder<T>(List<T> into) : IProgress<T>
    {
        public void Report(T value) => into.Add(value);
    }
}
