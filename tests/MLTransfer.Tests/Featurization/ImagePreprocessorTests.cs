using MLTransfer.Featurization;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Featurization;

public class ImagePreprocessorTests
{
    private static IEnumerable<string> RealImages() =>
        TestData.SampleSubset(2, "0", "4", "8").Select(e => e.ImagePath)
            .Concat(new[] { "banana.jpg", "hotdog.jpg", "tomato.bmp", "tomato.jpg", "tomato_format32bppPArgb.jpg",
                "tomato_indexedpixelformat.gif", "fillmode_test.png" }.Select(f => Path.Combine(TestData.MlNetImages, f)));

    [TestCase(224)]
    [TestCase(96)]
    [TestCase(100)]
    [TestCase(61)]
    public void Should_produce_the_same_pixels_as_mlnet_image_transforms(int size) =>
        FeaturizationTestSupport.AssertPixelsEqualMlNet(RealImages().ToArray(), size);

    [Test]
    public void Should_explain_why_an_image_cannot_be_used()
    {
        var folder = TestData.TempFolder();
        var (empty, text, truncated) = FeaturizationTestSupport.UnreadableImages(folder);
        var pixels = new float[ImagePreprocessor.PixelCount(64)];

        Assert.That(ImagePreprocessor.TryLoadPixels(empty, 64, pixels), Does.Contain("empty"));
        Assert.That(ImagePreprocessor.TryLoadPixels(text, 64, pixels), Does.Contain("not a supported image"));
        Assert.That(ImagePreprocessor.TryLoadPixels(truncated, 64, pixels), Does.Contain("truncated"));
        Assert.That(ImagePreprocessor.TryLoadPixels(Path.Combine(folder, "missing.jpg"), 64, pixels), Is.EqualTo("file not found"));
        Assert.That(ImagePreprocessor.TryLoadPixels(Path.Combine(TestData.MlNetImages, "banana.jpg"), 64, pixels, maxPixels: 100),
            Does.Contain("over the limit"));
    }
}
