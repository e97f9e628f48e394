using Microsoft.Extensions.ObjectPool;
using Microsoft.ML;
using MLTransfer.Evaluation;
using MLTransfer.Export;

namespace MLTransfer.Serving;

/// <summary>
/// The benchmark's baseline (<c>--engine mlnet</c>): how an ML.NET-only service serves the <c>.zip</c> today. The model reads
/// <c>ImagePath</c>, so every upload is written to a temporary file, and <c>PredictionEngine</c> is not thread-safe, so each
/// request borrows one from a pool (as <c>Microsoft.Extensions.ML</c>'s <c>PredictionEnginePool</c> does). Single-task models only.
/// </summary>
public sealed class MlNetBaseline : IDisposable
{
    private readonly ObjectPool<PredictionEngine<PathInput, ScoreOutput>> _engines;
    private readonly string _folder = Directory.CreateTempSubdirectory("mltransfer-serving-").FullName;

    /// <summary>Loads the model with ML.NET.</summary>
    /// <param name="modelPath">The <c>.zip</c>.</param>
    public MlNetBaseline(string modelPath)
    {
        var mlContext = new MLContext(seed: 0);
        var model = ModelFile.Load(mlContext, modelPath);
        Classes = ModelEvaluator.Classes(model);
        _engines = new DefaultObjectPool<PredictionEngine<PathInput, ScoreOutput>>(new EnginePolicy(mlContext, model), Environment.ProcessorCount * 8);
    }

    /// <summary>The classes in score order.</summary>
    public IReadOnlyList<string> Classes { get; }

    /// <summary>Writes the upload to a temporary file and predicts it with a pooled engine.</summary>
    /// <param name="image">The uploaded bytes.</param>
    public (string Label, float[] Scores) Predict(ReadOnlyMemory<byte> image)
    {
        var path = Path.Combine(_folder, Guid.NewGuid().ToString("N"));
        File.WriteAllBytes(path, image.Span);
        var engine = _engines.Get();
        try
        {
            var output = engine.Predict(new PathInput { ImagePath = path });
            return (output.PredictedLabel, output.Score);
        }
        finally
        {
            _engines.Return(engine);
            File.Delete(path);
        }
    }

    /// <summary>Removes the temporary folder.</summary>
    public void Dispose()
    {
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>The model's input row.</summary>
    public sealed class PathInput
    {
        /// <summary>The image file.</summary>
        public string ImagePath { get; set; } = "";
    }

    /// <summary>The model's output row.</summary>
    public sealed class ScoreOutput
    {
        /// <summary>The predicted class.</summary>
        public string PredictedLabel { get; set; } = "";

        /// <summary>The class probabilities.</summary>
        public float[] Score { get; set; } = [];
    }

    private sealed class EnginePolicy(MLContext mlContext, ITransformer model) : PooledObjectPolicy<PredictionEngine<PathInput, ScoreOutput>>
    {
        public override PredictionEngine<PathInput, ScoreOutput> Create() => mlContext.Model.CreatePredictionEngine<PathInput, ScoreOutput>(model);

        public override bool Return(PredictionEngine<PathInput, ScoreOutput> obj) => true;
    }
}
