using MLTransfer.Data;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Data;

public class ImageFileScanTests
{
    [Test]
    public void Should_not_loop_through_links_and_count_each_real_file_once()
    {
        var root = TestData.CopySample(2, "0", "1");
        Directory.CreateSymbolicLink(Path.Combine(root, "0", "loop"), "..");
        Directory.CreateSymbolicLink(Path.Combine(root, "0", "other"), Path.Combine(root, "1"));

        var plain = ImageFileScan.Run(Path.Combine(root, "0"));
        Assert.That(plain.Images, Has.Count.EqualTo(2));
        Assert.That(plain.SkippedLinks, Is.EquivalentTo(new[] { "loop", "other" }));

        var followed = ImageFileScan.Run(Path.Combine(root, "0"), followFolderLinks: true);
        Assert.That(followed.Images, Has.Count.EqualTo(4), "class 1 through 'other' once; 'loop' leads back to visited folders");
        Assert.That(followed.Images.Select(ImageFileScan.RealPath).Distinct().Count(), Is.EqualTo(4));
    }

    [Test]
    public void Should_give_one_label_per_real_file_across_classes()
    {
        var root = TestData.CopySample(2, "0", "1");
        var image = Directory.GetFiles(Path.Combine(root, "0"))[0];
        File.CreateSymbolicLink(Path.Combine(root, "1", "same.jpg"), image);
        var folder = ImageFolder.Load(root, new ImageFolderOptions { DecodeCheck = false });
        Assert.That(folder.Examples, Has.Count.EqualTo(4));
        Assert.That(folder.Examples.Count(e => ImageFileScan.RealPath(e.ImagePath) == ImageFileScan.RealPath(image)), Is.EqualTo(1));
        Assert.That(folder.Warnings, Has.Some.Contain("counted once"));
    }
}
