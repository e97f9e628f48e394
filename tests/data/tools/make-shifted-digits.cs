#:package SkiaSharp@3.119.4
#:package SkiaSharp.NativeAssets.Linux.NoDependencies@3.119.4
#:property ManagePackageVersionsCentrally=false
// Makes tests/data/sign-language-shifted from data/sign-language-digits: the same hand-sign photos as a camera with
// another sensor would give them (greyscale, slightly out of focus, lifted blacks, 64x64 px). Run from the repository root:
//   dotnet run tests/data/tools/make-shifted-digits.cs
// SHIFT_SIZE, SHIFT_CONTRAST and SHIFT_BLUR (blur sigma = side / SHIFT_BLUR) change the shift; the defaults made the committed files.
using SkiaSharp;

var source = Path.Combine("data", "sign-language-digits");
var target = Path.Combine("tests", "data", "sign-language-shifted");
var size = int.Parse(Environment.GetEnvironmentVariable("SHIFT_SIZE") ?? "64");
// Luma (Rec. 601) into every channel, then the contrast scaled around mid-grey and the blacks lifted by 8 %.
float contrast = float.Parse(Environment.GetEnvironmentVariable("SHIFT_CONTRAST") ?? "0.9"), Offset = (1 - contrast) * 0.5f + 0.08f;
var blur = float.Parse(Environment.GetEnvironmentVariable("SHIFT_BLUR") ?? "150");
float[] grey = [0.299f, 0.587f, 0.114f, 0, 0];
var matrix = grey.Select(v => v * contrast).ToArray();
float[] colour =
[
    .. matrix[..3], 0, Offset,
    .. matrix[..3], 0, Offset,
    .. matrix[..3], 0, Offset,
    0, 0, 0, 1, 0,
];

foreach (var dir in Directory.GetDirectories(source).Order(StringComparer.Ordinal))
{
    var outDir = Path.Combine(target, Path.GetFileName(dir));
    Directory.CreateDirectory(outDir);
    foreach (var file in Directory.GetFiles(dir, "*.JPG").Order(StringComparer.Ordinal))
    {
        using var photo = SKBitmap.Decode(file);
        using var surface = SKSurface.Create(new SKImageInfo(size, size, SKColorType.Gray8, SKAlphaType.Opaque));
        using var paint = new SKPaint
        {
            ColorFilter = SKColorFilter.CreateColorMatrix(colour),
            ImageFilter = SKImageFilter.CreateBlur(photo.Width / blur, photo.Height / blur),
        };
        using var blurred = new SKBitmap(photo.Width, photo.Height);
        using (var canvas = new SKCanvas(blurred))
        {
            canvas.Clear(SKColors.White);
            canvas.DrawBitmap(photo, 0, 0, paint);
        }
        using var image = SKImage.FromBitmap(blurred);
        surface.Canvas.DrawImage(image, new SKRect(0, 0, size, size), new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
        using var snapshot = surface.Snapshot();
        using var png = snapshot.Encode(SKEncodedImageFormat.Png, 100);
        using var output = File.Create(Path.Combine(outDir, Path.GetFileNameWithoutExtension(file) + ".png"));
        png.SaveTo(output);
    }
}
Console.WriteLine($"wrote {Directory.GetFiles(target, "*.png", SearchOption.AllDirectories).Length} images to {target}");
