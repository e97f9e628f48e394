using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Cli;

[NonParallelizable]
public class PredictAndStrictCliTests
{
    private sealed class PathRow
    {
        public string ImagePath { get; set; } = "";
    }

    [Test]
    public void Predict_on_a_folder_scores_every_image_as_the_model_itself_does_and_names_the_unreadable_one()
    {
        var train = TestData.CopySample(5, "1", "4");
        var model = Path.Combine(TestData.TempFolder(), "model.zip");
        Assert.That(CliTests.Run("train", train, "--output", model, "--image-size", "64", "--cache-dir", Shared.CacheDir, "--validation-fraction", "0", "--no-plots").Code, Is.Zero);

        var folder = TestData.TempFolder();
        var nested = Directory.CreateDirectory(Path.Combine(folder, "nested")).FullName;
        var images = TestData.Subset(TestData.Sample, 3, 10, ["1", "4"]).Select((e, i) =>
        {
            var copy = Path.Combine(i % 2 == 0 ? folder : nested, $"photo{i}.jpg");
            File.Copy(e.ImagePath, copy);
            return copy;
        }).Order(StringComparer.Ordinal).ToArray();
        File.WriteAllText(Path.Combine(folder, "broken.jpg"), "not a jpeg");

        var (code, stdout, error) = CliTests.Run("predict", model, folder, "--json", "--top", "2");
        Assert.That(code, Is.Zero, error);
        var rows = JsonDocument.Parse(stdout).RootElement.EnumerateArray().ToList();
        Assert.That(rows, Has.Count.EqualTo(images.Length + 1), "every image of the folder and its sub-folder, and the broken file");
        Assert.That(rows.Single(r => r.TryGetProperty("error", out _)).GetProperty("path").GetString(), Does.EndWith("broken.jpg"));

        // Ground truth: ML.NET scoring the saved .zip directly.
        var ml = new MLContext();
        var scored = ml.Model.Load(model, out _).Transform(ml.Data.LoadFromEnumerable(images.Select(p => new PathRow { ImagePath = p })));
        var labels = scored.GetColumn<ReadOnlyMemory<char>>("PredictedLabel").Select(l => l.ToString()).ToArray();
        var best = scored.GetColumn<VBuffer<float>>("Score").Select(v => v.DenseValues().Max()).ToArray();
        var predicted = rows.Where(r => r.TryGetProperty("predicted_label", out _))
            .ToDictionary(r => r.GetProperty("path").GetString()!, r => r);
        for (var i = 0; i < images.Length; i++)
        {
            var row = predicted[images[i]];
            Assert.That(row.GetProperty("predicted_label").GetString(), Is.EqualTo(labels[i]), images[i]);
            Assert.That(row.GetProperty("top").GetArrayLength(), Is.EqualTo(2));
            Assert.That(row.GetProperty("top")[0].GetProperty("score").GetSingle(), Is.EqualTo(best[i]).Within(1e-6f));
        }
    }

    [Test]
    public void Strict_train_stops_at_a_corrupt_image_and_plain_train_skips_it_with_its_reason()
    {
        var train = TestData.CopySample(4, "2", "6");
        var corrupt = Path.Combine(train, "6", "corrupt.jpg");
        ImageFactory.Truncated(TestData.MlNetImage("hotdog.jpg"), corrupt, keep: 0.05);
        var output = Path.Combine(TestData.TempFolder(), "model.zip");

        var strict = CliTests.Run("train", train, "--output", output, "--image-size", "64", "--cache-dir", Shared.CacheDir, "--validation-fraction", "0", "--no-plots", "--strict");
        Assert.That(strict.Code, Is.Not.Zero);
        Assert.That(strict.Error, Does.Contain("corrupt.jpg"));
        Assert.That(File.Exists(output), Is.False, "--strict writes no model");

        var lenient = CliTests.Run("train", train, "--output", output, "--image-size", "64", "--cache-dir", Shared.CacheDir, "--validation-fraction", "0", "--no-plots");
        Assert.That(lenient.Code, Is.Zero, lenient.Error);
        Assert.That(lenient.Out + lenient.Error, Does.Contain("corrupt.jpg"));
        Assert.That(File.Exists(output), Is.True);
    }
}
