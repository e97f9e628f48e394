using MLTransfer.Backbones;
using MLTransfer.Data;

namespace MLTransfer.Selection;

/// <summary>One scored feature source: a backbone stage's pooled output at an image size.</summary>
/// <param name="Rank">1 for the best LogME score.</param>
/// <param name="Backbone">The backbone.</param>
/// <param name="Layer">The stage's name (<c>layer3</c>), or <c>output</c> for a backbone without stages.</param>
/// <param name="ImageSize">Square image size in pixels.</param>
/// <param name="FeatureLength">Length of the feature vector.</param>
/// <param name="LogMe">The LogME score (<see cref="Selection.LogMe.Score"/>; higher is better).</param>
/// <param name="KnnAccuracy">k-NN leave-one-out accuracy (<see cref="NearestNeighbors.LeaveOneOutAccuracy"/>).</param>
/// <param name="Seconds">Wall time spent on it: its share of the backbone pass that featurised all the layers at this size, plus its scoring.</param>
public sealed record AdviceCandidate(int Rank, Backbone Backbone, string Layer, int ImageSize, int FeatureLength, double LogMe, double KnnAccuracy, double Seconds)
{
    /// <summary>Whether <see cref="Layer"/> names a stage (not the backbone's output of a backbone without stages).</summary>
    public bool IsStage => Layer != Featurization.FeatureLayer.OutputName;
}

/// <summary>What <see cref="Advisor.Advise"/> found: the candidates, best first.</summary>
public sealed class Advice
{
    /// <summary>Creates the result.</summary>
    /// <param name="candidates">The candidates, ranked.</param>
    /// <param name="images">Images scored.</param>
    /// <param name="classes">Classes among them.</param>
    /// <param name="rejected">Images that could not be read.</param>
    /// <param name="seconds">Total wall time.</param>
    public Advice(IReadOnlyList<AdviceCandidate> candidates, int images, int classes, IReadOnlyList<RejectedImage> rejected, double seconds)
    {
        Candidates = candidates;
        Images = images;
        Classes = classes;
        Rejected = rejected;
        Seconds = seconds;
    }

    /// <summary>The candidates, best LogME score first.</summary>
    public IReadOnlyList<AdviceCandidate> Candidates { get; }

    /// <summary>The candidate with the best LogME score.</summary>
    public AdviceCandidate Best => Candidates[0];

    /// <summary>Images scored (after sampling and without unreadable ones).</summary>
    public int Images { get; }

    /// <summary>Classes among the scored images.</summary>
    public int Classes { get; }

    /// <summary>Images that could not be read.</summary>
    public IReadOnlyList<RejectedImage> Rejected { get; }

    /// <summary>Total wall time in seconds.</summary>
    public double Seconds { get; }
}
