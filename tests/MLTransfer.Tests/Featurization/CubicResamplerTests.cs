using MLTransfer.Featurization;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;
using SkiaSharp;

namespace MLTransfer.Tests.Featurization;

public class CubicResamplerTests
{
    // Real images of every kind users bring: 100×100 colour photos, 64×64 grey PNGs, the odd formats ML.NET's own tests
    // use, and photos shrunk to 16×16 grey and 32×32 colour (the sizes of digit and CIFAR-style datasets). Each is
    // resized up, down and to a size that does not divide it.
    private static readonly Lazy<string[]> Tiny = new(() =>
    {
        var folder = TestData.TempFolder();
        return TestData.SampleSubset(1, "6", "7", "8").SelectMany((e, i) => new[]
        {
            ImageFactory.Shrunk(e.ImagePath, Path.Combine(folder, $"grey16-{i}.png"), 16, grey: true),
            ImageFactory.Shrunk(e.ImagePath, Path.Combine(folder, $"colour32-{i}.png"), 32, grey: false),
        }).ToArray();
    });

    private static IEnumerable<string> Images() =>
        TestData.SampleSubset(1, "0", "1", "2", "3", "4", "5").Select(e => e.ImagePath)
            .Concat(TestData.Subset(TestData.ShiftedSample, 1, 0, ["0", "1", "2", "3", "4", "5"]).Select(e => e.ImagePath))
            .Concat(new[] { "banana.jpg", "hotdog.jpg", "tomato.bmp", "tomato.jpg", "taco_invalidpixelformat.jpg", "fillmode_test.png", "fruit0.png" }
                .Select(TestData.MlNetImage))
            .Concat(Tiny.Value);

    [Test]
    public void Should_pass_its_start_up_check_on_this_machine() =>
        Assert.That(CubicResampler.IsExact, Is.True, "the C# resize must give SkiaSharp's bytes here, or every image falls back to SkiaSharp");

    [TestCase(224)]
    [TestCase(128)]
    [TestCase(61)]
    public void Should_take_the_fast_path_and_give_the_bytes_of_skia(int size)
    {
        var viaSkia = new float[ImagePreprocessor.PixelCount(size)];
        var direct = new float[viaSkia.Length];
        var fast = 0;
        foreach (var path in Images())
        {
            using var decoded = ImagePreprocessor.Decode(File.ReadAllBytes(path), MLTransfer.Data.ImageFileCheck.DefaultMaxPixels, out var problem)
                ?? throw new AssertionException($"{path}: {problem}");
            using var source = decoded.ColorType is SKColorType.Bgra8888 or SKColorType.Rgba8888 ? decoded.Copy() : decoded.Copy(SKColorType.Bgra8888);
            if (source.Width == size && source.Height == size)
                continue;
            var rectangle = ImagePreprocessor.CentreCropRectangle(source.Width, source.Height, size);
            var eligible = source.AlphaType == SKAlphaType.Opaque && (long)source.Width * source.Height <= 4L * size * size
                && rectangle.Left <= 0 && rectangle.Top <= 0 && rectangle.Right >= size && rectangle.Bottom >= size;
            Assert.That(CubicResampler.TryResize(source, rectangle, size, direct), Is.EqualTo(eligible), $"{path} at {size} px: fast path taken");
            if (!eligible)
                continue;
            fast++;
            Assert.That(ImagePreprocessor.ResizeWithSkia(source, rectangle, size, viaSkia), Is.Null);
            Assert.That(direct, Is.EqualTo(viaSkia), $"{path} at {size} px: C# resize against SkiaSharp");
        }
        Assert.That(fast, Is.GreaterThanOrEqualTo(12), "the photos, grey images and tiny images of the fixtures go through the fast path");
    }

    [TestCase(224)]
    [TestCase(61)]
    public void Should_give_the_pixels_of_mlnet_resize_on_real_images(int size) =>
        FeaturizationTestSupport.AssertPixelsEqualMlNet(Images().ToArray(), size);

    [Test]
    public void Should_compute_what_skia_draws_when_the_start_up_check_passes()
    {
        using var source = SKBitmap.Decode(Path.Combine(TestData.MlNetImages, "hotdog.jpg"));
        var rectangle = ImagePreprocessor.CentreCropRectangle(source.Width, source.Height, 320);
        var viaSkia = new float[ImagePreprocessor.PixelCount(320)];
        var direct = new float[viaSkia.Length];

        Assert.That(ImagePreprocessor.ResizeWithSkia(source, rectangle, 320, viaSkia), Is.Null);
        Assert.That(CubicResampler.TryResize(source, rectangle, 320, direct), Is.True, "800×391 is under 4× a 320² canvas; it is shrunk 1.22×");

        Assert.That(direct, Is.EqualTo(viaSkia));
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
