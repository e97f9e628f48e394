using System.Text.Json;
using MLTransfer.Tests.Explain;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Cli;

[NonParallelizable]
public class ExplainCliTests
{
    [Test]
    public void Should_write_one_overlay_per_image_and_class_and_an_index_with_raw_maps()
    {
        var model = ImageExplainerTests.TrainAndSave(MLTransfer.Techniques.FeatureExtraction.HeadKind.LbfgsMaximumEntropy);
        var input = TestData.TempFolder();
        foreach (var label in new[] { "0", "3" })
        {
            Directory.CreateDirectory(Path.Combine(input, label));
            for (var i = 15; i < 17; i++)
                File.Copy(TestData.SampleImage(label, i), Path.Combine(input, label, $"photo {i}.jpg"));
        }
        File.WriteAllText(Path.Combine(input, "3", "broken.png"), "not a png");
        var output = Path.Combine(TestData.TempFolder(), "out");
        var (code, stdout, error) = CliTests.Run("explain", model, input, "--output", output, "--top", "2", "--raw");
        Assert.That(code, Is.Zero, error + stdout);
        var pngs = Directory.GetFiles(output, "*.png", SearchOption.AllDirectories);
        Assert.That(pngs, Has.Length.EqualTo(8), "4 readable images × 2 classes");
        Assert.That(File.Exists(Path.Combine(output, "0", "photo 15.0.png")) || Directory.GetFiles(Path.Combine(output, "0")).Length == 4);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "explanations.json")));
        var root = json.RootElement;
        Assert.That(root.GetProperty("method").GetString(), Is.EqualTo("cam"));
        var images = root.GetProperty("images").EnumerateArray().ToList();
        Assert.That(images, Has.Count.EqualTo(4));
        foreach (var image in images)
        {
            var maps = image.GetProperty("maps").EnumerateArray().ToList();
            Assert.That(maps, Has.Count.EqualTo(2));
            Assert.That(maps[0].GetProperty("class").GetString(), Is.EqualTo(image.GetProperty("predicted_label").GetString()));
            Assert.That(maps[0].GetProperty("values").GetArrayLength(), Is.EqualTo(9), "3×3 at 96 px");
            Assert.That(File.Exists(Path.Combine(output, maps[0].GetProperty("png").GetString()!)));
            Assert.That(image.GetProperty("reconstruction_error").GetDouble(), Is.LessThan(1e-4));
        }
        var rejected = root.GetProperty("rejected").EnumerateArray().Single();
        Assert.That(rejected.GetProperty("path").GetString(), Does.EndWith("broken.png"));
    }

    [Test]
    public void Should_explain_each_classification_task_of_a_multi_task_model_with_its_own_head()
    {
        var manifest = SampleManifest.Write(5, ["0", "1", "2", "3"]);
        var model = Path.Combine(TestData.TempFolder(), "multi.zip");
        var (code, output, error) = CliTests.Run("train", "--technique", "multi-task", "--manifest", manifest, "--tasks", "digit,parity,value:regression",
            "--output", model, "--image-size", "64", "--cache-dir", Shared.CacheDir, "--validation-fraction", "0", "--no-plots", "--no-report");
        Assert.That(code, Is.Zero, error + output);
        var ml = new Microsoft.ML.MLContext(seed: 0);
        var loaded = MLTransfer.Export.ModelFile.Load(ml, model);
        var probes = new[] { TestData.SampleImage("1", 16), TestData.SampleImage("2", 16) };
        foreach (var task in new[] { "digit", "parity" })
        {
            using var explainer = new MLTransfer.Explain.ImageExplainer(ml, loaded, new MLTransfer.Explain.ExplainerOptions { ScoreColumn = "Score_" + task });
            Assert.That(explainer.Method, Is.EqualTo(MLTransfer.Explain.ExplanationMethod.ClassActivationMap), task);
            ExplainChecks.Run(ml, loaded, explainer, probes, "Score_" + task);
        }
        var (regressionCode, _, regressionError) = CliTests.Run("explain", model, probes[0], "--task", "value", "--output", TestData.TempFolder());
        Assert.That(regressionCode, Is.EqualTo(1));
        Assert.That(regressionError, Does.Contain("Score_value"));
        var (plainCode, _, plainError) = CliTests.Run("explain", model, probes[0], "--output", TestData.TempFolder());
        Assert.That(plainCode, Is.EqualTo(1));
        Assert.That(plainError, Does.Contain("give --task"));
    }

    [Test]
    public void Should_fail_with_one_line_on_bad_arguments()
    {
        var model = ImageExplainerTests.TrainAndSave(MLTransfer.Techniques.FeatureExtraction.HeadKind.LbfgsMaximumEntropy);
        var cases = new (string[] Args, int Code, string Expected)[]
        {
            (["explain", model, TestData.SampleImage("0", 15), "--class", "9"], 1, "no class '9'"),
            (["explain", model, TestData.SampleImage("0", 15), "--method", "magic"], 1, "Unknown --method"),
            (["explain", model, Path.Combine(TestData.TempFolder(), "missing")], 1, "neither an image file nor a folder"),
            (["explain", model, TestData.SampleImage("0", 15), "--top", "0"], 2, "--top"),
        };
        foreach (var (args, expectedCode, expected) in cases)
        {
            var (code, _, error) = CliTests.Run([.. args, "--output", TestData.TempFolder()]);
            Assert.That(code, Is.EqualTo(expectedCode), string.Join(' ', args));
            Assert.That(error, Does.Contain(expected), string.Join(' ', args));
            Assert.That(error, Does.Not.Contain("   at "));
        }
    }
}
