using Microsoft.ML;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Featurization;
using MLTransfer.Heads;

namespace MLTransfer.Techniques.FeatureExtraction;

/// <summary>Which head feature extraction trains on the frozen features.</summary>
public enum HeadKind
{
    /// <summary>ML.NET's <c>LbfgsMaximumEntropy</c> (multinomial logistic regression, L-BFGS).</summary>
    LbfgsMaximumEntropy,
    /// <summary>ML.NET's <c>SdcaMaximumEntropy</c> on min-max normalised features.</summary>
    SdcaMaximumEntropy,
    /// <summary>ML.NET's <c>LightGbm</c> multiclass gradient-boosted trees.</summary>
    LightGbm,
    /// <summary>MLTransfer's softmax layer trained with SGD, epochs and early stopping (ML.NET <c>ImageClassification</c>-style options).</summary>
    ImageClassification,
}

/// <summary>Options of feature extraction: a frozen pretrained backbone and a newly trained head.</summary>
public sealed class FeatureExtractionOptions
{
    /// <summary>The frozen backbone; null means <see cref="Backbone.ResNet18"/>. The default value is null.</summary>
    public Backbone? Backbone { get; set; }

    /// <summary>Which head to train. The default value is <see cref="HeadKind.LbfgsMaximumEntropy"/>.</summary>
    public HeadKind Head { get; set; } = HeadKind.LbfgsMaximumEntropy;

    /// <summary>Any ML.NET multiclass trainer reading <c>Features</c> and a key <c>Label</c>; overrides <see cref="Head"/> when set. The default value is null.</summary>
    public IEstimator<ITransformer>? Trainer { get; set; }

    /// <summary>
    /// L2 regularisation of the <see cref="HeadKind.LbfgsMaximumEntropy"/> head; null chooses it from
    /// <see cref="Heads.LbfgsHeadTrainer.DefaultL2Grid"/> on a held-out fifth of the training images
    /// (<see cref="Heads.LbfgsHeadTrainer.TrainTuned"/>; the choice is in <see cref="TrainingReport.HeadL2Regularization"/>);
    /// 1 is ML.NET's own default. The default value is null.
    /// </summary>
    public float? HeadL2Regularization { get; set; }

    /// <summary>Options of the <see cref="HeadKind.ImageClassification"/> head. The default value is a new <see cref="ImageClassificationHeadOptions"/>.</summary>
    public ImageClassificationHeadOptions ImageClassification { get; set; } = new();

    /// <summary>Featurisation engine options (image size, layers, cache, threads). The default value is a new <see cref="FeaturizerOptions"/>.</summary>
    public FeaturizerOptions Engine { get; set; } = new();

    /// <summary>Share of each class held out to report validation metrics; 0 trains on everything. The default value is 0.1.</summary>
    public double ValidationFraction { get; set; } = 0.1;

    /// <summary>An explicit validation set (<c>ImagePath</c>, <c>Label</c>) used instead of a split. The default value is null.</summary>
    public IReadOnlyList<ImageExample>? Validation { get; set; }

    /// <summary>Seed of the split and of the head's training. The default value is 0.</summary>
    public int Seed { get; set; }

    /// <summary>Fail on the first image that cannot be decoded instead of reporting and skipping it. The default value is false.</summary>
    public bool Strict { get; set; }

    /// <summary>Receives featurisation progress. The default value is null.</summary>
    public IProgress<FeaturizationProgress>? Progress { get; set; }

    /// <summary>Collaborator that featurises images; null means an <see cref="OnnxImageFeaturizer"/> over <see cref="Backbone"/>. The default value is null.</summary>
    public IImageFeaturizer? Featurizer { get; set; }
}
