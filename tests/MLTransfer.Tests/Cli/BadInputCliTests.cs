using System.Text;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Cli;

/// <summary>
/// Issue 16: bad input never costs the user a file, a disk or a wrong model. Every run is a separate <c>mltransfer</c>
/// process with its own empty <c>TMPDIR</c>, which must still be empty when it ends, on success and on error.
/// Most runs use <see cref="TinyBackbone"/> at 32 px so they stay fast.
/// </summary>
[NonParallelizable]
public class BadInputCliTests
{
    private static readonly string Cache = Path.Combine(Shared.CacheDir, "cli");
    private string _spec = "";
    private string _train = "";
    private string _model = "";

    [OneTimeSetUp]
    public void TrainOnce()
    {
        _spec = TinyBackbone.Write();
        _train = TestData.CopySample(4, "0", "1", "2");
        _model = Path.Combine(TestData.TempFolder(), "tiny.zip");
        var run = Cli("train", _train, "--output", _model, "--backbone", _spec, "--validation-fraction", "0.25");
        Assert.That(run.Code, Is.Zero, run.All);
    }

    private static CliRun Cli(params string[] args) => Cli(null, args);

    private static CliRun Cli(IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var run = CliProcess.Run(Cache, environment, args);
        Assert.That(run.LeftInTemp, Is.Empty, $"'{string.Join(' ', args)}' left files in its TMPDIR");
        return run;
    }

    private string[] Train(string folder, string output, params string[] more) =>
        ["train", folder, "--output", output, "--backbone", _spec, .. more];

    private static void AssertOneLineError(CliRun run, int code, string expected)
    {
        Assert.That(run.Code, Is.EqualTo(code), run.All);
        Assert.That(run.ErrorLines, Has.Count.EqualTo(1), run.All);
        Assert.That(run.ErrorLines[0], Does.Contain(expected), run.All);
        Assert.That(run.Error, Does.Not.Contain("   at "), "no stack trace");
    }

    [Test]
    public void Item1_output_never_replaces_a_photo_or_a_text_file_nor_lands_in_the_training_folder()
    {
        var train = TestData.CopySample(3, "0", "1");
        var photo = Directory.GetFiles(Path.Combine(train, "0"))[0];
        var photoBytes = File.ReadAllBytes(photo);
        AssertOneLineError(Cli(Train(train, photo)), 2, "must end with .zip");
        Assert.That(File.ReadAllBytes(photo), Is.EqualTo(photoBytes), "the photo is untouched");

        var notes = Path.Combine(TestData.TempFolder(), "notes.txt");
        File.WriteAllText(notes, "my notes");
        AssertOneLineError(Cli(Train(train, notes)), 2, "must end with .zip");
        Assert.That(File.ReadAllText(notes), Is.EqualTo("my notes"));

        var inside = Path.Combine(train, "0", "model.zip");
        AssertOneLineError(Cli(Train(train, inside)), 1, "inside the training folder");
        Assert.That(Directory.GetFiles(Path.Combine(train, "0")), Has.Length.EqualTo(3), "no model or plot among the training images");

        var notAModel = Path.Combine(TestData.TempFolder(), "precious.zip");
        File.WriteAllText(notAModel, "not a model");
        AssertOneLineError(Cli(Train(train, notAModel)), 1, "Refusing to overwrite");
        Assert.That(File.ReadAllText(notAModel), Is.EqualTo("not a model"));
        var forced = Cli(Train(train, notAModel, "--force", "--validation-fraction", "0"));
        Assert.That(forced.Code, Is.Zero, forced.All);
        Assert.That(MLTransfer.Export.ModelFile.IsModelFile(notAModel), "--force replaces it with a model");
        var again = Cli(Train(train, notAModel, "--validation-fraction", "0"));
        Assert.That(again.Code, Is.Zero, "a model may be replaced by a model without --force: " + again.All);
    }

    [Test]
    public void Item2_no_verb_leaves_files_in_tmpdir_or_beside_its_output()
    {
        var output = TestData.TempFolder();
        var model = Path.Combine(output, "model.zip");
        Assert.That(Cli(Train(_train, model, "--validation-fraction", "0.25")).Code, Is.Zero);
        Assert.That(Directory.GetFiles(output).Select(Path.GetFileName), Is.EquivalentTo(new[] { "model.zip", "model.confusion.png", "model.report.html" }));

        Assert.That(Cli("evaluate", _model, _train, "--json").Code, Is.Zero);
        Assert.That(Cli("predict", _model, _train, "--json").Code, Is.Zero);
        var table = Path.Combine(output, "features.csv");
        Assert.That(Cli("featurize", _train, "--output", table, "--backbone", _spec).Code, Is.Zero);
        Assert.That(Directory.GetFiles(output).Select(Path.GetFileName), Is.EquivalentTo(new[] { "model.zip", "model.confusion.png", "model.report.html", "features.csv" }));

        var otherClasses = TestData.CopySample(2, "0", "5");
        Assert.That(Cli("evaluate", _model, otherClasses).Code, Is.EqualTo(1), "an error path cleans up too");
        Assert.That(Cli("predict", _model, Path.Combine(_train, "0", "missing.jpg")).Code, Is.EqualTo(1));
    }

    [Test]
    public void Item3_links_to_folders_are_not_followed_and_a_file_reached_twice_is_one_image()
    {
        var train = TestData.CopySample(4, "0", "1", "2");
        Directory.CreateSymbolicLink(Path.Combine(train, "0", "loop"), "..");
        var image = Directory.GetFiles(Path.Combine(train, "1"))[0];
        File.CreateSymbolicLink(Path.Combine(train, "1", "again.jpg"), image);
        var run = Cli(Train(train, Path.Combine(TestData.TempFolder(), "m.zip"), "--validation-fraction", "0.25"));
        Assert.That(run.Code, Is.Zero, run.All);
        Assert.That(run.Out, Does.Contain(": 12 images, 3 classes"), "12 real images, not the loop's repeats");
        Assert.That(run.Out, Does.Contain("link(s) to folders ('loop') were not followed"));
        Assert.That(run.Out, Does.Contain("counted once"));
        Assert.That(run.All, Does.Not.Contain("Too many levels of symbolic links"));
    }

    [Test]
    public void Item4_a_spec_whose_feature_size_is_wrong_fails_before_featurising_and_saves_nothing()
    {
        var wrong = TinyBackbone.Write(specFeatureSize: 100);
        var model = Path.Combine(TestData.TempFolder(), "m.zip");
        var run = Cli(Train(_train, model));
        Assert.That(run.Code, Is.Zero, "the right spec trains");
        run = Cli(["train", _train, "--output", Path.Combine(TestData.TempFolder(), "wrong.zip"), "--backbone", wrong]);
        AssertOneLineError(run, 1, "featureSize 100");
        Assert.That(run.ErrorLines[0], Does.Contain($"gives {TinyBackbone.Features} values"));
        Assert.That(run.Out, Does.Not.Contain("Featurising"));
        var featurize = Cli("featurize", _train, "--output", Path.Combine(TestData.TempFolder(), "f.csv"), "--backbone", wrong);
        AssertOneLineError(featurize, 1, "featureSize 100");
    }

    [Test]
    public void Item5_the_output_path_is_checked_before_any_work_and_errors_name_the_users_path()
    {
        var run = Cli(Train(_train, "/proc/model.zip"));
        AssertOneLineError(run, 1, "'/proc/model.zip'");
        Assert.That(run.Error, Does.Not.Contain(".tmp"), "no temporary file name");
        Assert.That(run.Out, Does.Not.Contain("images, 3 classes"), "failed before reading the folder");

        var file = Path.Combine(TestData.TempFolder(), "regularfile");
        File.WriteAllText(file, "x");
        run = Cli(Train(_train, Path.Combine(file, "model.zip")));
        AssertOneLineError(run, 1, $"'{file}' is a file, not a folder");

        var folder = TestData.TempFolder();
        var longName = Path.Combine(folder, new string('m', 250) + ".zip");
        run = Cli(Train(_train, longName, "--validation-fraction", "0.25"));
        Assert.That(run.Code, Is.Zero, "a 254-character name is valid: " + run.All);
        Assert.That(File.Exists(longName));
        Assert.That(Directory.GetFiles(folder).Select(f => Encoding.UTF8.GetByteCount(Path.GetFileName(f))), Has.All.LessThanOrEqualTo(255));
        Assert.That(Directory.GetFiles(folder), Has.Length.EqualTo(3), "the model, its (shortened) confusion plot and its (shortened) report");
    }

    [Test]
    public void Item6_an_unusable_cache_folder_fails_every_verb_before_work_with_the_same_message()
    {
        var file = Path.Combine(TestData.TempFolder(), "cache-is-a-file");
        File.WriteAllText(file, "x");
        foreach (var cache in new[] { file, "/proc/mltransfer-cache" })
        {
            var train = Cli(Train(_train, Path.Combine(TestData.TempFolder(), "m.zip"), "--cache-dir", cache));
            AssertOneLineError(train, 1, $"Cache folder '{cache}' cannot be used");
            var featurize = Cli("featurize", _train, "--output", Path.Combine(TestData.TempFolder(), "f.csv"), "--backbone", _spec, "--cache-dir", cache);
            AssertOneLineError(featurize, 1, $"Cache folder '{cache}' cannot be used");
            Assert.That(featurize.Out, Does.Not.Contain("Featurised"));
        }
    }

    [Test]
    public void Item7_numeric_options_are_range_checked_and_a_diverging_head_saves_nothing()
    {
        var output = Path.Combine(TestData.TempFolder(), "m.zip");
        foreach (var rate in new[] { "NaN", "Infinity", "0", "-1" })
            AssertOneLineError(Cli(Train(_train, output, "--head", "image-classification", "--learning-rate", rate)), 2, "--learning-rate must be a number above 0");
        AssertOneLineError(Cli(Train(_train, output, "--epochs", "0")), 2, "--epochs must be at least 1");
        AssertOneLineError(Cli(Train(_train, output, "--batch-size", "-4")), 2, "--batch-size must be at least 1");
        AssertOneLineError(Cli(Train(_train, output, "--validation-fraction", "NaN")), 2, "--validation-fraction");
        AssertOneLineError(Cli("featurize", _train, "--output", output + ".csv", "--decode-threads", "0"), 2, "--decode-threads");

        var run = Cli(Train(_train, output, "--head", "image-classification", "--learning-rate", "1e30", "--epochs", "5"));
        AssertOneLineError(run, 1, "Training diverged");
        Assert.That(File.Exists(output), Is.False, "no model with NaN weights");
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(output)!), Is.Empty);
    }

    [Test]
    public void Item8_image_size_is_bounded_at_parse_time_and_says_the_bound()
    {
        var graphs = Path.Combine(Cache, "graphs");
        var before = Directory.Exists(graphs) ? Directory.GetFiles(graphs).Length : 0;
        var run = Cli("train", _train, "--output", Path.Combine(TestData.TempFolder(), "m.zip"), "--image-size", "100000");
        AssertOneLineError(run, 2, "between 16 and 2048");
        Assert.That(Directory.Exists(graphs) ? Directory.GetFiles(graphs).Length : 0, Is.EqualTo(before), "no graph built");
        AssertOneLineError(Cli("featurize", _train, "--output", Path.Combine(TestData.TempFolder(), "f.csv"), "--image-size", "4096"), 2, "2048");
    }

    [Test]
    public void Item9_the_summary_counts_the_images_it_lists_as_skipped()
    {
        var train = TestData.CopySample(4, "0", "1");
        File.WriteAllText(Path.Combine(train, "0", "text.jpg"), "not an image");
        File.WriteAllBytes(Path.Combine(train, "1", "empty.png"), []);
        ImageFactory.Truncated(TestData.SampleImage("1", 9), Path.Combine(train, "1", "cut.jpg"), 0.2);
        var run = Cli(Train(train, Path.Combine(TestData.TempFolder(), "m.zip"), "--validation-fraction", "0.25"));
        Assert.That(run.Code, Is.Zero, run.All);
        Assert.That(run.Out, Does.Contain("3 unreadable image(s) skipped"));
        Assert.That(run.Out, Does.Match(@"Skipped \(unreadable\)\s*│\s*3\s"));
    }

    [Test]
    public void Item10_unclear_messages_are_clear()
    {
        var output = Path.Combine(TestData.TempFolder(), "m.zip");
        AssertOneLineError(Cli("predict", _model, _train, "--top", "0"), 2, "--top must be at least 1");
        AssertOneLineError(Cli("predict", _model, _train, "--top", "-3"), 2, "--top");
        AssertOneLineError(Cli("predict", _model, _train, "--top", "abc"), 2, "--top: 'abc' is not a number");
        AssertOneLineError(Cli(Train(_train, output, "--epochs", "many")), 2, "--epochs: 'many' is not a number");
        AssertOneLineError(Cli("predict", _model, TestData.TempFolder()), 1, "No images in");
        AssertOneLineError(Cli("evaluate", _train, _train), 1, "is a folder, not a model file");

        var onnx = Path.Combine(TestData.TempFolder(), "random.onnx");
        File.WriteAllBytes(onnx, Enumerable.Range(0, 4096).Select(i => (byte)(i * 7919 % 251)).ToArray());
        AssertOneLineError(Cli("train", _train, "--output", output, "--backbone", onnx), 1, "is an ONNX file");
        var notJson = Path.Combine(TestData.TempFolder(), "spec.json");
        File.Copy(onnx, notJson);
        AssertOneLineError(Cli("train", _train, "--output", output, "--backbone", notJson), 1, "is not a JSON spec");
        AssertOneLineError(Cli("train", _train, "--output", output, "--backbone", "missing/spec.json"), 1, "Backbone spec file 'missing/spec.json' does not exist");

        var cwdImage = Path.Combine(TestData.TempFolder(), "-x.jpg");
        File.Copy(TestData.SampleImage("1", 3), cwdImage);
        var dash = Cli("predict", _model, "--json", "--", cwdImage);
        Assert.That(dash.Code, Is.Zero, dash.All);
        Assert.That(dash.Out, Does.Contain("-x.jpg").And.Contain("predicted_label"));
    }

    [Test]
    public void Item10_a_path_over_the_system_limit_rejects_that_folder_not_the_whole_load()
    {
        var train = TestData.CopySample(3, "0", "1");
        try
        {
            var deep = string.Join("/", Enumerable.Repeat(new string('d', 200), 22));
            var script = $"set -e; cd '{Path.Combine(train, "1")}'; for part in $(echo '{deep}' | tr '/' ' '); do mkdir $part; cd $part; done; cp '{TestData.SampleImage("1", 5)}' deep.jpg";
            using (var bash = System.Diagnostics.Process.Start("bash", ["-c", script]))
            {
                bash.WaitForExit();
                Assert.That(bash.ExitCode, Is.Zero, "could not build the deep folder");
            }
            var run = Cli(Train(train, Path.Combine(TestData.TempFolder(), "m.zip"), "--validation-fraction", "0"));
            Assert.That(run.Code, Is.Zero, run.All);
            Assert.That(run.Out, Does.Contain("longer than the system allows"));
            Assert.That(run.Out, Does.Contain(": 6 images, 2 classes"));
        }
        finally
        {
            using var rm = System.Diagnostics.Process.Start("rm", ["-rf", train]);
            rm.WaitForExit();
        }
    }

    [Test]
    public void Item10_temporary_files_of_killed_saves_are_cleaned_and_onnx_runtime_warnings_have_no_colour_codes()
    {
        var folder = TestData.TempFolder();
        var model = Path.Combine(folder, "model.zip");
        var stale = Path.Combine(folder, $".model.zip.4194000.{Guid.NewGuid():N}.tmp");
        File.WriteAllText(stale, "left by a killed save");
        var other = Path.Combine(folder, $".other.zip.4194000.{Guid.NewGuid():N}.tmp");
        File.WriteAllText(other, "another target's");
        var noisy = TinyBackbone.Write(unusedInitializer: true);
        var run = Cli(new Dictionary<string, string> { ["NO_COLOR"] = "1" },
            "train", _train, "--output", model, "--backbone", noisy, "--no-plots", "--validation-fraction", "0");
        Assert.That(run.Code, Is.Zero, run.All);
        Assert.That(File.Exists(stale), Is.False, "the killed save's temporary file is gone");
        Assert.That(File.Exists(other), "only temporary files of the same target are touched");
        Assert.That(run.All, Does.Contain("onnxruntime warning:"), "the unused initializer makes ONNX Runtime warn");
        Assert.That(run.All, Does.Not.Contain("\u001b["), "no colour codes with NO_COLOR");
    }

    [Test]
    public void Item11_surprises_get_a_warning_line_each()
    {
        var train = TestData.CopySample(4, "0", "1");
        var nested = Path.Combine(train, "0", "more");
        Directory.CreateDirectory(nested);
        File.Copy(TestData.SampleImage("0", 9), Path.Combine(nested, "n.jpg"));
        var hidden = Path.Combine(train, "1", ".thumbnails");
        Directory.CreateDirectory(hidden);
        File.Copy(TestData.SampleImage("1", 9), Path.Combine(hidden, "t.jpg"));
        File.Copy(TestData.SampleImage("2", 0), Path.Combine(train, "loose.jpg"));
        var run = Cli(Train(train, Path.Combine(TestData.TempFolder(), "m.zip"), "--validation", train));
        Assert.That(run.Code, Is.Zero, run.All);
        var warnings = run.Out.Split('\n').Where(l => l.StartsWith("warning:", StringComparison.Ordinal)).ToList();
        Assert.That(warnings, Has.Some.Contain("sub-folder(s) ('more') are read as class '0'"));
        Assert.That(warnings, Has.Some.Contain("hidden folder(s) ('.thumbnails') were skipped"));
        Assert.That(warnings, Has.Some.Contain("directly in").And.Contain("not in a class folder"));
        Assert.That(warnings, Has.Some.Contain("--validation is the training folder"));
        Assert.That(run.Out, Does.Contain(": 9 images, 2 classes"), "the hidden folder's image is not read");
    }

    [Test]
    public void Exit_codes_follow_one_rule_usage_2_and_input_1()
    {
        var output = Path.Combine(TestData.TempFolder(), "m.zip");
        var usage = new[]
        {
            new[] { "train", _train, "--technique", "magic" },
            ["train", _train, "--head", "forest"],
            ["train", _train, "--no-such-option"],
            ["train", "--output", output],
            ["train", _train, "--technique", "domain-adaptation", "--output", output],
            ["evaluate"],
            ["predict", _model],
            ["featurize", _train, "--output", "features.txt"],
            ["bench", "featurize", _train, "--limit", "0"],
            ["no-such-verb"],
        };
        foreach (var args in usage)
            Assert.That(Cli(args).Code, Is.EqualTo(2), string.Join(' ', args));
        var input = new[]
        {
            new[] { "train", Path.Combine(_train, "missing"), "--output", output },
            ["evaluate", Path.Combine(_train, "none.zip"), _train],
            ["predict", _model, Path.Combine(_train, "missing")],
            ["featurize", Path.Combine(_train, "missing"), "--output", output + ".csv"],
            ["bench", "featurize", Path.Combine(_train, "missing"), "--no-mlnet"],
        };
        foreach (var args in input)
        {
            var run = Cli(args);
            Assert.That(run.Code, Is.EqualTo(1), string.Join(' ', args) + run.All);
            Assert.That(run.ErrorLines, Has.Count.EqualTo(1), run.All);
        }
    }
}
