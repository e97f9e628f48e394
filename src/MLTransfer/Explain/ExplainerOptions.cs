namespace MLTransfer.Explain;

/// <summary>How a heat map is computed.</summary>
public enum ExplanationMethod
{
    /// <summary>Class-activation maps where they are exact (a linear head on globally pooled features), occlusion otherwise.</summary>
    Auto,

    /// <summary>
    /// Class-activation maps (Zhou et al. 2016, "Learning Deep Features for Discriminative Localization"): the last
    /// convolutional map weighted by the head's class weights, <c>M_k(x,y) = Σ_j w_kj·f_j(x,y) + b_k</c>, whose spatial
    /// mean is exactly the class logit.
    /// </summary>
    ClassActivationMap,

    /// <summary>
    /// Occlusion sensitivity (Zeiler &amp; Fergus 2014, "Visualizing and Understanding Convolutional Networks"): a square
    /// patch filled with the image's mean colour slides over the image and the drop of the class probability is recorded.
    /// Works with any head (e.g. LightGBM).
    /// </summary>
    Occlusion,
}

/// <summary>Options of <see cref="ImageExplainer"/>.</summary>
public sealed class ExplainerOptions
{
    /// <summary>How maps are computed. The default value is <see cref="ExplanationMethod.Auto"/>.</summary>
    public ExplanationMethod Method { get; set; } = ExplanationMethod.Auto;

    /// <summary>How many classes get a map per image, most probable first. The default value is 1.</summary>
    public int Top { get; set; } = 1;

    /// <summary>A class to explain instead of the most probable ones; null means the most probable. The default value is null.</summary>
    public string? Class { get; set; }

    /// <summary>The probability column explained (<c>Score_T</c> for a task of a multi-task model). The default value is <c>Score</c>.</summary>
    public string ScoreColumn { get; set; } = "Score";

    /// <summary>Images (or occluded copies) per ONNX Runtime run. The default value is 8.</summary>
    public int BatchSize { get; set; } = 8;

    /// <summary>
    /// Occlusion: the image is divided into this many cells per side; the patch covers 2×2 cells and moves one cell at a
    /// time, so each image takes (Grid − 1)² occluded passes. The default value is 8 (49 passes; patch a quarter of the side).
    /// </summary>
    public int OcclusionGrid { get; set; } = 8;

    /// <summary>Largest accepted image in pixels (width × height). The default value is 64 megapixels.</summary>
    public long MaxPixels { get; set; } = Data.ImageFileCheck.DefaultMaxPixels;

    /// <summary>ONNX Runtime intra-op threads; 0 means one per core. The default value is 0.</summary>
    public int IntraOpThreads { get; set; }
}
