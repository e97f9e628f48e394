using System.Text.Json.Serialization;

namespace MLTransfer.Cluster.Output;

/// <summary>One row of a featurisation part: an image, its label and its features (or why it was rejected).</summary>
public sealed class FeaturePartRow
{
    /// <summary>The image path.</summary>
    [JsonPropertyName("path")]
    public string Path { get; set; } = "";

    /// <summary>The class folder's name, or null for unlabelled images.</summary>
    [JsonPropertyName("label")]
    public string? Label { get; set; }

    /// <summary>Why the image was rejected (unreadable, corrupt), or null.</summary>
    [JsonPropertyName("error")]
    public string? Error { get; set; }

    /// <summary>The backbone features, or null for a rejected image.</summary>
    [JsonPropertyName("features")]
    public float[]? Features { get; set; }
}

/// <summary>One row of a prediction part: an image, its label if any, the predicted class and the class probabilities.</summary>
public sealed class PredictionPartRow
{
    /// <summary>The image path.</summary>
    [JsonPropertyName("path")]
    public string Path { get; set; } = "";

    /// <summary>The class folder's name, or null for unlabelled images.</summary>
    [JsonPropertyName("label")]
    public string? Label { get; set; }

    /// <summary>Why the image was rejected, or null.</summary>
    [JsonPropertyName("error")]
    public string? Error { get; set; }

    /// <summary>The most likely class, or null for a rejected image.</summary>
    [JsonPropertyName("PredictedLabel")]
    public string? PredictedLabel { get; set; }

    /// <summary>One probability per class, in the model's class order (see the job manifest), or null for a rejected image.</summary>
    [JsonPropertyName("Score")]
    public float[]? Score { get; set; }
}
