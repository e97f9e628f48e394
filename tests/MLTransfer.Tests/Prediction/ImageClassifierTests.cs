using System.Collections.Concurrent;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using MLTransfer.Data;
using MLTransfer.Export;
using MLTransfer.Prediction;
using MLTransfer.Techniques.FeatureExtraction;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;
using SkiaSharp;

namespace MLTransfer.Tests.Prediction;

public class ImageClassifierTests
{
    /// <summary>Every ML.NET test image (BMP, palette GIF, CMYK JPEG, RGBA PNG, ...), sample photos, and PNGs in other pixel layouts.</summary>
    private static List<string> OddImages()
    {
        var folder = TestData.TempFolder();
        return Directory.GetFiles(TestData.MlNetImages).Where(ImageFileCheck.HasImageExtension).Order(StringComparer.Ordinal)
            .Concat([TestData.SampleImage("3", 15), TestData.SampleImage("8", 16), Path.Combine(TestData.ShiftedSample, "5", Directory.GetFiles(Path.Combine(TestData.ShiftedSample, "5")).Select(Path.GetFileName).Order(StringComparer.Ordinal).First()!)])
            .Append(ImageFactory.Png(Path.Combine(folder, "gray.png"), 70, 90, SKColorType.Gray8, SKAlphaType.Opaque))
            .Append(ImageFactory.Png(Path.Combine(folder, "unpremul.png"), 90, 50, SKColorType.Rgba8888, SKAlphaType.Unpremul))
            .Append(ImageFactory.Png16(Path.Combine(folder, "sixteen-bit.png"), 80, 60))
            .ToList();
    }

    /// <summary>What the .zip itself predicts through ML.NET's transforms (the ground truth): per image, the label and scores of each column pair.</summary>
    private static (string[] Labels, float[][] Scores) ZipPredictions(string model, IReadOnlyList<string> paths, string scoreColumn = "Score", string labelColumn = "PredictedLabel")
    {
        var ml = new MLContext(seed: 0);
        var output = ModelFile.Load(ml, model).Transform(ml.Data.LoadFromEnumerable(paths.Select(p => new PathRow { ImagePath = p })));
        return (output.GetColumn<ReadOnlyMemory<char>>(labelColumn).Select(l => l.ToString()).ToArray(),
            output.GetColumn<VBuffer<float>>(scoreColumn).Select(v => v.DenseValues().ToArray()).ToArray());
    }

    private sealed class PathRow
    {
        public string ImagePath { get; set; } = "";
    }

    private static void AssertSame(ImagePrediction actual, string label, float[] scores, string what)
    {
        Assert.That(actual.Label, Is.EqualTo(label), what);
        Assert.That(actual.Scores, Is.EqualTo(scores), what);
    }

    [TestCase(HeadKind.LbfgsMaximumEntropy)]
    [TestCase(HeadKind.SdcaMaximumEntropy)]
    [TestCase(HeadKind.LightGbm)]
    public void Should_predict_what_the_zip_predicts_on_every_odd_format_from_bytes_stream_path_and_batch(HeadKind head)
    {
        var model = TestModels.WithHead(head);
        var images = OddImages();
        var (labels, scores) = ZipPredictions(model, images);
        using var classifier = ImageClassifier.Load(model);
        var bytes = images.Select(File.ReadAllBytes).ToList();
        var batch = classifier.Predict(bytes.Select(b => (ReadOnlyMemory<byte>)b).ToList());
        var files = classifier.PredictFiles(images);
        for (var i = 0; i < images.Count; i++)
        {
            var name = Path.GetFileName(images[i]);
            AssertSame(classifier.Predict(bytes[i]), labels[i], scores[i], $"{name} from bytes");
            using (var stream = new MemoryStream(bytes[i]))
                AssertSame(classifier.Predict(stream), labels[i], scores[i], $"{name} from a stream");
            AssertSame(classifier.PredictFile(images[i]), labels[i], scores[i], $"{name} from its path");
            AssertSame(batch[i].Prediction!, labels[i], scores[i], $"{name} in a batch");
            AssertSame(files[i].Prediction!, labels[i], scores[i], $"{name} in a batch of files");
        }
        Assert.That(labels.Distinct().Count(), Is.GreaterThan(1), "the images should not all get one class");
    }

    [Test]
    public void Should_predict_what_the_zip_predicts_on_a_domain_adapted_graph()
    {
        var images = OddImages().Take(6).ToList();
        var (labels, scores) = ZipPredictions(TestModels.DomainAdaptation, images);
        using var classifier = ImageClassifier.Load(TestModels.DomainAdaptation);
        for (var i = 0; i < images.Count; i++)
            AssertSame(classifier.PredictFile(images[i]), labels[i], scores[i], images[i]);
        Assert.That(classifier.Info.Technique, Does.StartWith("domain-adaptation"));
    }

    [Test]
    public void Should_predict_an_MLImage_as_the_zips_transforms_do()
    {
        var model = TestModels.SingleTask;
        var translucent = new byte[50 * 30 * 4];
        for (var p = 0; p < translucent.Length; p += 4)
            (translucent[p], translucent[p + 1], translucent[p + 2], translucent[p + 3]) = ((byte)(p % 200 / 2), (byte)(p % 97), (byte)(p % 150 / 2), (byte)(100 + p % 150));
        // ML.NET's transforms dispose the images they read, so every use gets a fresh copy.
        var images = OddImages().Select(path => (Func<MLImage>)(() => MLImage.CreateFromFile(path)))
            .Append(() => MLImage.CreateFromPixels(50, 30, MLPixelFormat.Rgba32, translucent)).ToList();

        // The ground truth: the .zip's own chain after LoadImages, fed the same image.
        var ml = new MLContext(seed: 0);
        var parts = ((IEnumerable<ITransformer>)ModelFile.Load(ml, model)).SelectMany(t => t is IEnumerable<ITransformer> inner ? inner : [t]).ToList();
        Assert.That(parts[0], Is.InstanceOf<ImageLoadingTransformer>());
        var afterLoading = new TransformerChain<ITransformer>(parts.Skip(1).ToArray());
        using var classifier = ImageClassifier.Load(model);
        for (var i = 0; i < images.Count; i++)
        {
            var output = afterLoading.Transform(ml.Data.LoadFromEnumerable([new ImageRow { Image = images[i]() }]));
            using var cursor = output.GetRowCursor(output.Schema);
            var labelGetter = cursor.GetGetter<ReadOnlyMemory<char>>(output.Schema["PredictedLabel"]);
            var scoreGetter = cursor.GetGetter<VBuffer<float>>(output.Schema["Score"]);
            Assert.That(cursor.MoveNext());
            ReadOnlyMemory<char> label = default;
            VBuffer<float> scores = default;
            labelGetter(ref label);
            scoreGetter(ref scores);
            using var image = images[i]();
            AssertSame(classifier.Predict(image), label.ToString(), scores.DenseValues().ToArray(), $"MLImage {i} ({image.Width}x{image.Height})");
        }
    }

    private sealed class ImageRow
    {
        [ImageType(1, 1)] // the transforms read each image's own size
        public MLImage? Image { get; set; }
    }

    [Test]
    public void Should_predict_every_task_of_a_multi_task_model_as_the_zip_does()
    {
        var model = TestModels.MultiTask;
        var images = OddImages().Take(8).ToList();
        var ml = new MLContext(seed: 0);
        var output = ModelFile.Load(ml, model).Transform(ml.Data.LoadFromEnumerable(images.Select(p => new PathRow { ImagePath = p })));
        using var classifier = ImageClassifier.Load(model);

        Assert.That(classifier.Info.IsMultiTask);
        Assert.That(classifier.Info.Tasks.Select(t => (t.Name, t.Kind)),
            Is.EquivalentTo(new[] { ("digit", TaskKind.Classification), ("parity", TaskKind.Classification), ("value", TaskKind.Regression) }));
        Assert.That(classifier.Info.Tasks.Single(t => t.Name == "parity").Classes, Is.EqualTo(new[] { "even", "odd" }));
        var predictions = classifier.PredictFiles(images);
        foreach (var task in new[] { "digit", "parity" })
        {
            var labels = output.GetColumn<ReadOnlyMemory<char>>($"PredictedLabel_{task}").Select(l => l.ToString()).ToArray();
            var scores = output.GetColumn<VBuffer<float>>($"Score_{task}").Select(v => v.DenseValues().ToArray()).ToArray();
            for (var i = 0; i < images.Count; i++)
            {
                Assert.That(predictions[i].Prediction![task].Label, Is.EqualTo(labels[i]), $"{task} of {images[i]}");
                Assert.That(predictions[i].Prediction![task].Scores, Is.EqualTo(scores[i]), $"{task} of {images[i]}");
            }
        }
        var values = output.GetColumn<float>("Score_value").ToArray();
        for (var i = 0; i < images.Count; i++)
            Assert.That(predictions[i].Prediction!["value"].Value, Is.EqualTo(values[i]), $"value of {images[i]}");
        Assert.That(() => predictions[0].Prediction!.Label, Throws.InvalidOperationException.With.Message.Contains("3 tasks"));
    }

    [Test]
    public void Should_describe_the_model()
    {
        using var classifier = ImageClassifier.Load(TestModels.SingleTask);
        Assert.That(classifier.Info.Technique, Is.EqualTo("feature-extraction"));
        Assert.That(classifier.Info.Backbone, Is.EqualTo("resnet18"));
        Assert.That(classifier.Info.ImageSize, Is.EqualTo(TestModels.ImageSize));
        Assert.That(classifier.Info.IsMultiTask, Is.False);
        Assert.That(classifier.Info.Tasks.Single().Classes, Is.EqualTo(TestModels.Classes));
    }

    [Test]
    public void Should_reject_bad_bytes_with_the_reason_and_keep_predicting()
    {
        using var classifier = ImageClassifier.Load(TestModels.SingleTask);
        var folder = TestData.TempFolder();
        var good = File.ReadAllBytes(TestData.SampleImage("5", 3));
        var expected = classifier.Predict(good);
        var jpeg = File.ReadAllBytes(TestData.MlNetImage("hotdog.jpg"));
        var bomb = File.ReadAllBytes(ImageFactory.HugeHeaderPng(Path.Combine(folder, "bomb.png"), 100_000, 100_000));
        var cases = new (byte[] Bytes, string Reason)[]
        {
            ([], "empty"),
            ("just some text, not an image"u8.ToArray(), "not a supported image"),
            (jpeg[..(jpeg.Length / 2)], "truncated"),
            (bomb, "100000x100000, over the limit"),
            ([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13], "not a supported image"),
        };
        foreach (var (bytes, reason) in cases)
        {
            Assert.That(() => classifier.Predict(bytes), Throws.TypeOf<InvalidImageException>().With.Property(nameof(InvalidImageException.Reason)).Contains(reason));
            Assert.That(async () => await classifier.PredictAsync(bytes), Throws.TypeOf<InvalidImageException>().With.Message.Contains(reason));
        }
        var outcomes = classifier.Predict(cases.Select(c => (ReadOnlyMemory<byte>)c.Bytes).Append(good).ToList());
        for (var i = 0; i < cases.Length; i++)
            Assert.That(outcomes[i].Error, Does.Contain(cases[i].Reason));
        Assert.That(outcomes[^1].Succeeded);
        Assert.That(outcomes[^1].Prediction!.Scores, Is.EqualTo(expected.Scores));
        Assert.That(classifier.Predict(good).Scores, Is.EqualTo(expected.Scores), "predictions after bad input");
        Assert.That(() => classifier.PredictFile(Path.Combine(folder, "missing.jpg")), Throws.TypeOf<InvalidImageException>().With.Message.Contains("file not found"));
    }

    [Test]
    public void Should_refuse_a_stream_over_the_size_limit()
    {
        using var classifier = ImageClassifier.Load(TestModels.SingleTask, new ImageClassifierOptions { MaxImageBytes = 1000 });
        var bytes = File.ReadAllBytes(TestData.MlNetImage("tomato.jpg"));
        Assert.That(() => classifier.Predict(new MemoryStream(bytes)), Throws.TypeOf<InvalidImageException>().With.Message.Contains("over the limit of 1,000"));
        Assert.That(() => classifier.Predict(new NonSeekableStream(bytes)), Throws.TypeOf<InvalidImageException>().With.Message.Contains("over the limit of 1,000"));
    }

    [TestCase(true)]
    [TestCase(false)]
    public void Should_give_the_same_results_on_many_threads_as_on_one(bool dynamicBatching)
    {
        var images = OddImages().Select(File.ReadAllBytes).ToList();
        using var classifier = ImageClassifier.Load(TestModels.SingleTask, new ImageClassifierOptions { DynamicBatching = dynamicBatching, BatchDelay = TimeSpan.FromMilliseconds(5) });
        var single = images.Select(b => classifier.Predict(b)).ToList();
        var results = new ConcurrentBag<(int Image, ImagePrediction Prediction)>();
        var threads = Enumerable.Range(0, 8).Select(t => Task.Run(async () =>
        {
            for (var round = 0; round < 3; round++)
                for (var i = 0; i < images.Count; i++)
                {
                    var index = (i + t * 5) % images.Count;
                    var prediction = (t + round) % 2 == 0 ? await classifier.PredictAsync(images[index]) : classifier.Predict(images[index]);
                    results.Add((index, prediction));
                }
        })).ToArray();
        Task.WaitAll(threads);
        Assert.That(results, Has.Count.EqualTo(8 * 3 * images.Count));
        foreach (var (image, prediction) in results)
        {
            Assert.That(prediction.Label, Is.EqualTo(single[image].Label));
            Assert.That(prediction.Scores, Is.EqualTo(single[image].Scores), $"image {image}");
        }
    }

    [Test]
    public void Should_run_concurrent_requests_as_batches()
    {
        var image = File.ReadAllBytes(TestData.SampleImage("0", 4));
        using var classifier = ImageClassifier.Load(TestModels.SingleTask, new ImageClassifierOptions { InferenceThreads = 1, BatchDelay = TimeSpan.FromMilliseconds(200) });
        var expected = classifier.Predict(image);
        var before = classifier.Statistics;
        var predictions = Task.WhenAll(Enumerable.Range(0, 16).Select(_ => classifier.PredictAsync(image))).GetAwaiter().GetResult();
        var statistics = classifier.Statistics;
        Assert.That(statistics.Images - before.Images, Is.EqualTo(16));
        Assert.That(statistics.Batches - before.Batches, Is.LessThanOrEqualTo(8), "16 requests queued together run in batches of up to 8");
        foreach (var prediction in predictions)
            Assert.That(prediction.Scores, Is.EqualTo(expected.Scores));
    }

    [Test]
    public void Should_fail_clearly_on_files_that_are_not_mltransfer_models()
    {
        var folder = TestData.TempFolder();
        var text = Path.Combine(folder, "notes.zip");
        File.WriteAllText(text, "not a zip");
        Assert.That(() => ImageClassifier.Load(text), Throws.InstanceOf<InvalidDataException>().With.Message.Contains("not an ML.NET model"));
        Assert.That(() => ImageClassifier.Load(Path.Combine(folder, "missing.zip")), Throws.InstanceOf<FileNotFoundException>());

        var ml = new MLContext(seed: 0);
        var data = ml.Data.LoadFromEnumerable(new[] { new PathRow { ImagePath = "a" } });
        var other = Path.Combine(folder, "text-model.zip");
        ml.Model.Save(ml.Transforms.Text.FeaturizeText("Features", nameof(PathRow.ImagePath)).Fit(data), data.Schema, other);
        Assert.That(() => ImageClassifier.Load(other), Throws.InstanceOf<InvalidDataException>().With.Message.Contains("not an MLTransfer image model"));
    }

    [Test]
    public void Should_refuse_work_after_being_disposed()
    {
        var classifier = ImageClassifier.Load(TestModels.SingleTask);
        var image = File.ReadAllBytes(TestData.SampleImage("3", 2));
        classifier.PredictAsync(image).GetAwaiter().GetResult();
        classifier.Dispose();
        Assert.That(() => classifier.PredictAsync(image), Throws.InstanceOf<ObjectDisposedException>());
        Assert.That(() => classifier.Predict(image), Throws.InstanceOf<ObjectDisposedException>());
    }

    private sealed class NonSeekableStream(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();
    }
}
