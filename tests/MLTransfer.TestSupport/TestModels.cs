using Microsoft.ML;
using MLTransfer.Data;
using MLTransfer.Export;
using MLTransfer.Featurization;
using MLTransfer.Techniques.DomainAdaptation;
using MLTransfer.Techniques.FeatureExtraction;
using MLTransfer.Techniques.MultiTask;

namespace MLTransfer.Tests.TestSupport;

/// <summary>
/// Small real models saved as <c>.zip</c> (64 px ResNet18 features of the bundled sample), trained once per test process on
/// first use, for tests that need a model file rather than a technique.
/// </summary>
public static class TestModels
{
    /// <summary>The classes of the single-task models.</summary>
    public static readonly string[] Classes = ["0", "3", "5", "8"];

    /// <summary>The image size of every test model.</summary>
    public const int ImageSize = 64;

    private static readonly Lazy<string> Cache = new(TestData.TempFolder);
    private static readonly Lazy<string> Lbfgs = new(() => FeatureExtraction(HeadKind.LbfgsMaximumEntropy), LazyThreadSafetyMode.ExecutionAndPublication);
    private static readonly Lazy<string> Sdca = new(() => FeatureExtraction(HeadKind.SdcaMaximumEntropy), LazyThreadSafetyMode.ExecutionAndPublication);
    private static readonly Lazy<string> LightGbm = new(() => FeatureExtraction(HeadKind.LightGbm), LazyThreadSafetyMode.ExecutionAndPublication);
    private static readonly Lazy<string> Coral = new(TrainCoral, LazyThreadSafetyMode.ExecutionAndPublication);
    private static readonly Lazy<string> Multi = new(TrainMultiTask, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Feature extraction with ML.NET's L-BFGS head (the CLI's default), classes <see cref="Classes"/>.</summary>
    public static string SingleTask => Lbfgs.Value;

    /// <summary>A feature-extraction model with the given head.</summary>
    public static string WithHead(HeadKind head) => head switch
    {
        HeadKind.LbfgsMaximumEntropy => Lbfgs.Value,
        HeadKind.SdcaMaximumEntropy => Sdca.Value,
        HeadKind.LightGbm => LightGbm.Value,
        _ => throw new ArgumentOutOfRangeException(nameof(head), head, "No test model with this head."),
    };

    /// <summary>CORAL domain adaptation onto the shifted sample (its graph carries an extra <c>Gemm</c>).</summary>
    public static string DomainAdaptation => Coral.Value;

    /// <summary>Multi-task: <c>digit</c> and <c>parity</c> (classification), <c>value</c> (regression); see <see cref="SampleManifest"/>.</summary>
    public static string MultiTask => Multi.Value;

    private static FeaturizerOptions Engine() => new() { ImageSize = ImageSize, CacheDirectory = Cache.Value };

    private static string Save(MLContext ml, ITransformer model, string name)
    {
        var path = Path.Combine(TestData.TempFolder(), name);
        ModelFile.Save(ml, model, path);
        return path;
    }

    private static string FeatureExtraction(HeadKind head)
    {
        var ml = new MLContext(seed: 1);
        var options = new FeatureExtractionOptions { Head = head, Engine = Engine(), ValidationFraction = 0, Seed = 3 };
        var model = ml.Transfer().FeatureExtraction(options).Fit(ml.Data.LoadFromEnumerable(TestData.SampleSubset(6, Classes)));
        return Save(ml, model, $"feature-extraction-{head}.zip");
    }

    private static string TrainCoral()
    {
        var ml = new MLContext(seed: 1);
        var options = new CoralOptions
        {
            TargetImages = Domains.TargetImages(4, 0, Classes).Select(e => e.ImagePath).ToList(),
            Direction = CoralDirection.TargetToSource,
            Engine = Engine(),
            Seed = 3,
        };
        var model = ml.Transfer().DomainAdaptation(options).Fit(ml.Data.LoadFromEnumerable(Domains.SourceImages(6, 0, Classes)));
        return Save(ml, model, "coral.zip");
    }

    private static string TrainMultiTask()
    {
        var ml = new MLContext(seed: 1);
        var kinds = new Dictionary<string, TaskKind> { ["value"] = TaskKind.Regression };
        var manifest = ImageManifest.Load(SampleManifest.Write(4, Classes), new ImageManifestOptions { Kinds = kinds, DecodeCheck = false });
        var options = new MultiTaskOptions { Kinds = kinds, Engine = Engine(), ValidationFraction = 0, Seed = 5 };
        var model = ml.Transfer().MultiTask(options).Fit(manifest.ToDataView(ml));
        return Save(ml, model, "multi-task.zip");
    }
}
