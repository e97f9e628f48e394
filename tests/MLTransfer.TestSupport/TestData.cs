using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLTransfer.Data;
using NUnit.Framework;

namespace MLTransfer.Tests.TestSupport;

/// <summary>
/// Locates what the tests read, all of it inside the repository (the bundled sample under <c>data/</c> and the
/// fixtures under <c>tests/data/</c>), and makes scratch folders. Nothing here reaches outside the clone: the
/// shared datasets are for benchmarks only.
/// </summary>
public static class TestData
{
    /// <summary>The repository's root folder (the one holding MLTransfer.sln).</summary>
    public static string RepoRoot { get; } = FindRoot();

    /// <summary>The bundled sample: 200 sign-language digit photos, 20 per class, 100×100 colour JPEG.</summary>
    public static string Sample => Path.Combine(RepoRoot, "data", "sign-language-digits");

    /// <summary>The test fixtures folder, <c>tests/data</c>.</summary>
    public static string Fixtures => Path.Combine(RepoRoot, "tests", "data");

    /// <summary>The copy of ML.NET's test images (odd formats: BMP, palette GIF, CMYK JPEG, RGBA PNG).</summary>
    public static string MlNetImages => Path.Combine(Fixtures, "mlnet-test-images");

    /// <summary>The sample as another camera gives it (grey, slightly blurred, 64×64 PNG): the target domain.</summary>
    public static string ShiftedSample => Path.Combine(Fixtures, "sign-language-shifted");

    /// <summary>One of the ML.NET test images by file name.</summary>
    public static string MlNetImage(string name) => Path.Combine(MlNetImages, name);

    /// <summary>The ResNet18 graph that the NuGet package copies next to the test assembly.</summary>
    public static string ResNet18Path => Path.Combine(AppContext.BaseDirectory, "DnnImageModels", "ResNet18Onnx", "ResNet18.onnx");

    /// <summary>The ResNet18 input-normalisation graph that the NuGet package copies next to the test assembly.</summary>
    public static string ResNetPreprocessPath => Path.Combine(AppContext.BaseDirectory, "DnnImageModels", "ResNetPrepOnnx", "ResNetPreprocess.onnx");

    /// <summary>The <paramref name="index"/>-th image (ordinal file order) of one sample class.</summary>
    public static string SampleImage(string label = "3", int index = 0) =>
        Files(Sample, label).ElementAt(index);

    /// <summary>The first <paramref name="perClass"/> images of the given sample classes.</summary>
    public static IReadOnlyList<ImageExample> SampleSubset(int perClass, params string[] classes) =>
        Subset(Sample, perClass, 0, classes);

    /// <summary>Images <paramref name="skip"/> .. <paramref name="skip"/>+<paramref name="perClass"/>-1 (ordinal file order) of each class of a folder.</summary>
    public static List<ImageExample> Subset(string folder, int perClass, int skip, IEnumerable<string> classes) =>
        classes.SelectMany(c => Files(folder, c).Skip(skip).Take(perClass)
            .Select(f => new ImageExample { ImagePath = f, Label = c })).ToList();

    /// <summary>The first <paramref name="perClass"/> images (after <paramref name="skip"/>) of the sample classes 0 .. <paramref name="classes"/>-1, with integer labels.</summary>
    public static (string Path, int Label)[] Images(int classes, int perClass, int skip = 0) =>
        Enumerable.Range(0, classes)
            .SelectMany(c => Files(Sample, c.ToString(System.Globalization.CultureInfo.InvariantCulture)).Skip(skip).Take(perClass).Select(p => (p, c)))
            .ToArray();

    /// <summary>Copies some sample classes into a fresh temporary folder and returns it.</summary>
    public static string CopySample(int perClass, params string[] classes)
    {
        var dir = TempFolder();
        foreach (var example in SampleSubset(perClass, classes))
        {
            var target = Path.Combine(dir, example.Label);
            Directory.CreateDirectory(target);
            File.Copy(example.ImagePath, Path.Combine(target, Path.GetFileName(example.ImagePath)));
        }
        return dir;
    }

    /// <summary>Scratch folders of this test run; <see cref="DeleteRunRoot"/> removes it when the run ends.</summary>
    public static string RunRoot { get; } =
        Path.Combine(Path.GetTempPath(), "mltransfer-tests", $"run-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");

    /// <summary>A fresh, empty scratch folder inside <see cref="RunRoot"/>.</summary>
    public static string TempFolder()
    {
        var dir = Path.Combine(RunRoot, Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>Deletes the run's scratch folders (each test assembly calls it from its set-up fixture's tear-down).</summary>
    public static void DeleteRunRoot()
    {
        try
        {
            if (Directory.Exists(RunRoot))
                Directory.Delete(RunRoot, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>Runs an ONNX model with ONNX Runtime on one float input and returns the named output's values.</summary>
    public static float[] RunOnnxRuntime(byte[] model, string input, float[] data, long[] shape, string output)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL };
        using var session = new InferenceSession(model, options);
        var tensor = new DenseTensor<float>(data, shape.Select(d => (int)d).ToArray());
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(input, tensor)], [output]);
        return results.First().AsEnumerable<float>().ToArray();
    }

    /// <summary>The largest absolute element-wise difference of two equally long arrays.</summary>
    public static double MaxAbsDifference(float[] a, float[] b)
    {
        Assert.That(a, Has.Length.EqualTo(b.Length));
        double max = 0;
        for (var i = 0; i < a.Length; i++)
            max = Math.Max(max, Math.Abs(a[i] - b[i]));
        return max;
    }

    private static IEnumerable<string> Files(string folder, string label) =>
        Directory.GetFiles(Path.Combine(folder, label)).Where(ImageFileCheck.HasImageExtension).Order(StringComparer.Ordinal);

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "MLTransfer.sln")))
            dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Cannot find the repository root (MLTransfer.sln).");
    }
}
