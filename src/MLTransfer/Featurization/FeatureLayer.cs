using MLTransfer.Backbones;

namespace MLTransfer.Featurization;

/// <summary>One part of a feature vector: the pooled output of one backbone stage (or the backbone's own output).</summary>
/// <param name="Name">The stage's name (<c>layer3</c>), or <c>output</c> for the backbone's own output.</param>
/// <param name="Offset">Index of the part's first value in the feature vector.</param>
/// <param name="Length">Number of values of the part.</param>
/// <param name="Stage">The stage; null for the backbone's own output.</param>
public sealed record FeatureLayer(string Name, int Offset, int Length, BackboneStage? Stage)
{
    /// <summary>The name of the part that is the backbone's own output when no stage is named.</summary>
    public const string OutputName = "output";

    /// <summary>The values of this part in a whole feature vector.</summary>
    /// <param name="features">A feature vector made of all the parts.</param>
    public float[] Slice(float[] features)
    {
        ArgumentNullException.ThrowIfNull(features);
        return features.AsSpan(Offset, Length).ToArray();
    }

    /// <summary>The parts of the features made of these stages (see <see cref="BackboneStages.ForFeatures"/>).</summary>
    /// <param name="backbone">The backbone.</param>
    /// <param name="stages">The stages; null means the backbone's output alone.</param>
    public static IReadOnlyList<FeatureLayer> Of(Backbone backbone, IReadOnlyList<BackboneStage>? stages)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        if (stages is null)
            return [new FeatureLayer(OutputName, 0, backbone.FeatureSize, null)];
        var layers = new List<FeatureLayer>();
        var offset = 0;
        foreach (var stage in stages)
        {
            var length = stage.IsOutput ? backbone.FeatureSize : stage.Channels;
            layers.Add(new FeatureLayer(stage.Name, offset, length, stage));
            offset += length;
        }
        return layers;
    }
}
