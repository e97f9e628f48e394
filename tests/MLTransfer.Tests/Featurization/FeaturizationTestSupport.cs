using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Backbones;
using MLTransfer.Export;
using MLTransfer.Featurization;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Featurization;

/// <summary>Shared helpers: one fused-graph folder per test run, small images, scratch caches.</summary>
internal static class FeaturizationTestSupport
{
    private static readonly Lazy<string> Graphs = new(TestData.TempFolder);

    public const int Size = 64;

    public static OnnxImageFeaturizer Engine(string? cacheDirectory, int decodeThreads = 1, int batchSize = 4, int size = Size,
        long cacheMaxBytes = BottleneckCache.DefaultMaxBytes, int inferenceThreads = 1, IReadOnlyList<string>? layers = null) =>
        new(Backbone.ResNet18(), new FeaturizerOptions
        {
            ImageSize = size,
            Layers = layers,
            BatchSize = batchSize,
            DecodeThreads = decodeThreads,
            InferenceThreads = inferenceThreads,
            GraphDirectory = Graphs.Value,
            UseCache = cacheDirectory is not null,
            CacheDirectory = cacheDirectory,
            CacheMaxBytes = cacheMaxBytes,
        });

    /// <summary>The planar RGB pixels ML.NET's own image transforms produce for each image (the ground truth for the engine's).</summary>
    public static float[][] MlNetPixels(IReadOnlyList<string> paths, int size)
    {
        var ml = new MLContext(seed: 0);
        var data = ml.Data.LoadFromEnumerable(paths.Select(p => new PathRow { ImagePath = p }));
        return OnnxImageFeaturizer.DecodeEstimator(ml, size).Fit(data).Transform(data)
            .GetColumn<VBuffer<float>>(ImagePipeline.PixelsColumn).Select(v => v.DenseValues().ToArray()).ToArray();
    }

    /// <summary>
    /// Loads every image with <see cref="ImagePreprocessor"/> and asserts its pixels equal ML.NET's transforms'; <paramref name="alsoCheck"/>
    /// gets each image's bytes and loaded pixels for further assertions.
    /// </summary>
    public static void AssertPixelsEqualMlNet(IReadOnlyList<string> paths, int size, Action<string, byte[], float[]>? alsoCheck = null)
    {
        var expected = MlNetPixels(paths, size);
        var actual = new float[ImagePreprocessor.PixelCount(size)];
        for (var i = 0; i < paths.Count; i++)
        {
            var bytes = File.ReadAllBytes(paths[i]);
            Assert.That(ImagePreprocessor.TryLoadPixels(bytes, size, actual), Is.Null, paths[i]);
            alsoCheck?.Invoke(paths[i], bytes, actual);
            Assert.That(actual, Is.EqualTo(expected[i]), $"{paths[i]} at {size} px against ML.NET");
        }
    }

    private sealed class PathRow
    {
        public string ImagePath { get; set; } = "";
    }

    /// <summary>Copies some sample images into a fresh folder (so tests can change them) and returns their paths.</summary>
    public static List<string> CopyImages(int perClass, params string[] classes)
    {
        var folder = TestData.CopySample(perClass, classes);
        return Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal).ToList();
    }

    /// <summary>Writes a zero-byte file, a text file named .jpg and a truncated JPEG into a folder.</summary>
    public static (string Empty, string Text, string Truncated) UnreadableImages(string folder)
    {
        var empty = Path.Combine(folder, "empty.jpg");
        File.WriteAllBytes(empty, []);
        var text = Path.Combine(folder, "notes.jpg");
        File.WriteAllText(text, "not an image, just text with a .jpg name");
        var truncated = Path.Combine(folder, "truncated.jpg");
        var jpeg = File.ReadAllBytes(Path.Combine(TestData.MlNetImages, "hotdog.jpg"));
        File.WriteAllBytes(truncated, jpeg[..(jpeg.Length * 2 / 3)]);
        return (empty, text, truncated);
    }

    public static float MaxAbsDifference(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max();

    public sealed class Recorder : IProgress<FeaturizationProgress>
    {
        public List<FeaturizationProgress> Reports { get; } = [];

        public void Report(FeaturizationProgress value) => Reports.Add(value);
    }
}
