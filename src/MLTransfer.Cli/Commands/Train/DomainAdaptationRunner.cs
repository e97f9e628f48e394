using Microsoft.ML;
using MLTransfer.Cli.Rendering;
using MLTransfer.Evaluation;
using MLTransfer.Featurization;
using MLTransfer.Techniques;
using MLTransfer.Techniques.DomainAdaptation;
using MLTransfer.Torch.DomainAdaptation;
using MLTransfer.Torch.Training;
using Spectre.Console;

namespace MLTransfer.Cli.Commands.Train;

/// <summary>
/// <c>--technique domain-adaptation --target &lt;unlabelled folder&gt; --method coral|adabn|dann|mmd|deep-coral|source-only
/// [--target-test &lt;labelled folder&gt;]</c>: trains the adapted model and its source-only peer (same backbone, head
/// and budget), prints both accuracies on the target test folder (used for this report only) and its training report carries a PCA
/// projection of source and target features before and after adaptation (plotted next to the model and in its report).
/// </summary>
public sealed class DomainAdaptationRunner : ITrainRunner
{
    /// <inheritdoc />
    public string Technique => "domain-adaptation";

    /// <inheritdoc />
    public TransferModel Train(TrainSettings settings, MLContext mlContext, IAnsiConsole console)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.Target is null)
            throw new ArgumentException("Domain adaptation needs --target <folder of unlabelled target-domain images>.");
        var method = settings.Method.ToLowerInvariant();
        var baseline = method is "dann" or "mmd" or "deep-coral" ? "adapter-source-only" : "source-only";
        var folder = RunnerSupport.LoadFolder(console, settings.Folder!, settings.Strict);
        settings.SkippedImages.AddRange(folder.Rejected);
        var targetCount = TargetImages.List(settings.Target).Count;
        console.MarkupLineInterpolated($"[grey]{Path.GetFullPath(settings.Target)}[/]: {targetCount} unlabelled target images (labels, if any, are ignored)");
        var backbone = RunnerSupport.Backbone(settings);
        var engine = RunnerSupport.Engine(settings);
        using var featurizer = new MemoizingFeaturizer(new OnnxImageFeaturizer(backbone, engine));
        var data = mlContext.Data.LoadFromEnumerable(folder.Examples);

        DomainAdaptationEstimator Build(string name, IProgress<FeaturizationProgress>? progress, IProgress<TrainingProgress>? training)
        {
            T Fill<T>(T options) where T : DomainAdaptationOptions
            {
                options.TargetFolder = settings.Target;
                options.Backbone = backbone;
                options.Engine = engine;
                options.Featurizer = featurizer;
                options.ValidationFraction = settings.ValidationFraction;
                options.Seed = settings.Seed;
                options.Strict = settings.Strict;
                options.Progress = progress;
                if (options is FeatureAdapterOptions adapter)
                {
                    adapter.Epochs = settings.Epochs ?? adapter.Epochs;
                    adapter.BatchSize = settings.BatchSize ?? adapter.BatchSize;
                    adapter.LearningRate = settings.LearningRate ?? adapter.LearningRate;
                    adapter.TrainedBackboneBlocks = settings.TrainedBackboneBlocks ?? adapter.TrainedBackboneBlocks;
                    adapter.CheckpointDirectory = RunnerSupport.Checkpoints(console, settings, adapter.Epochs, name);
                    adapter.Resume = settings.Resume;
                    adapter.MetricsCallback = m => RunnerSupport.EpochLine(console, m);
                    adapter.TrainingProgress = training;
                }
                return options;
            }
            var transfer = mlContext.Transfer();
            return name switch
            {
                "coral" => transfer.DomainAdaptation(Fill(new CoralOptions())),
                "adabn" => transfer.DomainAdaptation(Fill(new AdaBNOptions())),
                "source-only" => transfer.DomainAdaptation(Fill(new SourceOnlyOptions())),
                "dann" => transfer.DomainAdaptation(Fill(new DannOptions())),
                "mmd" => transfer.DomainAdaptation(Fill(new MmdOptions())),
                "deep-coral" => transfer.DomainAdaptation(Fill(new MmdOptions { Loss = DiscrepancyLoss.DeepCoral })),
                "adapter-source-only" => transfer.DomainAdaptation(Fill(new MmdOptions { AdaptationWeight = 0 })),
                _ => throw new ArgumentException($"Unknown domain-adaptation method '{settings.Method}': use coral, adabn, dann, mmd, deep-coral or source-only."),
            };
        }

        var adapted = RunnerSupport.WithTrainingProgress(console, (progress, training) => Build(method, progress, training).FitDetailed(data));
        var peer = method == baseline ? adapted : RunnerSupport.WithTrainingProgress(console, (progress, training) => Build(baseline, progress, training).FitDetailed(data));
        if (settings.TargetTest is { } testFolder)
        {
            var test = RunnerSupport.LoadFolder(console, testFolder, settings.Strict, minimumClasses: 1);
            var adaptedAccuracy = ModelEvaluator.Evaluate(mlContext, adapted.Model, test.Examples).MicroAccuracy;
            var peerAccuracy = peer == adapted ? adaptedAccuracy : ModelEvaluator.Evaluate(mlContext, peer.Model, test.Examples).MicroAccuracy;
            var table = new Table().AddColumns("Target test (report only)", "Accuracy");
            table.AddRow(baseline, $"{peerAccuracy:P1}");
            table.AddRow($"[bold]{adapted.Method}[/]", $"[bold]{adaptedAccuracy:P1}[/] ({(adaptedAccuracy - peerAccuracy) * 100:+0.0;-0.0} pts)");
            console.Write(table);
        }
        return adapted.Model;
    }
}
