using SkiaSharp;

namespace MLTransfer.Tests.TestSupport;

/// <summary>Writes unusual but real image files for bad-input tests.</summary>
public static class ImageFactory
{
    public static string Png(string path, int width, int height, SKColorType colorType, SKAlphaType alpha = SKAlphaType.Premul)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, colorType, alpha));
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(new SKColor(30, 60, 90, 128));
            using var paint = new SKPaint { Color = SKColors.Orange };
            canvas.DrawCircle(width / 2f, height / 2f, width / 3f, paint);
        }
        using var pixmap = bitmap.PeekPixels();
        using var data = pixmap.Encode(new SKPngEncoderOptions(SKPngEncoderFilterFlags.AllFilters, 6))
            ?? throw new InvalidOperationException($"SkiaSharp cannot encode {colorType} as PNG.");
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }

    /// <summary>A 16-bit-per-channel RGB PNG (SkiaSharp cannot encode one, so the chunks are written here).</summary>
    public static string Png16(string path, int width, int height)
    {
        var raw = new MemoryStream();
        for (var y = 0; y < height; y++)
        {
            raw.WriteByte(0);
            for (var x = 0; x < width; x++)
                foreach (var v in new[] { x * 65535 / width, y * 65535 / height, 40000 })
                {
                    raw.WriteByte((byte)(v >> 8));
                    raw.WriteByte((byte)v);
                }
        }
        var compressed = new MemoryStream();
        using (var z = new System.IO.Compression.ZLibStream(compressed, System.IO.Compression.CompressionLevel.Optimal, leaveOpen: true))
            z.Write(raw.ToArray());
        using var stream = File.Create(path);
        stream.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        Chunk(stream, "IHDR", [.. BigEndian((uint)width), .. BigEndian((uint)height), 16, 2, 0, 0, 0]);
        Chunk(stream, "IDAT", compressed.ToArray());
        Chunk(stream, "IEND", []);
        return path;
    }

    private static void Chunk(Stream stream, string type, byte[] data)
    {
        byte[] body = [.. System.Text.Encoding.ASCII.GetBytes(type), .. data];
        stream.Write(BigEndian((uint)data.Length));
        stream.Write(body);
        stream.Write(BigEndian(Crc32(body)));
    }

    /// <summary>A PNG whose header claims <paramref name="width"/>×<paramref name="height"/> but holds almost no data.</summary>
    public static string HugeHeaderPng(string path, uint width, uint height)
    {
        using var stream = File.Create(path);
        stream.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new List<byte>();
        ihdr.AddRange("IHDR"u8.ToArray());
        ihdr.AddRange(BigEndian(width));
        ihdr.AddRange(BigEndian(height));
        ihdr.AddRange(new byte[] { 8, 2, 0, 0, 0 });
        stream.Write(BigEndian(13));
        stream.Write(ihdr.ToArray());
        stream.Write(BigEndian(Crc32(ihdr.ToArray())));
        byte[] idat = [.. "IDAT"u8.ToArray(), 0x78, 0x9C, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01];
        stream.Write(BigEndian((uint)idat.Length - 4));
        stream.Write(idat);
        stream.Write(BigEndian(Crc32(idat)));
        stream.Write(BigEndian(0));
        stream.Write("IEND"u8);
        stream.Write(BigEndian(Crc32("IEND"u8.ToArray())));
        return path;
    }

    /// <summary>
    /// Writes a photo shrunk to <paramref name="side"/>² (optionally grey) as PNG, like the tiny images of digit and
    /// CIFAR-style datasets, which the repository cannot ship.
    /// </summary>
    public static string Shrunk(string photo, string path, int side, bool grey)
    {
        using var source = SKBitmap.Decode(photo) ?? throw new InvalidOperationException($"Cannot decode {photo}.");
        var info = new SKImageInfo(side, side, grey ? SKColorType.Gray8 : SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var small = source.Resize(info, new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear))
            ?? throw new InvalidOperationException($"Cannot resize {photo}.");
        using var data = small.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }

    public static string Truncated(string source, string path, double keep = 0.5)
    {
        var bytes = File.ReadAllBytes(source);
        File.WriteAllBytes(path, bytes.AsSpan(0, (int)(bytes.Length * keep)).ToArray());
        return path;
    }

    private static byte[] BigEndian(uint value) => [(byte)(value >> 24), (byte)(value >> 16), (byte)(value >> 8), (byte)value];

    private static uint Crc32(byte[] data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++)
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
        }
        return ~crc;
    }
}
