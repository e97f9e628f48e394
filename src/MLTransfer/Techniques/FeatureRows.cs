using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Export;

namespace MLTransfer.Techniques;

/// <summary>In-memory data views of feature vectors, for training ML.NET heads on cached features.</summary>
public static class FeatureRows
{
    private sealed class Row
    {
        public float[] Features { get; set; } = [];
        public string Label { get; set; } = "";
    }

    /// <summary>A data view with a <c>Features</c> vector column of known size and a <c>Label</c> text column.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="features">The vectors (all the same length).</param>
    /// <param name="labels">Labels, or null for unlabelled rows.</param>
    /// <param name="classes">All class names; listed first would change nothing, so only used for validation.</param>
    public static IDataView ToDataView(MLContext mlContext, IReadOnlyList<float[]> features, IReadOnlyList<string>? labels, IReadOnlyList<string>? classes)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        if (features.Count == 0)
            throw new ArgumentException("No feature vectors.");
        var size = features[0].Length;
        var definition = SchemaDefinition.Create(typeof(Row));
        definition[nameof(Row.Features)].ColumnName = ImagePipeline.FeaturesColumn;
        definition[nameof(Row.Features)].ColumnType = ImagePipeline.FeatureType(size);
        var rows = features.Select((f, i) => new Row { Features = f, Label = labels?[i] ?? "" }).ToList();
        if (classes is not null && labels is not null)
        {
            var missing = classes.Except(labels).ToList();
            if (missing.Count > 0)
                throw new InvalidDataException($"Classes without training examples: '{string.Join("', '", missing)}'.");
        }
        return mlContext.Data.LoadFromEnumerable(rows, definition);
    }
}
