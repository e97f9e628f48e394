using System.Collections.Concurrent;
using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Transforms.Image;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Export;

namespace MLTransfer.Featurization;

/// <summary>
/// Featurises images with one tuned ONNX Runtime session (graph optimisation ALL, one intra-op thread per core,
/// no spinning) over the fused backbone graph, in batches, while worker threads read, hash, decode and resize the next
/// images. The pixels are bit-identical to those of ML.NET's image transforms (<see cref="ImagePreprocessor"/>), so
/// the exported model sees the same features. With the bottleneck cache on, images already featurised under the same
/// backbone and size are served from disk and the ONNX session is not even created if every image is cached.
/// </summary>
/// <remarks>
/// Memory is bounded: at most <c>2 × BatchSize + DecodeThreads</c> decoded images are alive at any time, whatever the
/// number of images. Results come back in input order. Unreadable images become <see cref="RejectedImage"/> entries.
/// An instance can be used for one <see cref="Featurize"/> call at a time.
/// </remarks>
public sealed class OnnxImageFeaturizer : IImageFeaturizer
{
    private readonly FeaturizerOptions _options;
    private readonly Lazy<InferenceSession> _session;
    private readonly BottleneckCache? _cache;
    private readonly Lazy<string> _cacheContext;

    /// <summary>Creates the featuriser; its ONNX Runtime session is created on first use.</summary>
    /// <param name="backbone">The backbone to run.</param>
    /// <param name="options">Engine options; null means the defaults.</param>
    public OnnxImageFeaturizer(Backbone backbone, FeaturizerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        _options = options ?? new FeaturizerOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.BatchSize, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfNegative(_options.DecodeThreads, nameof(options));
        Backbone = backbone;
        ImageSize = _options.ImageSize ?? backbone.InputSize;
        FeatureSize = backbone.FeatureSize;
        GraphPath = FeaturizerGraph.Materialize(backbone, ImageSize, _options.GraphDirectory);
        _session = new Lazy<InferenceSession>(CreateSession, LazyThreadSafetyMode.ExecutionAndPublication);
        if (_options.UseCache)
            _cache = new BottleneckCache(_options.CacheDirectory, _options.CacheMaxBytes);
        _cacheContext = new Lazy<string>(() => BottleneckCache.ContextKey(Backbone, ImageSize));
    }

    /// <inheritdoc />
    public Backbone Backbone { get; }

    /// <inheritdoc />
    public int ImageSize { get; }

    /// <inheritdoc />
    public int FeatureSize { get; }

    /// <inheritdoc />
    public string GraphPath { get; }

    /// <summary>The bottleneck cache in use, or null when <see cref="FeaturizerOptions.UseCache"/> is false.</summary>
    public BottleneckCache? Cache => _cache;

    private InferenceSession CreateSession()
    {
        using var options = CreateSessionOptions(_options.IntraOpThreads);
        try
        {
            return new InferenceSession(GraphPath, options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new InvalidOperationException(
                $"ONNX Runtime cannot load the fused graph of '{Backbone.Name}' at {ImageSize} px ('{GraphPath}'): {e.Message} " +
                "Convolutional backbones with stride-2 stages usually need a size that is a multiple of 32 (e.g. 96, 128, 160, 224).", e);
        }
    }

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

    /// <summary>The decode → resize → pixels part of <see cref="ImagePipeline"/>, which <see cref="ImagePreprocessor"/> reproduces.</summary>
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
        var count = imagePaths.Count;
        var features = new float[]?[count];
        var failures = new RejectedImage?[count];
        if (count == 0)
            return new FeaturizationResult(features, [], 0);

        var batchSize = _options.BatchSize;
        var plane = ImagePreprocessor.PixelCount(ImageSize);
        var threads = Math.Min(_options.EffectiveDecodeThreads, count);
        var context = _cache is null ? null : _cacheContext.Value;
        var buffers = new ConcurrentBag<float[]>();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var queue = new BlockingCollection<WorkItem>(boundedCapacity: Math.Max(2, batchSize * 2));

        var next = -1;
        Exception? workerError = null;
        var workers = new Task[threads];
        for (var t = 0; t < threads; t++)
        {
            workers[t] = Task.Factory.StartNew(() =>
            {
                try
                {
                    int index;
                    while ((index = Interlocked.Increment(ref next)) < count)
                    {
                        linked.Token.ThrowIfCancellationRequested();
                        queue.Add(Prepare(index, imagePaths[index], context, plane, buffers), linked.Token);
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    Interlocked.CompareExchange(ref workerError, e, null);
                    linked.Cancel();
                }
            }, linked.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        var producers = Task.WhenAll(workers).ContinueWith(_ => queue.CompleteAdding(), TaskScheduler.Default);

        var fromCache = 0;
        var done = 0;
        var batchInput = new float[batchSize * plane];
        var batchIndices = new int[batchSize];
        var batchHashes = new byte[]?[batchSize];
        var filled = 0;
        try
        {
            foreach (var item in queue.GetConsumingEnumerable(linked.Token))
            {
                if (item.Pixels is not null)
                {
                    item.Pixels.AsSpan(0, plane).CopyTo(batchInput.AsSpan(filled * plane, plane));
                    buffers.Add(item.Pixels);
                    batchIndices[filled] = item.Index;
                    batchHashes[filled] = item.Hash;
                    if (++filled == batchSize)
                    {
                        RunBatch(batchInput, filled, batchIndices, batchHashes, features, context);
                        done += filled;
                        filled = 0;
                    }
                    else
                        continue;
                }
                else if (item.Features is not null)
                {
                    features[item.Index] = item.Features;
                    fromCache++;
                    done++;
                }
                else
                {
                    failures[item.Index] = new RejectedImage(imagePaths[item.Index], item.Problem ?? "unknown error");
                    done++;
                }
                progress?.Report(new FeaturizationProgress(done, count, fromCache));
            }
            if (filled > 0)
            {
                RunBatch(batchInput, filled, batchIndices, batchHashes, features, context);
                done += filled;
                progress?.Report(new FeaturizationProgress(done, count, fromCache));
            }
        }
        catch (OperationCanceledException) when (workerError is not null && !cancellationToken.IsCancellationRequested)
        {
            throw new InvalidOperationException($"A decode worker failed: {workerError.Message}", workerError);
        }
        catch
        {
            linked.Cancel();
            throw;
        }
        finally
        {
            try
            {
                producers.Wait(CancellationToken.None);
            }
            catch (AggregateException) when (linked.IsCancellationRequested)
            {
                // Workers stopped because the run was cancelled or the consumer failed; that error wins.
            }
        }
        cancellationToken.ThrowIfCancellationRequested();
        if (workerError is not null)
            throw new InvalidOperationException($"A decode worker failed: {workerError.Message}", workerError);
        return new FeaturizationResult(features, failures.Where(f => f is not null).Select(f => f!).ToList(), fromCache);
    }

    private WorkItem Prepare(int index, string path, string? context, int plane, ConcurrentBag<float[]> buffers)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return WorkItem.Failure(index, e is FileNotFoundException or DirectoryNotFoundException ? "file not found" : $"cannot read file: {e.Message}");
        }
        if (bytes.Length == 0)
            return WorkItem.Failure(index, "empty file (0 bytes)");

        byte[]? hash = null;
        if (_cache is not null && context is not null)
        {
            hash = BottleneckCache.ContentHash(bytes);
            if (_cache.TryGet(context, hash, FeatureSize, out var cached))
                return new WorkItem(index, null, cached, hash, null);
        }

        if (!buffers.TryTake(out var pixels))
            pixels = new float[plane];
        string? problem;
        try
        {
            problem = ImagePreprocessor.TryLoadPixels(bytes, ImageSize, pixels, _options.MaxPixels);
        }
        catch (Exception e) when (e is not OperationCanceledException and not OutOfMemoryException)
        {
            problem = $"cannot decode image: {e.Message}";
        }
        if (problem is not null)
        {
            buffers.Add(pixels);
            return WorkItem.Failure(index, problem);
        }
        return new WorkItem(index, pixels, null, hash, null);
    }

    private void RunBatch(float[] input, int filled, int[] indices, byte[]?[] hashes, float[]?[] features, string? context)
    {
        var session = _session.Value;
        var shape = new long[] { filled, 3, ImageSize, ImageSize };
        var memory = new Memory<float>(input, 0, filled * ImagePreprocessor.PixelCount(ImageSize));
        using var inputValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, memory, shape);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, [FeaturizerGraph.InputName], [inputValue], [FeaturizerGraph.OutputName]);
        var output = outputs[0].GetTensorDataAsSpan<float>();
        for (var b = 0; b < filled; b++)
        {
            var vector = output.Slice(b * FeatureSize, FeatureSize).ToArray();
            features[indices[b]] = vector;
            if (_cache is not null && context is not null && hashes[b] is { } hash)
            {
                try
                {
                    _cache.Put(context, hash, vector);
                }
                catch (IOException)
                {
                    // A cache that cannot be written (full disk, read-only folder) only costs speed on the next run.
                }
            }
            hashes[b] = null;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_session.IsValueCreated)
            _session.Value.Dispose();
    }

    private readonly record struct WorkItem(int Index, float[]? Pixels, float[]? Features, byte[]? Hash, string? Problem)
    {
        public static WorkItem Failure(int index, string problem) => new(index, null, null, null, problem);
    }
}
