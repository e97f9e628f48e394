using MLTransfer.Backbones;
using MLTransfer.Cli.Commands;
using MLTransfer.Featurization;
using MLTransfer.IO;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;
using Spectre.Console.Cli;
using static MLTransfer.Tests.Featurization.FeaturizationTestSupport;

namespace MLTransfer.Tests.Featurization;

public class FeaturizationCommandsTests
{
    private static int Run(params string[] args)
    {
        var app = new CommandApp();
        app.Configure(config =>
        {
            config.PropagateExceptions();
            config.AddCommand<FeaturizeCommand>("featurize");
            config.AddBranch("bench", bench => bench.AddCommand<BenchFeaturizeCommand>("featurize"));
        });
        return app.Run(args);
    }

    [TestCase("out.csv")]
    [TestCase("out.parquet")]
    public void Should_featurize_a_folder_to_a_table_with_labels_and_use_the_cache(string name)
    {
        var folder = TestData.CopySample(2, "0", "7");
        UnreadableImages(Directory.CreateDirectory(Path.Combine(folder, "7")).FullName);
        var output = Path.Combine(TestData.TempFolder(), name);
        var cache = TestData.TempFolder();

        Assert.That(Run("featurize", folder, "--output", output, "--image-size", "64", "--cache-dir", cache), Is.Zero);
        var rows = FeatureTable.Read(output);
        Assert.That(rows.Select(r => r.Label), Is.EqualTo(new[] { "0", "0", "7", "7" }));
        Assert.That(rows.Select(r => Path.GetDirectoryName(r.Path)), Is.All.StartsWith(folder));
        Assert.That(rows.Select(r => r.Features.Length), Is.All.EqualTo(512));
        Assert.That(new BottleneckCache(cache).Measure().Entries, Is.EqualTo(4));

        using var engine = Engine(cache);
        var direct = engine.Featurize(rows.Select(r => r.Path).ToList());
        Assert.That(direct.FromCache, Is.EqualTo(4));
        for (var i = 0; i < rows.Count; i++)
            Assert.That(rows[i].Features, Is.EqualTo(direct.Features[i]));
    }

    [Test]
    public void Should_not_touch_the_cache_with_no_cache()
    {
        var folder = TestData.CopySample(1, "3", "4");
        var output = Path.Combine(TestData.TempFolder(), "f.csv");
        var cache = TestData.TempFolder();
        Assert.That(Run("featurize", folder, "-o", output, "--image-size", "64", "--cache-dir", cache, "--no-cache"), Is.Zero);
        Assert.That(FeatureTable.Read(output), Has.Count.EqualTo(2));
        Assert.That(Directory.EnumerateFileSystemEntries(cache), Is.Empty);
    }

    [Test]
    public void Should_run_the_plain_fused_graph_with_plain_graph()
    {
        var folder = TestData.CopySample(1, "2");
        var output = Path.Combine(TestData.TempFolder(), "f.csv");

        Assert.That(Run("featurize", folder, "-o", output, "--no-cache", "--plain-graph"), Is.Zero);

        var row = FeatureTable.Read(output).Single();
        using var plain = new OnnxImageFeaturizer(Backbone.ResNet18(), new FeaturizerOptions { UseCache = false, OptimizeGraph = false });
        using var fast = new OnnxImageFeaturizer(Backbone.ResNet18(), new FeaturizerOptions { UseCache = false });
        Assert.That(row.Features, Is.EqualTo(plain.Featurize([row.Path]).Features[0]));
        Assert.That(row.Features, Is.Not.EqualTo(fast.Featurize([row.Path]).Features[0]), "the optimised graph rounds differently");
    }

    [Test]
    public void Should_refuse_an_unsupported_output()
    {
        var folder = TestData.CopySample(1, "3");
        Assert.That(() => Run("featurize", folder, "--output", "features.xlsx"), Throws.Exception.With.Message.Contains(".csv or .parquet"));
    }

    [Test]
    public void Should_measure_every_phase_and_agree_with_mlnet()
    {
        var folder = TestData.CopySample(2, "1", "8");
        var report = FeaturizationBenchmark.Run(folder, new FeaturizationBenchmarkSettings
        {
            Engine = new FeaturizerOptions { BatchSize = 3, DecodeThreads = 2 },
        });

        Assert.That(report.Phases.Select(p => p.Name), Is.EqualTo(new[]
        {
            FeaturizationBenchmark.MlNetPhase, FeaturizationBenchmark.EnginePhase, FeaturizationBenchmark.ColdPhase, FeaturizationBenchmark.WarmPhase,
        }));
        Assert.That(report.Phases.Select(p => p.Images), Is.All.EqualTo(4));
        Assert.That(report.Phases.Select(p => p.Failed), Is.All.Zero);
        Assert.That(report.Phases.Select(p => p.FromCache), Is.EqualTo(new[] { 0, 0, 0, 4 }));
        Assert.That(report.Phases.Select(p => p.PeakRssBytes), Is.All.GreaterThan(0));
        Assert.That(report.MaxAbsDifference, Is.LessThanOrEqualTo(1e-3));
        Assert.That(report.Ratio, Is.Not.Null.And.GreaterThan(0));
        Assert.That(report.OptimizedGraph, Is.True, "the default engine runs the optimised graph");
        Assert.That(report.GflopsMeasured, Is.True, "with no --gflops-per-core the limit is measured on this machine");
        Assert.That(report.GflopsPerCore, Is.GreaterThan(1).And.LessThan(2 * 16 * 2 * 6.0), "a rate one core can physically reach");
        Assert.That(report.ColdCache.RssTrace, Is.Not.Empty);
        Assert.That(report.ColdCache.RssTrace[^1].Done, Is.EqualTo(4));
        Assert.That(report.Engine.RssTrace.Select(r => r.Done), Is.EqualTo(new[] { 1, 2, 3, 4 }));
        var text = new StringWriter();
        var console = Spectre.Console.AnsiConsole.Create(new Spectre.Console.AnsiConsoleSettings
        {
            Out = new Spectre.Console.AnsiConsoleOutput(text), Interactive = Spectre.Console.InteractionSupport.No, Ansi = Spectre.Console.AnsiSupport.No,
        });
        console.Profile.Width = 400;
        console.Write(BenchFeaturizeCommand.Render(report));
        var rendered = text.ToString();
        foreach (var phase in report.Phases)
            Assert.That(rendered, Does.Contain(phase.Name).And.Contain($"{phase.ImagesPerSecond:0.0}"), phase.Name);
        Assert.That(rendered, Does.Contain($"engine / ML.NET: {report.Ratio:0.00}×"));
        Assert.That(rendered, Does.Contain($"{report.GflopsPerCore:0.0} GFLOP/s per core, measured here"));
    }
}
