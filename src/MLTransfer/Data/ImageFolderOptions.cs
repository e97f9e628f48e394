namespace MLTransfer.Data;

/// <summary>Options for reading a folder of images laid out as one sub-folder per class.</summary>
public sealed class ImageFolderOptions
{
    /// <summary>Fail on the first unreadable image instead of listing and skipping it. The default value is false.</summary>
    public bool Strict { get; set; }

    /// <summary>Fully decode every image while scanning (catches truncated files early). The default value is true.</summary>
    public bool DecodeCheck { get; set; } = true;

    /// <summary>Largest accepted image, in pixels (width × height). The default value is 64 megapixels.</summary>
    public long MaxPixels { get; set; } = ImageFileCheck.DefaultMaxPixels;

    /// <summary>
    /// Follow links to folders inside class folders (each real folder is then read once, so a link loop cannot repeat
    /// images). Class folders that are themselves links are always followed. The default value is false.
    /// </summary>
    public bool FollowFolderLinks { get; set; }

    /// <summary>Smallest number of classes a training folder must have. The default value is 2.</summary>
    public int MinimumClasses { get; set; } = 2;
}
