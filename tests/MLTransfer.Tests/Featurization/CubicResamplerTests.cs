using MLTransfer.Featurization;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;
using SkiaSharp;

namespace MLTransfer.Tests.Featurization;

public class CubicResamplerTests
{
    // Real images of every shared dataset: 100×100 and 200×200 colour photos, 32×32 CIFAR crops, 16×16 and 28×28 grey digits,
    // and the odd formats ML.NET's own tests use. Each is resized up, down and to a size that does not divide it.
    private static IEnumerable<string> Images()
    {
        string[] folders = ["sign-language-digits", "utkface-multitask-subset", "cifar10-subset/test", "mnist-usps-domains/usps/test", "mnist-usps-domains/mnist/test"];
        foreach (var folder in folders)
            foreach (var path in Directory.EnumerateFiles(Path.Combine(TestData.Shared, folder), "*.*", SearchOption.AllDirectories)
                         .Where(MLTransfer.Data.ImageFileCheck.HasImageExtension).Order(StringComparer.Ordinal).Take(12))
                yield return path;
        foreach (var name in new[] { "banana.jpg", "hotdog.jpg", "tomato.bmp", "tomato.jpg", "taco_invalidpixelformat.jpg" })
            yield return Path.Combine(TestData.SharedImages, name);
    }

    [TestCase(224)]
    [TestCase(128)]
    [TestCase(61)]
    public void Should_give_the_pixels_of_mlnet_resize_on_real_images(int size)
    {
        var viaSkia = new float[ImagePreprocessor.PixelCount(size)];
        FeaturizationTestSupport.AssertPixelsEqualMlNet(Images().ToArray(), size, (path, bytes, actual) =>
        {
            Assert.That(ImagePreprocessor.TryLoadPixels(bytes, size, viaSkia, MLTransfer.Data.ImageFileCheck.DefaultMaxPixels, allowFastResize: false), Is.Null);
            Assert.That(actual, Is.EqualTo(viaSkia), $"{path} at {size} px: fast resize against SkiaSharp (fast resize in use: {CubicResampler.IsExact})");
        });
    }

    [Test]
    public void Should_compute_what_skia_draws_when_the_start_up_check_passes()
    {
        using var source = SKBitmap.Decode(Path.Combine(TestData.SharedImages, "hotdog.jpg"));
        var rectangle = ImagePreprocessor.CentreCropRectangle(source.Width, source.Height, 320);
        var viaSkia = new float[ImagePreprocessor.PixelCount(320)];
        var direct = new float[viaSkia.Length];

        Assert.That(ImagePreprocessor.ResizeWithSkia(source, rectangle, 320, viaSkia), Is.Null);
        Assert.That(CubicResampler.TryResize(source, rectangle, 320, direct), Is.True, "800×391 is under 4× a 320² canvas; it is shrunk 1.22×");

        Assert.That(direct.SequenceEqual(viaSkia), Is.EqualTo(CubicResampler.IsExact));
    }

    [Test]
    public void Should_leave_partly_covered_canvases_translucent_and_large_images_to_skia()
    {
        using var opaque = new SKBitmap(new SKImageInfo(61, 97, SKColorType.Bgra8888, SKAlphaType.Opaque));
        using var translucent = new SKBitmap(new SKImageInfo(50, 50, SKColorType.Bgra8888, SKAlphaType.Premul));
        var pixels = new float[ImagePreprocessor.PixelCount(128)];

        var narrow = ImagePreprocessor.CentreCropRectangle(61, 97, 128);
        Assert.That(narrow.Width, Is.LessThan(128), "float rounding leaves the last column of the canvas undrawn");
        Assert.That(CubicResampler.TryResize(opaque, narrow, 128, pixels), Is.False);
        Assert.That(CubicResampler.TryResize(translucent, new SKRect(0, 0, 128, 128), 128, pixels), Is.False);
        using var large = new SKBitmap(new SKImageInfo(300, 300, SKColorType.Bgra8888, SKAlphaType.Opaque));
        Assert.That(CubicResampler.TryResize(large, new SKRect(0, 0, 128, 128), 128, pixels), Is.False, "over 4× the canvas's pixels");
        Assert.That(pixels, Is.All.EqualTo(0f), "nothing is written when the fast path declines");
    }
}
