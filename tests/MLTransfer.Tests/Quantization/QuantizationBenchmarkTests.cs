using System.Text.Json;
using MLTransfer.Benchmarks;
using MLTransfer.Tests.Cli;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Quantization;

[NonParallelizable]
public class QuantizationBenchmarkTests
{
    [Test]
    public void Should_report_speed_profile_accuracy_and_size_as_json()
    {
        var folder = TestData.CopySample(5, "0", "3");

        var (code, stdout, error) = CliTests.Run("bench", "quantize", folder, "--limit", "6", "--rounds", "2", "--image-size", "64", "--profile", "1",
            "--accuracy", folder, "--json");

        Assert.That(code, Is.Zero, error);
        using var json = JsonDocument.Parse(stdout);
        var root = json.RootElement;
        var speed = root.GetProperty("speed").EnumerateArray().ToList();
        Assert.That(speed.Select(s => s.GetProperty("name").GetString()), Is.EqualTo(new[] { QuantizationBenchmark.FloatEngine, QuantizationBenchmark.Int8Engine }));
        Assert.That(speed.Select(s => s.GetProperty("images").GetInt32()), Is.All.EqualTo(6));
        Assert.That(root.GetProperty("speedup").GetDouble(), Is.GreaterThan(0));
        var int8Operators = root.GetProperty("profile").EnumerateArray()
            .Where(o => o.GetProperty("engine").GetString() == QuantizationBenchmark.Int8Engine).Select(o => o.GetProperty("operator").GetString()).ToList();
        Assert.That(int8Operators, Does.Contain("QLinearConv").And.Not.Contain("Conv"));
        var accuracy = root.GetProperty("accuracy")[0];
        Assert.That(accuracy.GetProperty("test").GetInt32(), Is.EqualTo(2), "a stratified fifth of 10 images");
        Assert.That(accuracy.GetProperty("int8Bytes").GetInt64(), Is.LessThan(accuracy.GetProperty("floatBytes").GetInt64() / 2));
        Assert.That(accuracy.GetProperty("int8").GetDouble(), Is.InRange(0, 1));
        Assert.That(root.GetProperty("cpuFeatures").GetString(), Is.Not.Empty);
    }
}
