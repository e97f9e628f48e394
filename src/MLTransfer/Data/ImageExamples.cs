namespace MLTransfer.Data;

/// <summary>One labelled image: the row type of every image dataset in MLTransfer.</summary>
public sealed class ImageExample
{
    /// <summary>Path of the image file (the exported model's only input column).</summary>
    public string ImagePath { get; set; } = "";

    /// <summary>Class name (the class folder's name); empty for unlabelled images.</summary>
    public string Label { get; set; } = "";
}

/// <summary>An image that could not be used, and why.</summary>
/// <param name="Path">The file.</param>
/// <param name="Reason">What is wrong with it.</param>
public sealed record RejectedImage(string Path, string Reason);
