using System.Collections.Concurrent;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Microsoft.ML.Transforms.Image;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Export;

namespace MLTransfer.Featurization;

/// <summary>
/// Featurises images with one tuned ONNX Runtime session (graph optimisation ALL, one intra-op thread per core,
/// no spinning) over the fused backbone graph, batching images, while decoding and resizing run on a worker
/// thread through ML.NET's own image transforms, so the pixels are exactly those the exported model sees.
/// </summary>
public sealed class OnnxImageFeaturizer : IImageFeaturizer
{
    private readonly FeaturizerOptions _options;
    private readonly MLContext _mlContext;
    private readonly InferenceSession _session;
    private readonly ITransformer _decoder;

    /// <summary>Creates the featuriser and its ONNX Runtime session.</summary>
    /// <param name="backbone">The backbone to run.</param>
    /// <param name="options">Engine options; null means the defaults.</param>
    public OnnxImageFeaturizer(Backbone backbone, FeaturizerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        _options = options ?? new FeaturizerOptions();
        Backbone = backbone;
        ImageSize = _options.ImageSize ?? backbone.InputSize;
        FeatureSize = backbone.FeatureSize;
        GraphPath = FeaturizerGraph.Materialize(backbone, ImageSize, _options.GraphDirectory);
        _session = new InferenceSession(GraphPath, CreateSessionOptions(_options.IntraOpThreads));
        _mlContext = new MLContext(seed: 0);
        var sample = _mlContext.Data.LoadFromEnumerable(Array.Empty<ImageExample>());
        _decoder = DecodeEstimator(_mlContext, ImageSize).Fit(sample);
    }

    /// <inheritdoc />
    public Backbone Backbone { get; }

    /// <inheritdoc />
    public int ImageSize { get; }

    /// <inheritdoc />
    public int FeatureSize { get; }

    /// <inheritdoc />
    public string GraphPath { get; }

    /// <summary>ONNX Runtime options tuned for CPU inference on a small machine.</summary>
    /// <param name="intraOpThreads">Intra-op threads; 0 means one per core.</param>
    public static SessionOptions CreateSessionOptions(int intraOpThreads = 0)
    {
        var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = intraOpThreads > 0 ? intraOpThreads : Environment.ProcessorCount,
            InterOpNumThreads = 1,
        };
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        options.AddSessionConfigEntry("session.inter_op.allow_spinning", "0");
        return options;
    }

    /// <summary>The decode → resize → pixels part of <see cref="ImagePipeline"/>.</summary>
    internal static IEstimator<ITransformer> DecodeEstimator(MLContext ml, int imageSize) =>
        ml.Transforms.LoadImages(ImagePipeline.ImageColumn, imageFolder: null, inputColumnName: ImagePipeline.ImagePathColumn)
            .Append(ml.Transforms.ResizeImages(ImagePipeline.ImageColumn, imageSize, imageSize, ImagePipeline.ImageColumn,
                ImageResizingEstimator.ResizingKind.IsoCrop, ImageResizingEstimator.Anchor.Center))
            .Append(ml.Transforms.ExtractPixels(ImagePipeline.PixelsColumn, ImagePipeline.ImageColumn,
                ImagePixelExtractingEstimator.ColorBits.Rgb, ImagePixelExtractingEstimator.ColorsOrder.ARGB,
                interleavePixelColors: false, scaleImage: 1f, offsetImage: 0f, outputAsFloatArray: true));

    /// <inheritdoc />
    public FeaturizationResult Featurize(IReadOnlyList<string> imagePaths, IProgress<FeaturizationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(imagePaths);
        var features = new float[]?[imagePaths.Count];
        var failed = new ConcurrentBag<RejectedImage>();
        using var queue = new BlockingCollection<(int Index, float[] Pixels)>(boundedCapacity: Math.Max(2, _options.BatchSize * 2));
        var producer = Task.Run(() =>
        {
            try
            {
                for (var i = 0; i < imagePaths.Count; i++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var pixels = DecodeOne(imagePaths[i], out var problem);
                    if (pixels is null)
                        failed.Add(new RejectedImage(imagePaths[i], problem!));
                    else
                        queue.Add((i, pixels), cancellationToken);
                }
            }
            finally
            {
                queue.CompleteAdding();
            }
        }, cancellationToken);

        var plane = 3 * ImageSize * ImageSize;
        var batch = new List<(int Index, float[] Pixels)>(_options.BatchSize);
        var done = 0;
        void Flush()
        {
            if (batch.Count == 0)
                return;
            var input = new DenseTensor<float>([batch.Count, 3, ImageSize, ImageSize]);
            var span = input.Buffer.Span;
            for (var b = 0; b < batch.Count; b++)
                batch[b].Pixels.AsSpan().CopyTo(span.Slice(b * plane, plane));
            using var results = _session.Run([NamedOnnxValue.CreateFromTensor(FeaturizerGraph.InputName, input)]);
            var output = results.First().AsTensor<float>();
            for (var b = 0; b < batch.Count; b++)
            {
                var vector = new float[FeatureSize];
                for (var j = 0; j < FeatureSize; j++)
                    vector[j] = output[b, j];
                features[batch[b].Index] = vector;
            }
            done += batch.Count;
            batch.Clear();
            progress?.Report(new FeaturizationProgress(done + failed.Count, imagePaths.Count, 0));
        }
        foreach (var item in queue.GetConsumingEnumerable(cancellationToken))
        {
            batch.Add(item);
            if (batch.Count == _options.BatchSize)
                Flush();
        }
        Flush();
        producer.GetAwaiter().GetResult();
        return new FeaturizationResult(features, failed.OrderBy(f => f.Path, StringComparer.Ordinal).ToList(), 0);
    }

    private float[]? DecodeOne(string path, out string? problem)
    {
        problem = ImageFileCheck.Problem(path, decode: false);
        if (problem is not null)
            return null;
        try
        {
            var view = _mlContext.Data.LoadFromEnumerable([new ImageExample { ImagePath = path }]);
            var transformed = _decoder.Transform(view);
            using var cursor = transformed.GetRowCursor(transformed.Schema.Where(c => c.Name == ImagePipeline.PixelsColumn));
            var getter = cursor.GetGetter<VBuffer<float>>(transformed.Schema[ImagePipeline.PixelsColumn]);
            var buffer = default(VBuffer<float>);
            cursor.MoveNext();
            getter(ref buffer);
            return buffer.DenseValues().ToArray();
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or IOException or FormatException)
        {
            problem = $"cannot decode image: {e.Message}";
            return null;
        }
    }

    /// <inheritdoc />
    public void Dispose() => _session.Dispose();
}
