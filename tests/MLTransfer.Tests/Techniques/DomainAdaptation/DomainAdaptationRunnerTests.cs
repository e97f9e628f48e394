using Microsoft.ML;
using MLTransfer.Cli.Commands;
using MLTransfer.Cli.Commands.Train;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;
using Spectre.Console;

namespace MLTransfer.Tests.Techniques.DomainAdaptation;

public class DomainAdaptationRunnerTests
{
    [TestCase("coral", "source-only", null)]
    [TestCase("dann", "adapter-source-only", 1)]
    public void Runner_reports_source_only_and_adapted_accuracy_and_writes_the_projection_plot(string method, string peer, int? trainedBlocks)
    {
        string[] classes = ["0", "1", "2"];
        var output = Path.Combine(TestData.TempFolder(), "da.zip");
        var settings = new TrainSettings
        {
            Folder = Domains.TargetFolder(Domains.SourceImages(8, 0, classes), scramble: false),
            Technique = "domain-adaptation",
            Method = method,
            TrainedBackboneBlocks = trainedBlocks,
            Epochs = trainedBlocks is null ? null : 1,
            Target = Domains.TargetFolder(Domains.TargetImages(8, 10, classes), scramble: true),
            TargetTest = Domains.TargetFolder(Domains.TargetImages(4, 15, classes), scramble: false),
            ImageSize = 32,
            ValidationFraction = 0.25,
            Output = output,
        };
        var text = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(text), Interactive = InteractionSupport.No });
        var model = new DomainAdaptationRunner().Train(settings, new MLContext(seed: 1), console);
        var printed = text.ToString();
        TestContext.Out.WriteLine(printed);
        Assert.That(model.Report.Technique, Is.EqualTo("domain-adaptation/" + method));
        Assert.That(printed, Does.Contain(peer).And.Contain(method).And.Contain("Target test"));
        Assert.That(model.Report.Domains, Is.Not.Null, "the report carries the source/target projection");
        Assert.That(model.Report.Domains!.Before.Select(g => g.Length), Is.All.GreaterThan(0));
        var plot = Path.ChangeExtension(output, null) + ".domains.png";
        Assert.That(MLTransfer.Cli.Rendering.Plots.WriteAll(model.Report, output), Does.Contain(plot));
        Assert.That(File.Exists(plot) && new FileInfo(plot).Length > 1000, plot);
        Assert.That(() => new DomainAdaptationRunner().Train(new TrainSettings { Folder = settings.Folder, Technique = "domain-adaptation" }, new MLContext(), console),
            Throws.ArgumentException.With.Message.Contains("--target"));
    }
}
