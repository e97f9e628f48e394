using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML;
using MLTransfer.Evaluation;
using MLTransfer.Export;
using MLTransfer.Featurization;
using MLTransfer.Techniques.FeatureExtraction;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Export;

public class ConsumerAppTests
{
    [Test]
    public void Should_predict_the_same_in_a_separate_app_that_references_only_mlnet()
    {
        var ml = new MLContext(seed: 1);
        var options = new FeatureExtractionOptions { Engine = new FeaturizerOptions { ImageSize = 96, CacheDirectory = Shared.CacheDir }, ValidationFraction = 0 };
        var model = ml.Transfer().FeatureExtraction(options).Fit(ml.Data.LoadFromEnumerable(TestData.SampleSubset(6, "1", "4", "9")));
        var path = Path.Combine(TestData.TempFolder(), "consumer model.zip");
        ModelFile.Save(ml, model, path);
        var probes = new[] { TestData.SampleImage("1", 10), TestData.SampleImage("4", 11), TestData.SampleImage("9", 12) };
        var expected = ModelEvaluator.Predict(ml, model, probes);
        var classes = ModelEvaluator.Classes(model);

        var lines = RunConsumer(path, probes);

        Assert.That(lines, Has.Length.EqualTo(3));
        for (var i = 0; i < probes.Length; i++)
        {
            using var json = JsonDocument.Parse(lines[i]);
            var score = json.RootElement.GetProperty("score").EnumerateArray().Select(e => e.GetSingle()).ToArray();
            Assert.That(score, Is.EqualTo(expected[i]).Within(1e-5f));
            var best = Array.IndexOf(expected[i], expected[i].Max());
            Assert.That(json.RootElement.GetProperty("label").GetString(), Is.EqualTo(classes[best]));
        }
    }

    internal static string[] RunConsumer(string model, IEnumerable<string> images)
    {
        var configuration = typeof(ConsumerAppTests).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyConfigurationAttribute), false).Cast<System.Reflection.AssemblyConfigurationAttribute>().Single().Configuration;
        var dll = Path.Combine(TestData.RepoRoot, "samples", "MLNetConsumer", "bin", configuration, "net10.0", "MLNetConsumer.dll");
        Assert.That(File.Exists(dll), $"consumer app not built at {dll}");
        var deps = File.ReadAllText(Path.ChangeExtension(dll, ".deps.json"));
        Assert.That(deps, Does.Not.Contain("MLTransfer").And.Not.Contain("TorchSharp"));
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(dll);
        start.ArgumentList.Add(model);
        foreach (var image in images)
            start.ArgumentList.Add(image);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEnd();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.That(process.ExitCode, Is.Zero, stderr);
        return stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }
}
