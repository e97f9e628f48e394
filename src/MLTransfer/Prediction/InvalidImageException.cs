namespace MLTransfer.Prediction;

/// <summary>An image that cannot be predicted: empty, not an image, damaged, truncated, or over the size limits.</summary>
public sealed class InvalidImageException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="reason">The one-line reason, e.g. <c>image is 100000x100000, over the limit of 67.1 megapixels</c>.</param>
    public InvalidImageException(string reason)
        : base($"The image cannot be used: {reason}.") => Reason = reason;

    /// <summary>The one-line reason the image was rejected.</summary>
    public string Reason { get; }
}
