using MLTransfer.Data;

namespace MLTransfer.Tests.TestSupport;

/// <summary>Locates the bundled sample and the shared datasets, and makes scratch folders.</summary>
public static class TestData
{
    public static string RepoRoot { get; } = FindRoot();

    public static string Sample => Path.Combine(RepoRoot, "data", "sign-language-digits");

    public static string Shared => Path.Combine(RepoRoot, "..", "shared", "data");

    public static string SharedImages => Path.Combine(Shared, "mlnet-test-images");

    public static string SampleImage(string label = "3", int index = 0) =>
        Directory.GetFiles(Path.Combine(Sample, label)).OrderBy(f => f, StringComparer.Ordinal).ElementAt(index);

    /// <summary>A small subset of the sample: the first <paramref name="perClass"/> images of the given classes.</summary>
    public static IReadOnlyList<ImageExample> SampleSubset(int perClass, params string[] classes) =>
        classes.SelectMany(c => Directory.GetFiles(Path.Combine(Sample, c)).OrderBy(f => f, StringComparer.Ordinal).Take(perClass)
            .Select(f => new ImageExample { ImagePath = f, Label = c })).ToList();

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

    /// <summary>Scratch folders of this test run; <see cref="TestRunCleanup"/> deletes it when the run ends.</summary>
    public static string RunRoot { get; } =
        Path.Combine(Path.GetTempPath(), "mltransfer-tests", $"run-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");

    public static string TempFolder()
    {
        var dir = Path.Combine(RunRoot, Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "MLTransfer.sln")))
            dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Cannot find the repository root (MLTransfer.sln).");
    }
}
