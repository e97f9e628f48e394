using System.Runtime.InteropServices;
using MLTransfer.Featurization;
using MLTransfer.Tests.TestSupport;
using MLTransfer.Torch.FineTuning;
using MLTransfer.Torch.Streaming;
using NUnit.Framework;
using SkiaSharp;

namespace MLTransfer.Torch.Tests.Streaming;

public class ImageFileRowsTests
{
    private static readonly string[] OddFormats = ["banana.jpg", "tomato.bmp", "tomato_indexedpixelformat.gif", "fillmode_test.png"];

    [TestCase(64)]
    [TestCase(100)]
    public void Exact_rows_are_the_pixels_of_the_exported_MLNet_pipeline_bit_for_bit(int size)
    {
        var paths = TestData.Images(3, 2).Select(i => i.Path).Concat(OddFormats.Select(TestData.MlNetImage)).ToList();
        var expected = ImagePixelReader.Read(paths, size);
        var rows = new ImageFileRows(paths, size, new ImageAugmenter(size, 0.3, 1, true, 0.4));
        foreach (var batch in BatchStream.Ordered(rows, Enumerable.Range(0, paths.Count).ToArray(), 3, workers: 2))
        {
            using (batch)
            {
                var data = batch.Input.data<float>().ToArray();
                var length = 3 * size * size;
                for (var k = 0; k < batch.Count; k++)
                    Assert.That(data.AsSpan(k * length, length).ToArray(), Is.EqualTo(expected[batch.Items[k]]), paths[batch.Items[k]]);
            }
        }
    }

    [Test]
    public void Random_resized_crops_are_drawn_from_the_original_picture_and_reach_its_edges()
    {
        // A 200×100 picture whose left and right 30 columns are red: the exported centre crop never shows red; crops of
        // the original must, as the old crop-of-the-centre-crop never could.
        var path = Path.Combine(TestData.TempFolder(), "wide.png");
        using (var bitmap = new SKBitmap(200, 100, SKColorType.Rgba8888, SKAlphaType.Opaque))
        {
            for (var y = 0; y < 100; y++)
                for (var x = 0; x < 200; x++)
                    bitmap.SetPixel(x, y, x < 30 || x >= 170 ? new SKColor(255, 0, 0) : new SKColor(0, 0, 255));
            using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(path, data.ToArray());
        }
        const int Size = 32;
        var rows = new ImageFileRows([path], Size, new ImageAugmenter(Size, 0.2, 1, flip: false, jitter: 0));
        var pixels = new float[3 * Size * Size];
        bool Red() => pixels.AsSpan(0, Size * Size).ToArray().Any(v => v > 200);

        rows.Fill(0, pixels, null);
        Assert.That(Red(), Is.False, "the exact image is the centre crop");
        var withRed = Enumerable.Range(0, 40).Count(seed =>
        {
            rows.Fill(0, pixels, new Random(seed));
            return Red();
        });
        Assert.That(withRed, Is.GreaterThan(5), $"{withRed} of 40 crops show the picture's edges");
    }

    [Test]
    public void Augmentation_depends_only_on_the_generator()
    {
        var paths = TestData.Images(1, 1).Select(i => i.Path).ToList();
        var rows = new ImageFileRows(paths, 48, new ImageAugmenter(48, 0.5, 1, true, 0.2));
        float[] Draw(int seed)
        {
            var pixels = new float[3 * 48 * 48];
            rows.Fill(0, pixels, new Random(seed));
            return pixels;
        }
        Assert.That(Draw(7), Is.EqualTo(Draw(7)));
        Assert.That(Draw(8), Is.Not.EqualTo(Draw(7)));
    }

    [Test]
    public void A_file_that_cannot_be_read_fails_with_its_name()
    {
        var path = Path.Combine(TestData.TempFolder(), "broken.jpg");
        File.WriteAllText(path, "not an image");
        var rows = new ImageFileRows([path], 32);
        var error = Assert.Throws<InvalidDataException>(() => rows.Fill(0, new float[3 * 32 * 32], null));
        Assert.That(error!.Message, Does.Contain("broken.jpg").And.Contain("not a supported image"));
    }
}
