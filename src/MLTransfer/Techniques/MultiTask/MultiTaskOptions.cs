using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Featurization;
using MLTransfer.Heads;

namespace MLTransfer.Techniques.MultiTask;

/// <summary>Which head multi-task learning trains for each classification task.</summary>
public enum MultiTaskClassifier
{
    /// <summary>ML.NET's <c>LbfgsMaximumEntropy</c> (multinomial logistic regression, L-BFGS, one thread).</summary>
    LbfgsMaximumEntropy,
    /// <summary>MLTransfer's softmax layer trained with SGD (<see cref="SoftmaxHeadTrainer"/>, options in <see cref="MultiTaskOptions.Softmax"/>).</summary>
    Softmax,
}

/// <summary>Options of multi-task learning on a frozen backbone.</summary>
public sealed class MultiTaskOptions
{
    /// <summary>Task columns to learn, in this order; null means every input column except <c>ImagePath</c>. The default value is null.</summary>
    public IReadOnlyList<string>? Tasks { get; set; }

    /// <summary>
    /// Declared task kinds; undeclared ones are inferred from the labels with <see cref="ImageManifest.InferKind"/>
    /// (numeric input columns are always regression). The default value is null.
    /// </summary>
    public IReadOnlyDictionary<string, TaskKind>? Kinds { get; set; }

    /// <summary>See <see cref="ImageManifest.InferKind"/>. The default value is 10.</summary>
    public int NumericClassLimit { get; set; } = ImageManifest.DefaultNumericClassLimit;

    /// <summary>The frozen backbone; null means <see cref="Backbone.ResNet18"/>. The default value is null.</summary>
    public Backbone? Backbone { get; set; }

    /// <summary>The head of each classification task. The default value is <see cref="MultiTaskClassifier.LbfgsMaximumEntropy"/>.</summary>
    public MultiTaskClassifier Classifier { get; set; } = MultiTaskClassifier.LbfgsMaximumEntropy;

    /// <summary>Options of the <see cref="MultiTaskClassifier.Softmax"/> head. The default value is a new <see cref="ImageClassificationHeadOptions"/>.</summary>
    public ImageClassificationHeadOptions Softmax { get; set; } = new();

    /// <summary>
    /// Ridge penalty of regression heads (<see cref="RidgeRegressionTrainer"/>), relative to the number of examples;
    /// null picks it by 5-fold cross-validation on the training split. The default value is null.
    /// </summary>
    public double? RidgeLambda { get; set; }

    /// <summary>Featurisation engine options (image size, cache, threads). The default value is a new <see cref="FeaturizerOptions"/>.</summary>
    public FeaturizerOptions Engine { get; set; } = new();

    /// <summary>Share of the images (random, seeded) held out to report per-task validation metrics; 0 trains on everything. The default value is 0.1.</summary>
    public double ValidationFraction { get; set; } = 0.1;

    /// <summary>An explicit validation set used instead of a split; labels in the order of the tasks. The default value is null.</summary>
    public IReadOnlyList<MultiLabelExample>? Validation { get; set; }

    /// <summary>Seed of the split and of the heads' training. The default value is 0.</summary>
    public int Seed { get; set; }

    /// <summary>Fail on the first image that cannot be decoded instead of reporting and skipping it. The default value is false.</summary>
    public bool Strict { get; set; }

    /// <summary>
    /// Also write a standalone ONNX model here: the backbone with one output <c>Score_T</c> per task (<see cref="MultiTaskOnnx"/>).
    /// The default value is null (no ONNX file).
    /// </summary>
    public string? OnnxPath { get; set; }

    /// <summary>Receives featurisation progress. The default value is null.</summary>
    public IProgress<FeaturizationProgress>? Progress { get; set; }

    /// <summary>Collaborator that featurises images; null means an <see cref="OnnxImageFeaturizer"/> over <see cref="Backbone"/>. The default value is null.</summary>
    public IImageFeaturizer? Featurizer { get; set; }
}
