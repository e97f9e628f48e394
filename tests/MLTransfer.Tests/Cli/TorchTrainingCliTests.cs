using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Cli;

/// <summary><c>mltransfer train</c> with the TorchSharp techniques: checkpoints, <c>--resume</c>, one-line errors, and the DANN run of issue 12.</summary>
[NonParallelizable]
public class TorchTrainingCliTests
{
    private static string[] FineTune(string folder, string model, params string[] more) =>
        ["train", folder, "--technique", "fine-tuning", "--output", model, "--image-size", "32", "--epochs", "2", "--unfreeze-after", "1",
         "--batch-size", "4", "--validation-fraction", "0.25", "--no-plots", "--whole-network", .. more];

    [Test]
    public void Should_fine_tune_the_top_blocks_on_augmented_cached_views_by_default()
    {
        var folder = TestData.CopySample(4, "0", "1");
        var model = Path.Combine(TestData.TempFolder(), "default.zip");
        var (code, output, error) = CliTests.Run("train", folder, "--technique", "fine-tuning", "--output", model, "--image-size", "32", "--epochs", "2",
            "--batch-size", "4", "--validation-fraction", "0.25", "--no-plots", "--no-report", "--cache-dir", Path.Combine(TestData.TempFolder(), "cache"));
        Assert.That(code, Is.Zero, error + output);
        Assert.That(output, Does.Contain("epoch 1/2 HeadOnly").And.Contain("epoch 2/2 TopBlocks"), "the default trains the top blocks");
        Assert.That(File.Exists(model));

        (code, _, error) = CliTests.Run(FineTune(folder, model, "--top-blocks-only", "--force"));
        Assert.That(code, Is.EqualTo(2), "a usage error");
        Assert.That(error, Does.Contain("--whole-network and --top-blocks-only exclude each other"));
    }

    [Test]
    public void Should_fine_tune_on_the_exact_images_and_their_mirrors_and_refuse_mirrors_for_the_whole_network()
    {
        var folder = TestData.CopySample(4, "0", "1");
        var model = Path.Combine(TestData.TempFolder(), "mirrors.zip");
        var cache = Path.Combine(TestData.TempFolder(), "cache");
        var (code, output, error) = CliTests.Run("train", folder, "--technique", "fine-tuning", "--output", model, "--image-size", "32", "--epochs", "2",
            "--batch-size", "4", "--validation-fraction", "0.25", "--no-plots", "--no-report", "--top-block-views", "1", "--top-block-mirrors", "--cache-dir", cache);
        Assert.That(code, Is.Zero, error + output);
        Assert.That(output, Does.Contain("epoch 2/2 TopBlocks"));
        Assert.That(File.Exists(model));
        Assert.That(Directory.GetDirectories(Path.Combine(cache, "blocks")), Has.Length.EqualTo(2), "one cache context for the exact images, one for their mirrors");
        Assert.That(Directory.GetFiles(Path.Combine(cache, "blocks"), "*.bin", SearchOption.AllDirectories), Has.Length.EqualTo(8 + 6), "the 8 exact images (the 2 held out for validation included) and the mirrors of the 6 training images");

        (code, _, error) = CliTests.Run(FineTune(folder, model, "--top-block-mirrors", "--force"));
        Assert.That(code, Is.EqualTo(2), "a usage error");
        Assert.That(error, Does.Contain("--top-block-mirrors needs top-blocks mode; drop --whole-network."));
        (code, _, error) = CliTests.Run(FineTune(folder, model, "--top-block-views", "2", "--force"));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(error, Does.Contain("--top-block-views needs top-blocks mode; drop --whole-network."));
        foreach (var option in new[] { "--top-block-mirrors", "--top-block-views" })
        {
            (code, _, error) = CliTests.Run(["bench", "fine-tuning", folder, "--whole-network", .. option == "--top-block-views" ? new[] { option, "2" } : [option]]);
            Assert.That(code, Is.EqualTo(2), "bench fine-tuning checks the same options the same way");
            Assert.That(error, Does.Contain($"{option} needs top-blocks mode; drop --whole-network."));
        }
    }

    [Test]
    public void Should_fine_tune_with_mixup_cutmix_and_a_weight_average_and_refuse_them_elsewhere()
    {
        var folder = TestData.CopySample(4, "0", "1");
        var model = Path.Combine(TestData.TempFolder(), "mixed.zip");
        var (code, output, error) = CliTests.Run("train", folder, "--technique", "fine-tuning", "--output", model, "--image-size", "32", "--epochs", "2",
            "--batch-size", "4", "--validation-fraction", "0.25", "--no-plots", "--no-report", "--mixup", "0.4", "--cutmix", "1", "--weight-decay", "0.05",
            "--ema-decay", "0.9", "--cache-dir", Path.Combine(TestData.TempFolder(), "cache"));
        Assert.That(code, Is.Zero, error + output);
        Assert.That(output, Does.Contain("epoch 2/2 TopBlocks"));
        Assert.That(File.Exists(model));

        (code, _, error) = CliTests.Run(FineTune(folder, model, "--mixup", "-0.5", "--force"));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(error, Does.Contain("--mixup must be a number of at least 0 (got -0.5)"));
        (code, _, error) = CliTests.Run(FineTune(folder, model, "--ema-decay", "1", "--force"));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(error, Does.Contain("--ema-decay must be at least 0 and below 1 (got 1)"));
        (code, _, error) = CliTests.Run("train", folder, "--output", model, "--cutmix", "1", "--force");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(error, Does.Contain("--mixup, --cutmix, --weight-decay, --ema-decay, --ensemble, --test-time-flip and --top-block-mirrors are options of --technique fine-tuning"));
    }

    [Test]
    public void Should_fine_tune_a_folds_ensemble_with_a_checkpoint_folder_per_member_and_refuse_a_size_out_of_range()
    {
        var folder = TestData.CopySample(4, "0", "1");
        var model = Path.Combine(TestData.TempFolder(), "ensemble.zip");
        var (code, output, error) = CliTests.Run("train", folder, "--technique", "fine-tuning", "--output", model, "--image-size", "32", "--epochs", "2",
            "--batch-size", "4", "--validation-fraction", "0.25", "--no-plots", "--no-report", "--ensemble", "2", "--ensemble-folds", "--cache-dir", Path.Combine(TestData.TempFolder(), "cache"));
        Assert.That(code, Is.Zero, error + output);
        Assert.That(output, Does.Contain("member 1/2, epoch 2/2 TopBlocks").And.Contain("member 2/2, epoch 2/2 TopBlocks"));
        Assert.That(output, Does.Contain("8 / 4 (out-of-fold)"), "each member held out its own image of each class: 2 members × 2 classes");
        Assert.That(output, Does.Contain("one sub-folder per member"));
        var checkpoints = Path.ChangeExtension(model, null) + ".checkpoints";
        Assert.That(new[] { "member1", "member2" }.Select(m => File.Exists(Path.Combine(checkpoints, m, "training.checkpoint"))), Is.All.True);
        Assert.That(File.Exists(model));

        (code, _, error) = CliTests.Run(FineTune(folder, model, "--ensemble", "0", "--force"));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(error, Does.Contain("--ensemble must be between 1 and 16 (got 0)"));
        (code, _, error) = CliTests.Run(FineTune(folder, model, "--ensemble-folds", "--force"));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(error, Does.Contain("--ensemble-folds needs --ensemble N with N of at least 2."));
        (code, _, error) = CliTests.Run("train", folder, "--output", model, "--ensemble", "2", "--force");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(error, Does.Contain("--ensemble, --test-time-flip and --top-block-mirrors are options of --technique fine-tuning"));
    }

    [Test]
    public void Should_fine_tune_write_checkpoints_and_resume_only_what_is_left()
    {
        var folder = TestData.CopySample(4, "0", "1");
        var model = Path.Combine(TestData.TempFolder(), "tuned.zip");
        var (code, output, error) = CliTests.Run(FineTune(folder, model, "--resume"));
        Assert.That(code, Is.Zero, error + output);
        Assert.That(output, Does.Contain("no checkpoint there yet"), "--resume says the truth when there is nothing to resume");
        Assert.That(output, Does.Contain("epoch 1/2 HeadOnly").And.Contain("epoch 2/2 WholeNetwork"));
        Assert.That(File.Exists(model) && File.Exists(Path.ChangeExtension(model, ".onnx")));
        var checkpoint = Path.Combine(Path.ChangeExtension(model, null) + ".checkpoints", "training.checkpoint");
        Assert.That(File.Exists(checkpoint));

        (code, output, error) = CliTests.Run(FineTune(folder, model, "--resume"));
        Assert.That(code, Is.Zero, error + output);
        Assert.That(output, Does.Contain("all 2 epochs are done"));
        Assert.That(output, Does.Not.Contain("epoch 1/2"), "no epoch runs again");

        (code, output, error) = CliTests.Run(FineTune(folder, model, "--epochs", "3", "--resume"));
        Assert.That(code, Is.Zero, error + output);
        Assert.That(output, Does.Contain("resuming from epoch 3 of 3").And.Contain("epoch 3/3").And.Not.Contain("epoch 2/3"));
    }

    [Test]
    public void Should_refuse_another_runs_checkpoint_with_one_line_even_with_another_class_count()
    {
        var model = Path.Combine(TestData.TempFolder(), "tuned.zip");
        var (code, output, error) = CliTests.Run(FineTune(TestData.CopySample(4, "0", "1"), model, "--epochs", "1", "--unfreeze-after", "0"));
        Assert.That(code, Is.Zero, error + output);
        (code, _, error) = CliTests.Run(FineTune(TestData.CopySample(3, "0", "1", "2"), model, "--resume"));
        Assert.That(code, Is.EqualTo(1));
        var lines = error.Trim().Split('\n');
        Assert.That(lines, Has.Length.EqualTo(1), error);
        Assert.That(lines[0], Does.StartWith("error: ").And.Contain("belongs to another run"));
    }

    [Test]
    public void Should_stop_with_one_line_and_save_nothing_when_the_loss_becomes_nan()
    {
        var model = Path.Combine(TestData.TempFolder(), "diverged.zip");
        var (code, _, error) = CliTests.Run(FineTune(TestData.CopySample(4, "0", "1"), model, "--learning-rate", "1e30", "--unfreeze-after", "0"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error.Trim().Split('\n'), Has.Length.EqualTo(1), error);
        Assert.That(error, Does.Contain("nothing was saved"));
        Assert.That(File.Exists(model), Is.False);
        Assert.That(File.Exists(Path.ChangeExtension(model, ".onnx")), Is.False);
    }

    [Test]
    public void Dann_with_default_options_on_a_flat_unlabelled_target_folder_completes_and_reports_against_source_only()
    {
        // Issue 12: this command crashed inside libtorch ("Expected false to be true … toFloat … addcdiv_"): TorchSharp's
        // optimiser handed libtorch Scalars that the garbage collector freed during the call. A collector thread makes the
        // race likely; the run must complete.
        string[] classes = ["0", "1", "2"];
        var source = Domains.TargetFolder(Domains.SourceImages(8, 0, classes), scramble: false);
        var flat = TestData.TempFolder();
        foreach (var (image, i) in Domains.TargetImages(8, 8, classes).Select((e, i) => (e, i)))
            File.Copy(image.ImagePath, Path.Combine(flat, $"target-{i:D3}.png"));
        var test = Domains.TargetFolder(Domains.TargetImages(4, 16, classes), scramble: false);
        var model = Path.Combine(TestData.TempFolder(), "dann.zip");
        int code;
        string output, error;
        using (new GarbageCollectorPressure())
        {
            (code, output, error) = CliTests.Run("train", source, "--technique", "domain-adaptation", "--target", flat, "--method", "dann", "--output", model,
                "--image-size", "32", "--batch-size", "4", "--cache-dir", Shared.CacheDir, "--target-test", test, "--no-plots");
        }
        Assert.That(code, Is.Zero, error + output);
        Assert.That(output, Does.Contain("adapter-source-only").And.Contain("dann").And.Contain("Target test"));
        Assert.That(output, Does.Contain("epoch 20/20"), "the default budget of 20 epochs ran");
        Assert.That(File.Exists(model));
    }
}
