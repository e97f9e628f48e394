using MLTransfer.Data;
using MLTransfer.Featurization;

namespace MLTransfer.Torch.Streaming;

/// <summary>
/// Images read from their files every time a row is needed: the exact pixels of the exported ML.NET pipeline
/// (<see cref="ImagePreprocessor"/>, bit-identical to <c>LoadImages → ResizeImages → ExtractPixels</c>) or, with a
/// generator, an augmented view of the original picture (<see cref="ImageAugmenter"/>).
/// </summary>
internal sealed class ImageFileRows : IRowSource
{
    private readonly IReadOnlyList<string> _paths;
    private readonly int _size;
    private readonly ImageAugmenter? _augmenter;
    private readonly long _maxPixels;

    public ImageFileRows(IReadOnlyList<string> paths, int imageSize, ImageAugmenter? augmenter = null, long maxPixels = ImageFileCheck.DefaultMaxPixels)
    {
        _paths = paths;
        _size = imageSize;
        _augmenter = augmenter is { IsIdentity: false } ? augmenter : null;
        _maxPixels = maxPixels;
        RowShape = [3, imageSize, imageSize];
    }

    public int Count => _paths.Count;

    public long[] RowShape { get; }

    /// <summary>The image files, in item order.</summary>
    public IReadOnlyList<string> Paths => _paths;

    public void Fill(int index, Span<float> destination, Random? random)
    {
        var path = _paths[index];
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"Cannot read training image '{path}': {e.Message}", e);
        }
        var problem = random is not null && _augmenter is not null
            ? _augmenter.Load(bytes, destination, random, _maxPixels)
            : ImagePreprocessor.TryLoadPixels(bytes, _size, destination, _maxPixels);
        if (problem is not null)
            throw new InvalidDataException($"Cannot read training image '{path}': {problem}.");
    }
}
