using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using NUnit.Framework;

namespace MLTransfer.Torch.Tests;

/// <summary>Real inputs for the tests: the ResNet18 backbone shipped by NuGet and the shared sign-language digits photos.</summary>
internal static class TestData
{
    public static string ResNet18Path => Path.Combine(AppContext.BaseDirectory, "DnnImageModels", "ResNet18Onnx", "ResNet18.onnx");

    public static string ResNetPreprocessPath => Path.Combine(AppContext.BaseDirectory, "DnnImageModels", "ResNetPrepOnnx", "ResNetPreprocess.onnx");

    /// <summary>The repository's root folder (the one holding MLTransfer.sln).</summary>
    public static string RepositoryRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "MLTransfer.sln")))
                {
                    return dir.FullName;
                }
            }

            throw new InvalidOperationException("Cannot find the repository root (MLTransfer.sln).");
        }
    }

    /// <summary>The shared datasets next to the repository (../shared/data).</summary>
    public static string SharedData => Path.Combine(RepositoryRoot, "..", "shared", "data");

    /// <summary>The repository's sample of the sign-language-digits photos (data/sign-language-digits).</summary>
    public static string SignLanguageDigits => Path.Combine(RepositoryRoot, "data", "sign-language-digits");

    /// <summary>The first <paramref name="perClass"/> images (by name) of each of the first <paramref name="classes"/> classes.</summary>
    public static (string Path, int Label)[] Images(int classes, int perClass, int skip = 0) =>
        Enumerable.Range(0, classes)
            .SelectMany(c => Directory.GetFiles(Path.Combine(SignLanguageDigits, c.ToString(System.Globalization.CultureInfo.InvariantCulture)), "*.JPG")
                .Order(StringComparer.Ordinal)
                .Skip(skip)
                .Take(perClass)
                .Select(p => (p, c)))
            .ToArray();

    /// <summary>Runs an ONNX model with ONNX Runtime on one float input and returns the named output's values.</summary>
    public static float[] RunOnnxRuntime(byte[] model, string input, float[] data, long[] shape, string output)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL };
        using var session = new InferenceSession(model, options);
        var tensor = new DenseTensor<float>(data, shape.Select(d => (int)d).ToArray());
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(input, tensor)], [output]);
        return results.First().AsEnumerable<float>().ToArray();
    }

    /// <summary>Scratch folders of this test run; <see cref="TestRunCleanup"/> deletes it when the run ends.</summary>
    public static string RunRoot { get; } =
        Path.Combine(Path.GetTempPath(), "mltransfer-torch-tests", $"run-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");

    /// <summary>A fresh, empty scratch folder inside <see cref="RunRoot"/>.</summary>
    public static string TempDirectory()
    {
        string dir = Path.Combine(RunRoot, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    public static double MaxAbsDifference(float[] a, float[] b)
    {
        Assert.That(a, Has.Length.EqualTo(b.Length));
        double max = 0;
        for (int i = 0; i < a.Length; i++)
        {
            max = Math.Max(max, Math.Abs(a[i] - b[i]));
        }

        return max;
    }
}
