using System.Text.Json;
using MLTransfer.Cli;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Cli;

[NonParallelizable]
public class CliTests
{
    private static string _model = "";
    private static string _train = "";

    [OneTimeSetUp]
    public void TrainOnce()
    {
        _train = TestData.CopySample(6, "0", "2", "7");
        _model = Path.Combine(TestData.TempFolder(), "cli model.zip");
        var (code, _, error) = Run("train", _train, "--output", _model, "--image-size", "96", "--cache-dir", Shared.CacheDir, "--validation-fraction", "0.34");
        Assert.That(code, Is.Zero, error);
    }

    internal static (int Code, string Out, string Error) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var (oldOut, oldError) = (Console.Out, Console.Error);
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            var code = CliApp.Run(args);
            return (code, stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldError);
        }
    }

    [Test]
    public void Should_write_the_model_and_a_confusion_plot()
    {
        Assert.That(File.Exists(_model));
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(_model)!, "*.tmp"), Is.Empty, "no temporary files left behind");
        var plot = Path.ChangeExtension(_model, null) + ".confusion.png";
        Assert.That(File.ReadAllBytes(plot).Take(4), Is.EqualTo(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }));
    }

    [Test]
    public void Should_evaluate_as_exactly_one_json_object()
    {
        var test = TestData.TempFolder();
        foreach (var label in new[] { "0", "2", "7" })
        {
            Directory.CreateDirectory(Path.Combine(test, label));
            for (var i = 10; i < 14; i++)
                File.Copy(TestData.SampleImage(label, i), Path.Combine(test, label, $"{i}.jpg"));
        }
        var (code, stdout, error) = Run("evaluate", _model, test, "--json");
        Assert.That(code, Is.Zero, error);
        using var json = JsonDocument.Parse(stdout);
        var root = json.RootElement;
        foreach (var key in new[] { "micro_accuracy", "macro_accuracy", "log_loss", "n", "classes", "per_class", "confusion_matrix" })
            Assert.That(root.TryGetProperty(key, out _), key);
        Assert.That(root.GetProperty("n").GetInt32(), Is.EqualTo(12));
        Assert.That(root.GetProperty("micro_accuracy").GetDouble(), Is.InRange(0.0, 1.0));
        Assert.That(root.GetProperty("confusion_matrix").EnumerateArray().Sum(r => r.EnumerateArray().Sum(c => c.GetInt32())), Is.EqualTo(12));
    }

    [Test]
    public void Should_predict_top_k_as_json()
    {
        var (code, stdout, error) = Run("predict", _model, TestData.SampleImage("7", 15), "--top", "2", "--json");
        Assert.That(code, Is.Zero, error);
        using var json = JsonDocument.Parse(stdout);
        var first = json.RootElement[0];
        Assert.That(first.GetProperty("top").GetArrayLength(), Is.EqualTo(2));
        Assert.That(new[] { "0", "2", "7" }, Does.Contain(first.GetProperty("predicted_label").GetString()));
    }

    [Test]
    public void Should_fail_with_one_line_when_test_classes_differ_from_the_model()
    {
        var other = TestData.CopySample(2, "0", "5");
        var (code, stdout, error) = Run("evaluate", _model, other, "--json");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(stdout, Is.Empty);
        var errorLines = error.Trim().Split('\n').Where(l => l.StartsWith("error:")).ToList();
        Assert.That(errorLines, Has.Count.EqualTo(1));
        Assert.That(errorLines[0], Does.Contain("'5'").And.Contain("does not know"));
    }

    [Test]
    public void Should_fail_clearly_on_bad_input_without_stack_traces()
    {
        var notAModel = Path.Combine(TestData.TempFolder(), "model.zip");
        File.WriteAllText(notAModel, "nope");
        var cases = new (string[] Args, string Expected)[]
        {
            (["train", Path.Combine(_train, "missing")], "does not exist"),
            (["train", _train, "--technique", "magic"], "Unknown technique"),
            (["train", _train, "--head", "forest"], "Unknown head"),
            (["train", _train, "--backbone", "nope"], "Unknown backbone"),
            (["train", _train, "--backbone", "nope.json"], "Backbone spec file 'nope.json' does not exist"),
            (["evaluate", notAModel, _train], "not an ML.NET model"),
            (["predict", Path.Combine(_train, "none.zip"), _train], "does not exist"),
        };
        foreach (var (args, expected) in cases)
        {
            var (code, _, error) = Run(args);
            Assert.That(code, Is.Not.Zero, string.Join(' ', args));
            Assert.That(error, Does.Contain(expected), string.Join(' ', args));
            Assert.That(error, Does.Not.Contain("   at "), "no stack trace without --verbose");
        }
    }
}
