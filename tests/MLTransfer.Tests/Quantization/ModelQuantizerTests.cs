using Google.Protobuf;
using System.IO.Compression;
using System.Text.Json;
using Microsoft.ML;
using MLTransfer.Backbones;
using MLTransfer.Evaluation;
using MLTransfer.Export;
using MLTransfer.Featurization;
using MLTransfer.Quantization;
using MLTransfer.Techniques.FeatureExtraction;
using MLTransfer.Tests.Cli;
using MLTransfer.Tests.Export;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Quantization;

[NonParallelizable]
public class ModelQuantizerTests
{
    private static readonly string[] Classes = ["1", "4", "9"];
    private static readonly string[] Probes = [TestData.SampleImage("1", 10), TestData.SampleImage("4", 11), TestData.SampleImage("9", 12), TestData.SampleImage("4", 13)];
    private static readonly MLContext Ml = new(seed: 1);
    private static string _folder = "";
    private static string _model = "";
    private static string _int8 = "";
    private static ModelQuantizationReport _report = null!;

    private static QuantizationOptions Calibration => new() { CalibrationFolder = TestData.Sample, MaxCalibrationImages = 24 };

    [OneTimeSetUp]
    public void TrainAndQuantizeOnce()
    {
        var options = new FeatureExtractionOptions { Engine = new FeaturizerOptions { ImageSize = 96, CacheDirectory = Shared.CacheDir }, ValidationFraction = 0 };
        var model = Ml.Transfer().FeatureExtraction(options).Fit(Ml.Data.LoadFromEnumerable(TestData.SampleSubset(6, Classes)));
        _folder = TestData.TempFolder();
        _model = Path.Combine(_folder, "model.zip");
        ModelFile.Save(Ml, model, _model);
        _int8 = Path.Combine(_folder, "model-int8.zip");
        _report = ModelQuantizer.Quantize(_model, _int8, Calibration);
    }

    [Test]
    public void Should_write_an_int8_zip_that_an_app_with_only_mlnet_loads_and_predicts_like_the_float_model()
    {
        var floatScores = ModelEvaluator.Predict(Ml, ModelFile.Load(Ml, _model), Probes);
        var int8Scores = ModelEvaluator.Predict(Ml, ModelFile.Load(Ml, _int8), Probes);
        var classes = ModelEvaluator.Classes(ModelFile.Load(Ml, _int8));

        var lines = ConsumerAppTests.RunConsumer(_int8, Probes);

        Assert.That(lines, Has.Length.EqualTo(Probes.Length));
        for (var i = 0; i < Probes.Length; i++)
        {
            using var json = JsonDocument.Parse(lines[i]);
            var score = json.RootElement.GetProperty("score").EnumerateArray().Select(e => e.GetSingle()).ToArray();
            Assert.That(score, Is.EqualTo(int8Scores[i]).Within(1e-5f), "the consumer runs the same int8 graph");
            Assert.That(json.RootElement.GetProperty("label").GetString(), Is.EqualTo(classes[Array.IndexOf(score, score.Max())]), "the label of the highest score");
            Assert.That(score.Zip(floatScores[i], (a, b) => Math.Abs(a - b)).Max(), Is.LessThan(0.1), "probabilities close to the float model's");
            // Scores within 0.1 of the float model's cannot reorder two classes more than 0.2 apart; probes on which this tiny
            // model hesitates between two classes may go either way.
            var ranked = floatScores[i].OrderDescending().ToArray();
            if (ranked[0] - ranked[1] > 0.2f)
                Assert.That(json.RootElement.GetProperty("label").GetString(), Is.EqualTo(classes[Array.IndexOf(floatScores[i], ranked[0])]), "same class as the float model");
        }
        Assert.That(int8Scores.SelectMany(s => s), Is.Not.EqualTo(floatScores.SelectMany(s => s)), "the backbone really was replaced");
    }

    [Test]
    public void Should_replace_only_the_onnx_graph_and_make_the_file_smaller()
    {
        using var before = ZipFile.OpenRead(_model);
        using var after = ZipFile.OpenRead(_int8);

        Assert.That(after.Entries.Select(e => e.FullName), Is.EqualTo(before.Entries.Select(e => e.FullName)));
        foreach (var entry in before.Entries.Where(e => e.Name != ModelQuantizer.OnnxEntryName))
            Assert.That(Bytes(after.GetEntry(entry.FullName)!), Is.EqualTo(Bytes(entry)), entry.FullName);
        Assert.That(_report.Graphs.Single().QuantizedConvolutions, Is.EqualTo(22));
        Assert.That(_report.CalibrationImages, Has.Count.EqualTo(24));
        Assert.That(_report.OutputBytes, Is.LessThan(_report.InputBytes * 0.35), "int8 weights are a quarter of float ones");
        Assert.That(QdqQuantizer.IsQuantized(ModelQuantizer.ReadGraphs(_int8).Values.Single()));
        Assert.That(Directory.GetFiles(_folder, "*.tmp"), Is.Empty);
    }

    [Test]
    public void Should_quantise_the_same_way_from_the_command_line()
    {
        var output = Path.Combine(_folder, "cli-int8.zip");

        var (code, stdout, error) = CliTests.Run("quantize", _model, "--calibration", TestData.Sample, "--calibration-images", "24", "--output", output, "--json");

        Assert.That(code, Is.Zero, error);
        using var json = JsonDocument.Parse(stdout);
        Assert.That(json.RootElement.GetProperty("graphs")[0].GetProperty("quantizedConvolutions").GetInt32(), Is.EqualTo(22));
        Assert.That(json.RootElement.GetProperty("calibrationImages").GetArrayLength(), Is.EqualTo(24));
        using var library = ZipFile.OpenRead(_int8);
        using var cli = ZipFile.OpenRead(output);
        Assert.That(Bytes(cli.Entries.Single(e => e.Name == ModelQuantizer.OnnxEntryName)),
            Is.EqualTo(Bytes(library.Entries.Single(e => e.Name == ModelQuantizer.OnnxEntryName))), "deterministic");
    }

    [Test]
    public void Should_reuse_a_stored_quantisation_of_the_same_graph_and_recompute_a_damaged_one()
    {
        var store = TestData.TempFolder();
        var options = Calibration;
        options.GraphStoreDirectory = store;
        var first = ModelQuantizer.Quantize(_model, Path.Combine(_folder, "store-1.zip"), options);
        var second = ModelQuantizer.Quantize(_model, Path.Combine(_folder, "store-2.zip"), options);

        Assert.That(first.Graphs.Single().Reused, Is.False);
        Assert.That(second.Graphs.Single().Reused, Is.True);
        var expected = ModelQuantizer.ReadGraphs(_int8).Values.Single().ToByteArray();
        Assert.That(ModelQuantizer.ReadGraphs(Path.Combine(_folder, "store-1.zip")).Values.Single().ToByteArray(), Is.EqualTo(expected), "the same graph as without a store");
        Assert.That(ModelQuantizer.ReadGraphs(Path.Combine(_folder, "store-2.zip")).Values.Single().ToByteArray(), Is.EqualTo(expected));
        Assert.That(second.Graphs.Single() with { Reused = false }, Is.EqualTo(first.Graphs.Single()).Using<QuantizationSummary>(
            (a, b) => a.QuantizedConvolutions == b.QuantizedConvolutions && a.CalibrationImages == b.CalibrationImages && a.FloatConvolutions.SequenceEqual(b.FloatConvolutions)));

        foreach (var graph in Directory.GetFiles(store, "*.onnx"))
            File.WriteAllBytes(graph, [1, 2, 3]);
        var third = ModelQuantizer.Quantize(_model, Path.Combine(_folder, "store-3.zip"), options);
        Assert.That(third.Graphs.Single().Reused, Is.False, "a damaged entry is recomputed");
        Assert.That(ModelQuantizer.ReadGraphs(Path.Combine(_folder, "store-3.zip")).Values.Single().ToByteArray(), Is.EqualTo(expected));

        options.MaxCalibrationImages = 12;
        Assert.That(ModelQuantizer.Quantize(_model, Path.Combine(_folder, "store-4.zip"), options).Graphs.Single().Reused, Is.False, "other options, another entry");
    }

    [Test]
    public void Should_train_on_int8_features_and_save_the_int8_model_with_train_int8()
    {
        var folder = TestData.CopySample(8, Classes);
        var output = Path.Combine(TestData.TempFolder(), "trained-int8.zip");

        var (code, stdout, error) = CliTests.Run("train", folder, "--output", output, "--image-size", "96", "--int8", "--calibration", TestData.Sample,
            "--validation-fraction", "0", "--no-plots", "--no-report", "--cache-dir", TestData.TempFolder());

        Assert.That(code, Is.Zero, error + stdout);
        Assert.That(stdout, Does.Contain("22 convolutions on int8 kernels"));
        Assert.That(stdout, Does.Contain("the engine's quantised graph reused"), "the saved graph is the engine's, calibrated once");
        Assert.That(QdqQuantizer.IsQuantized(ModelQuantizer.ReadGraphs(output).Values.Single()), "the saved graph is the int8 one");
        var loaded = ModelFile.Load(Ml, output);
        var classes = ModelEvaluator.Classes(loaded);
        var scores = ModelEvaluator.Predict(Ml, loaded, Probes);
        var labels = new[] { "1", "4", "9", "4" };
        var correct = scores.Select((s, i) => classes[Array.IndexOf(s, s.Max())] == labels[i]).Count(c => c);
        Assert.That(correct, Is.GreaterThanOrEqualTo(3), "held-out sample digits (ground truth from their folders)");
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(output)!), Is.EqualTo(new[] { output }), "no float copy left beside it");

        (code, _, error) = CliTests.Run("train", folder, "--technique", "fine-tuning", "--int8", "--output", Path.Combine(TestData.TempFolder(), "x.zip"));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(error, Does.Contain("--int8 is an option of --technique feature-extraction"));
    }

    [Test]
    public void Should_give_one_line_errors_for_bad_input_and_write_nothing()
    {
        var folder = TestData.TempFolder();
        var output = Path.Combine(folder, "out.zip");
        var text = Path.Combine(folder, "model.zip");
        File.WriteAllText(text, "not a zip");
        var noOnnx = Path.Combine(folder, "plain.zip");
        using (var zip = ZipFile.Open(noOnnx, ZipArchiveMode.Create))
            zip.CreateEntry("Version.txt");

        Assert.That(CliTests.Run("quantize", _model, "--output", output).Code, Is.EqualTo(2), "--calibration is required");
        Assert.That(CliTests.Run("quantize", _model, "--calibration", TestData.Sample).Code, Is.EqualTo(2), "--output is required");
        AssertFails(Path.Combine(folder, "missing.zip"), TestData.Sample, "does not exist");
        AssertFails(text, TestData.Sample, "is not an ML.NET model");
        AssertFails(noOnnx, TestData.Sample, "no ONNX graph");
        AssertFails(_int8, TestData.Sample, "already quantised");
        AssertFails(_model, TestData.TempFolder(), "has no images");
        AssertFails(_model, Path.Combine(folder, "nowhere"), "does not exist");
        Assert.That(File.Exists(output), Is.False);
        Assert.That(Directory.GetFiles(folder, "*.tmp"), Is.Empty);

        void AssertFails(string model, string calibration, string message)
        {
            var (code, _, error) = CliTests.Run("quantize", model, "--calibration", calibration, "--output", output);
            Assert.That(code, Is.EqualTo(1), error);
            Assert.That(error.Trim().Split('\n'), Has.Length.EqualTo(1), error);
            Assert.That(error, Does.Contain(message));
        }
    }

    [Test]
    public void Should_featurise_with_an_int8_session_when_the_engine_is_asked_to()
    {
        var images = TestData.SampleSubset(2, Classes).Select(e => e.ImagePath).ToList();
        var graphs = TestData.TempFolder();
        using var fp32 = new OnnxImageFeaturizer(Backbone.ResNet18(), new FeaturizerOptions { ImageSize = 64, UseCache = false, GraphDirectory = graphs });
        using var int8 = new OnnxImageFeaturizer(Backbone.ResNet18(),
            new FeaturizerOptions { ImageSize = 64, CacheDirectory = TestData.TempFolder(), GraphDirectory = graphs, Quantization = new QuantizationOptions() });

        var reference = fp32.Featurize(images).Features;
        var quantized = int8.Featurize(images).Features;

        Assert.That(int8.ExecutionGraphPath, Does.Contain("int8"));
        Assert.That(int8.CacheContext, Is.Not.EqualTo(fp32.CacheContext), "int8 features are cached apart");
        Assert.That(QdqQuantizer.IsQuantized(FeaturizerGraph.Load(int8.ExecutionGraphPath)));
        for (var i = 0; i < images.Count; i++)
        {
            Assert.That(QdqQuantizerTests.Cosine(reference[i]!, quantized[i]!), Is.GreaterThan(0.98));
            Assert.That(quantized[i], Is.Not.EqualTo(reference[i]));
        }
        Assert.That(int8.Featurize(images).FromCache, Is.EqualTo(images.Count), "calibrated on the first call's images, cached under that key");
    }

    private static byte[] Bytes(ZipArchiveEntry entry)
    {
        using var stream = entry.Open();
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
