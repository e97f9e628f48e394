using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Featurization;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;
using SkiaSharp;

namespace MLTransfer.Tests.Data;

public class ImageFolderTests
{
    [Test]
    public void Should_read_classes_from_sub_folders_with_case_insensitive_extensions()
    {
        var folder = ImageFolder.Load(TestData.Sample, new ImageFolderOptions { DecodeCheck = false });
        Assert.That(folder.Classes, Is.EqualTo(Enumerable.Range(0, 10).Select(i => i.ToString())));
        Assert.That(folder.Examples, Has.Count.EqualTo(200), "the sample's .JPG files are upper-case");
        Assert.That(folder.Rejected, Is.Empty);
    }

    [Test]
    public void Should_list_every_unreadable_image_and_ignore_non_images()
    {
        var root = TestData.CopySample(3, "2", "6");
        var bad = Path.Combine(root, "2");
        File.WriteAllBytes(Path.Combine(bad, "zero.jpg"), []);
        File.WriteAllText(Path.Combine(bad, "text.jpg"), "not an image, just text");
        ImageFactory.Truncated(TestData.SampleImage("2", 5), Path.Combine(bad, "truncated.jpg"), 0.3);
        ImageFactory.HugeHeaderPng(Path.Combine(bad, "huge.png"), 100_000, 100_000);
        File.WriteAllText(Path.Combine(bad, "notes.txt"), "ignored");
        File.WriteAllText(Path.Combine(root, "6", "Thumbs.db"), "ignored");

        var folder = ImageFolder.Load(root);

        Assert.That(folder.Examples, Has.Count.EqualTo(6));
        Assert.That(folder.IgnoredFiles, Is.EqualTo(2));
        var reasons = folder.Rejected.ToDictionary(r => Path.GetFileName(r.Path), r => r.Reason);
        Assert.That(reasons.Keys, Is.EquivalentTo(new[] { "zero.jpg", "text.jpg", "truncated.jpg", "huge.png" }));
        Assert.That(reasons["zero.jpg"], Does.Contain("0 bytes"));
        Assert.That(reasons["huge.png"], Does.Contain("100000x100000"));
        Assert.That(reasons["truncated.jpg"], Does.Contain("truncated").Or.Contain("damaged"));
    }

    [Test]
    public void Should_fail_in_strict_mode_naming_the_file()
    {
        var root = TestData.CopySample(2, "1", "2");
        File.WriteAllText(Path.Combine(root, "1", "broken.png"), "garbage");
        var error = Assert.Throws<InvalidDataException>(() => ImageFolder.Load(root, new ImageFolderOptions { Strict = true }));
        Assert.That(error!.Message, Does.Contain("broken.png").And.Contain("strict"));
    }

    [Test]
    public void Should_reject_an_empty_class_folder()
    {
        var root = TestData.CopySample(2, "1", "2");
        Directory.CreateDirectory(Path.Combine(root, "empty"));
        var error = Assert.Throws<InvalidDataException>(() => ImageFolder.Load(root));
        Assert.That(error!.Message, Does.Contain("empty").And.Contain("no images"));
    }

    [Test]
    public void Should_reject_a_single_class_and_a_folder_without_classes()
    {
        var one = TestData.CopySample(2, "1");
        Assert.That(() => ImageFolder.Load(one), Throws.InstanceOf<InvalidDataException>().With.Message.Contains("at least 2"));
        var flat = TestData.TempFolder();
        File.Copy(TestData.SampleImage(), Path.Combine(flat, "x.jpg"));
        Assert.That(() => ImageFolder.Load(flat), Throws.InstanceOf<InvalidDataException>().With.Message.Contains("no class sub-folders"));
        Assert.That(() => ImageFolder.Load(Path.Combine(flat, "missing")), Throws.InstanceOf<DirectoryNotFoundException>());
    }

    [Test]
    public void Should_featurise_odd_formats_and_unicode_paths()
    {
        var root = TestData.TempFolder();
        var odd = Directory.CreateDirectory(Path.Combine(root, "ünïcødé class", "sub dir")).FullName;
        var files = new List<string>
        {
            ImageFactory.Png(Path.Combine(odd, "grey scale.png"), 40, 30, SKColorType.Gray8, SKAlphaType.Opaque),
            ImageFactory.Png(Path.Combine(odd, "alpha.PNG"), 50, 50, SKColorType.Rgba8888, SKAlphaType.Unpremul),
            ImageFactory.Png16(Path.Combine(odd, "sixteen-bit.png"), 32, 24),
        };
        foreach (var name in new[] { "taco_invalidpixelformat.jpg", "tomato.bmp", "tomato_indexedpixelformat.gif", "fillmode_test.png" })
        {
            var target = Path.Combine(odd, "réel " + name);
            File.Copy(Path.Combine(TestData.MlNetImages, name), target);
            files.Add(target);
        }
        Directory.CreateDirectory(Path.Combine(root, "other"));
        File.Copy(TestData.SampleImage(), Path.Combine(root, "other", "a.jpg"));

        var folder = ImageFolder.Load(root);
        Assert.That(folder.Rejected, Is.Empty, string.Join("; ", folder.Rejected));
        Assert.That(folder.Classes, Is.EqualTo(new[] { "other", "ünïcødé class" }));

        using var featurizer = new OnnxImageFeaturizer(Backbone.ResNet18(), new FeaturizerOptions { ImageSize = 64, UseCache = false });
        var result = featurizer.Featurize(files);
        Assert.That(result.Failed, Is.Empty, string.Join("; ", result.Failed));
        Assert.That(result.Features.All(f => f is { Length: 512 } && f.Any(v => v > 0)));
    }

    [Test]
    public void Should_split_stratified_and_deterministically()
    {
        var examples = TestData.SampleSubset(10, "0", "1", "2");
        var (trainA, validationA) = ImageFolder.StratifiedSplit(examples, 0.3, 5);
        var (trainB, validationB) = ImageFolder.StratifiedSplit(examples, 0.3, 5);
        var (_, validationC) = ImageFolder.StratifiedSplit(examples, 0.3, 6);
        Assert.That(validationA.Select(e => e.ImagePath), Is.EqualTo(validationB.Select(e => e.ImagePath)));
        Assert.That(validationA.Select(e => e.ImagePath), Is.Not.EqualTo(validationC.Select(e => e.ImagePath)));
        Assert.That(validationA.GroupBy(e => e.Label).Select(g => g.Count()), Is.All.EqualTo(3));
        Assert.That(trainA.Concat(validationA).Select(e => e.ImagePath), Is.EquivalentTo(examples.Select(e => e.ImagePath)));
        Assert.That(trainB, Has.Count.EqualTo(21));
    }

    [Test]
    public void Should_hold_out_disjoint_stratified_folds_the_first_of_which_is_the_plain_split()
    {
        var examples = TestData.SampleSubset(10, "0", "1", "2");
        var (_, plain) = ImageFolder.StratifiedSplit(examples, 0.3, 5);
        var folds = Enumerable.Range(0, 3).Select(k => ImageFolder.StratifiedSplit(examples, 0.3, 5, fold: k)).ToArray();
        Assert.That(folds[0].Validation.Select(e => e.ImagePath), Is.EqualTo(plain.Select(e => e.ImagePath)));
        var held = folds.SelectMany(f => f.Validation.Select(e => e.ImagePath)).ToArray();
        Assert.That(held, Is.Unique.And.Length.EqualTo(27), "three folds of 3 images per class, no image twice");
        foreach (var (train, validation) in folds)
        {
            Assert.That(validation.GroupBy(e => e.Label).Select(g => g.Count()), Is.EqualTo(new[] { 3, 3, 3 }));
            Assert.That(train.Concat(validation).Select(e => e.ImagePath), Is.EquivalentTo(examples.Select(e => e.ImagePath)));
        }
        var wrapped = ImageFolder.StratifiedSplit(examples, 0.3, 5, fold: 3).Validation;
        Assert.That(wrapped.GroupBy(e => e.Label).Select(g => g.Count()), Is.EqualTo(new[] { 3, 3, 3 }), "a fold past the end wraps round the class");
    }
}
