using System.Diagnostics;
using NUnit.Framework;

namespace MLTransfer.Tests.TestSupport;

/// <summary>What a run of the <c>mltransfer</c> tool as a separate process did.</summary>
/// <param name="Code">Exit code.</param>
/// <param name="Out">Standard output.</param>
/// <param name="Error">Standard error.</param>
/// <param name="LeftInTemp">Files and folders the run left in its own <c>TMPDIR</c> (relative paths).</param>
public sealed record CliRun(int Code, string Out, string Error, IReadOnlyList<string> LeftInTemp)
{
    /// <summary>Both streams, for assertion messages.</summary>
    public string All => Out + Error;

    /// <summary>The lines of standard error that start with <c>error:</c>.</summary>
    public IReadOnlyList<string> ErrorLines => Error.Split('\n').Where(l => l.StartsWith("error:", StringComparison.Ordinal)).ToList();
}

/// <summary>
/// Runs the built <c>mltransfer</c> tool as a child process with its own empty <c>TMPDIR</c> (the machine's is shared),
/// the run's cache folder as <c>MLTRANSFER_CACHE_DIR</c>, and a wide terminal so lines do not wrap, then lists what it left
/// in that <c>TMPDIR</c>.
/// </summary>
public static class CliProcess
{
    /// <summary>The tool's assembly, built by the test project's reference to it.</summary>
    public static string Dll
    {
        get
        {
            var configuration = typeof(CliProcess).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyConfigurationAttribute), false)
                .Cast<System.Reflection.AssemblyConfigurationAttribute>().Single().Configuration;
            return Path.Combine(TestData.RepoRoot, "src", "MLTransfer.Cli", "bin", configuration, "net10.0", "MLTransfer.Cli.dll");
        }
    }

    /// <summary>Runs the tool.</summary>
    /// <param name="cacheDirectory">The cache folder for the run (<c>MLTRANSFER_CACHE_DIR</c>).</param>
    /// <param name="args">Arguments.</param>
    public static CliRun Run(string cacheDirectory, params string[] args) => Run(cacheDirectory, null, args);

    /// <summary>Runs the tool with extra environment variables.</summary>
    /// <param name="cacheDirectory">The cache folder for the run (<c>MLTRANSFER_CACHE_DIR</c>).</param>
    /// <param name="environment">Extra variables, or null.</param>
    /// <param name="args">Arguments.</param>
    public static CliRun Run(string cacheDirectory, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        Assert.That(File.Exists(Dll), $"the CLI is not built at {Dll}");
        var temp = TestData.TempFolder();
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = TestData.TempFolder() };
        start.ArgumentList.Add(Dll);
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        start.Environment["TMPDIR"] = temp;
        start.Environment["MLTRANSFER_CACHE_DIR"] = cacheDirectory;
        start.Environment["COLUMNS"] = "400";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            start.Environment[key] = value;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        var left = Directory.EnumerateFileSystemEntries(temp, "*", SearchOption.AllDirectories).Select(p => Path.GetRelativePath(temp, p)).ToList();
        return new CliRun(process.ExitCode, stdout.Result, stderr.Result, left);
    }
}
