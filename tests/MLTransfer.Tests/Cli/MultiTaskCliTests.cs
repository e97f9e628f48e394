using System.Text.Json;
using Microsoft.ML;
using MLTransfer.Cli.Commands.Evaluate;
using MLTransfer.Export;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;
using Spectre.Console;

namespace MLTransfer.Tests.Cli;

[NonParallelizable]
public class MultiTaskCliTests
{
    [Test]
    public void Should_train_from_a_manifest_and_evaluate_per_task_as_json()
    {
        var manifest = SampleManifest.Write(5, ["0", "1", "2", "3"], blank: (row, task) => task == "parity" && row % 4 == 0);
        var model = Path.Combine(TestData.TempFolder(), "multi task.zip");
        var (code, output, error) = CliTests.Run("train", "--technique", "multi-task", "--manifest", manifest, "--tasks", "digit,parity,value:regression",
            "--output", model, "--image-size", "64", "--cache-dir", Shared.CacheDir, "--validation-fraction", "0.25", "--no-plots");
        Assert.That(code, Is.Zero, error + output);

        var ml = new MLContext(seed: 0);
        var loaded = ModelFile.Load(ml, model);
        Assert.That(MultiTaskEvaluation.IsMultiTask(loaded));
        var stdout = new StringWriter();
        var oldOut = Console.Out;
        Console.SetOut(stdout);
        try
        {
            var quiet = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(TextWriter.Null) });
            Assert.That(MultiTaskEvaluation.Run(quiet, ml, loaded, manifest, null, json: true, strict: false), Is.Zero);
        }
        finally
        {
            Console.SetOut(oldOut);
        }
        using var json = JsonDocument.Parse(stdout.ToString());
        var tasks = json.RootElement.GetProperty("tasks");
        Assert.That(tasks.EnumerateObject().Select(p => p.Name), Is.EquivalentTo(new[] { "digit", "parity", "value" }));
        Assert.That(tasks.GetProperty("value").GetProperty("kind").GetString(), Is.EqualTo("regression"));
        Assert.That(tasks.GetProperty("value").GetProperty("mae").GetDouble(), Is.GreaterThanOrEqualTo(0));
        Assert.That(tasks.GetProperty("parity").GetProperty("n").GetInt32(), Is.EqualTo(15), "5 of 20 parity labels are blank");
        Assert.That(tasks.GetProperty("parity").GetProperty("missing").GetInt32(), Is.EqualTo(5));
        Assert.That(tasks.GetProperty("digit").GetProperty("micro_accuracy").GetDouble(), Is.InRange(0, 1));
        Assert.That(json.RootElement.GetProperty("n").GetInt32(), Is.EqualTo(20));
    }

    [Test]
    public void Should_fine_tune_a_multi_task_model_from_the_command_line()
    {
        var manifest = SampleManifest.Write(3, ["0", "1", "2", "3"]);
        var model = Path.Combine(TestData.TempFolder(), "fine-tuned.zip");
        var (code, output, error) = CliTests.Run("train", "--technique", "multi-task-fine-tuning", "--manifest", manifest, "--tasks", "digit,parity,value:regression",
            "--output", model, "--image-size", "64", "--epochs", "1", "--unfreeze-after", "0", "--batch-size", "4", "--validation-fraction", "0.25",
            "--loss-weighting", "fixed", "--task-weights", "value=0.5", "--gradient-balancing", "pcgrad", "--no-plots");
        Assert.That(code, Is.Zero, error + output);
        var loaded = ModelFile.Load(new MLContext(), model);
        Assert.That(MLTransfer.Evaluation.MultiTaskEvaluator.Tasks(loaded).Keys, Is.EquivalentTo(new[] { "digit", "parity", "value" }));
        Assert.That(File.Exists(Path.ChangeExtension(model, ".onnx")));
    }

    [Test]
    public void Should_fine_tune_with_gradnorm_loss_weighting_from_the_command_line()
    {
        var manifest = SampleManifest.Write(3, ["0", "1", "2", "3"]);
        var model = Path.Combine(TestData.TempFolder(), "gradnorm.zip");
        var (code, output, error) = CliTests.Run("train", "--technique", "multi-task-fine-tuning", "--manifest", manifest, "--tasks", "digit,parity",
            "--output", model, "--image-size", "64", "--epochs", "1", "--unfreeze-after", "0", "--batch-size", "4", "--validation-fraction", "0.25",
            "--loss-weighting", "gradnorm", "--no-plots", "--no-report");
        Assert.That(code, Is.Zero, error + output);
        Assert.That(MLTransfer.Evaluation.MultiTaskEvaluator.Tasks(ModelFile.Load(new MLContext(), model)).Keys, Is.EquivalentTo(new[] { "digit", "parity" }));
    }

    [Test]
    public void Should_reject_an_unknown_task_kind_and_a_manifest_path_escaping_its_folder()
    {
        var manifest = SampleManifest.Write(2, ["0", "1"]);
        var (code, _, error) = CliTests.Run("train", "--technique", "multi-task", "--manifest", manifest, "--tasks", "digit:ordinal", "--no-plots");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("Unknown task kind 'ordinal'"));
        File.AppendAllText(manifest, "../../escape.png,0,even,0\n");
        (code, _, error) = CliTests.Run("train", "--technique", "multi-task", "--manifest", manifest, "--no-plots");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("escapes the manifest's folder"));
    }
}
