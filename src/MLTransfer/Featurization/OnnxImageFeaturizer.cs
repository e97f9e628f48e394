using System.Collections.Concurrent;
using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Transforms.Image;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Export;

namespace MLTransfer.Featurization;

/// <summary>
/// Featurises images with one tuned ONNX Runtime session (graph optimisation ALL, no spinning) over the fused backbone
/// graph, in batches run by <see cref="FeaturizerOptions.InferenceThreads"/> threads at once, while
/// <see cref="FeaturizerOptions.DecodeThreads"/> worker threads read, hash, decode and resize the next images. The pixels
/// are bit-identical to those of ML.NET's image transforms (<see cref="ImagePreprocessor"/>), so the exported model sees
/// the same features. With the bottleneck cache on, images already featurised under the same backbone and size are served
/// from disk, and the ONNX session is not even created when every image is cached.
/// </summary>
/// <remarks>
/// Memory is bounded whatever the number of images: at most <c>2 × BatchSize + DecodeThreads</c> decoded images wait
/// for a batch and <c>InferenceThreads + 1</c> batches exist, all reused across calls; only the result (one vector per
/// image) grows. Results come
/// back in input order. Unreadable images become <see cref="RejectedImage"/> entries, never exceptions.
/// An instance can be used for one <see cref="Featurize"/> call at a time.
/// </remarks>
public sealed class OnnxImageFeaturizer : IImageFeaturizer
{
    private readonly FeaturizerOptions _options;
    private readonly Lazy<InferenceSession> _session;
    private readonly BottleneckCache? _cache;
    private readonly Lazy<string> _cacheContext;
    private readonly Lazy<string> _executionGraphPath;
    private readonly ConcurrentBag<float[]> _pixelBuffers = new();
    private readonly ConcurrentBag<Batch> _batches = new();

    /// <summary>Creates the featuriser; its ONNX Runtime session is created on first use.</summary>
    /// <param name="backbone">The backbone to run.</param>
    /// <param name="options">Engine options; null means the defaults.</param>
    public OnnxImageFeaturizer(Backbone backbone, FeaturizerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        _options = options ?? new FeaturizerOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.BatchSize, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfNegative(_options.DecodeThreads, nameof(options));
        ArgumentOutOfRangeException.ThrowIfNegative(_options.InferenceThreads, nameof(options));
        OnnxRuntimeEnvironment.EnsureConfigured();
        Backbone = backbone;
        ImageSize = _options.ImageSize ?? backbone.InputSize;
        if (_options.UseCache)
        {
            _cache = new BottleneckCache(_options.CacheDirectory, _options.CacheMaxBytes);
            IO.CacheLocation.CheckUsable(_cache.Directory);
        }
        FeatureSize = backbone.FeatureSize;
        GraphPath = FeaturizerGraph.Materialize(backbone, ImageSize, _options.EffectiveGraphDirectory);
        _executionGraphPath = new Lazy<string>(() => _options.OptimizeGraph ? InferenceGraph.Materialize(GraphPath, ImageSize) : GraphPath,
            LazyThreadSafetyMode.ExecutionAndPublication);
        _session = new Lazy<InferenceSession>(CreateSession, LazyThreadSafetyMode.ExecutionAndPublication);
        _cacheContext = new Lazy<string>(() => BottleneckCache.ContextKey(Backbone, ImageSize, _options.OptimizeGraph ? InferenceGraph.VariantName() : null));
    }

    /// <inheritdoc />
    public Backbone Backbone { get; }

    /// <inheritdoc />
    public int ImageSize { get; }

    /// <inheritdoc />
    public int FeatureSize { get; }

    /// <inheritdoc />
    public string GraphPath { get; }

    /// <summary>
    /// The graph the ONNX Runtime session runs: <see cref="GraphPath"/> rewritten by <see cref="InferenceGraph"/> when
    /// <see cref="FeaturizerOptions.OptimizeGraph"/> is on (written on first use), else <see cref="GraphPath"/> itself.
    /// </summary>
    public string ExecutionGraphPath => _executionGraphPath.Value;

    /// <summary>The context part of this engine's bottleneck cache keys (see <see cref="BottleneckCache.ContextKey"/>).</summary>
    public string CacheContext => _cacheContext.Value;

    /// <summary>The bottleneck cache in use, or null when <see cref="FeaturizerOptions.UseCache"/> is false.</summary>
    public BottleneckCache? Cache => _cache;

    private InferenceSession CreateSession()
    {
        using var options = CreateSessionOptions(_options.IntraOpThreads > 0
            ? _options.IntraOpThreads
            : Math.Max(1, Environment.ProcessorCount / _options.EffectiveInferenceThreads));
        try
        {
            return new InferenceSession(ExecutionGraphPath, options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new InvalidOperationException(
                $"ONNX Runtime cannot load the fused graph of '{Backbone.Name}' at {ImageSize} px ('{ExecutionGraphPath}'): {e.Message} " +
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
        var decodeThreads = Math.Min(_options.EffectiveDecodeThreads, count);
        var streams = Math.Clamp(_options.EffectiveInferenceThreads, 1, (count + batchSize - 1) / batchSize);
        var context = _cache is null ? null : _cacheContext.Value;
        var pixelBuffers = _pixelBuffers; // reused across calls, so repeated calls allocate no new large buffers
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var decoded = new BlockingCollection<WorkItem>(boundedCapacity: Math.Max(2, batchSize * 2));
        using var full = new BlockingCollection<Batch>(boundedCapacity: streams);
        using var free = new BlockingCollection<Batch>();
        for (var i = 0; i <= streams; i++)
            free.Add(_batches.TryTake(out var pooled) ? pooled : new Batch(batchSize, plane));
        Exception? failure = null;
        void Fail(Exception e)
        {
            Interlocked.CompareExchange(ref failure, e, null);
            linked.Cancel();
        }
        var reporter = new ProgressCounter(count, progress);

        // Decode workers: read, hash, look up the cache, decode; in any order, each item carries its index.
        var next = -1;
        var decoders = StartThreads(decodeThreads, () =>
        {
            int index;
            while ((index = Interlocked.Increment(ref next)) < count)
            {
                linked.Token.ThrowIfCancellationRequested();
                decoded.Add(Prepare(index, imagePaths[index], context, plane, pixelBuffers), linked.Token);
            }
        }, Fail);
        var decodingDone = Task.WhenAll(decoders).ContinueWith(_ => decoded.CompleteAdding(), TaskScheduler.Default);

        // Inference threads: each runs whole batches on the shared session (ONNX Runtime sessions are thread-safe).
        var inferers = StartThreads(streams, () =>
        {
            foreach (var batch in full.GetConsumingEnumerable(linked.Token))
            {
                RunBatch(batch, features, context);
                reporter.Add(batch.Count, 0);
                batch.Count = 0;
                free.Add(batch, linked.Token);
            }
        }, Fail);

        // This thread assembles batches and records cache hits and failures.
        try
        {
            var current = free.Take(linked.Token);
            foreach (var item in decoded.GetConsumingEnumerable(linked.Token))
            {
                if (item.Pixels is not null)
                {
                    current.Add(item, plane);
                    pixelBuffers.Add(item.Pixels);
                    if (current.Count == batchSize)
                    {
                        full.Add(current, linked.Token);
                        current = free.Take(linked.Token);
                    }
                }
                else if (item.Features is not null)
                {
                    features[item.Index] = item.Features;
                    reporter.Add(1, 1);
                }
                else
                {
                    failures[item.Index] = new RejectedImage(imagePaths[item.Index], item.Problem ?? "unknown error");
                    reporter.Add(1, 0);
                }
            }
            if (current.Count > 0)
                full.Add(current, linked.Token);
            full.CompleteAdding();
            Task.WaitAll(inferers, CancellationToken.None);
        }
        catch (OperationCanceledException) when (failure is not null && !cancellationToken.IsCancellationRequested)
        {
            // A background thread failed; its error is thrown below.
        }
        catch
        {
            linked.Cancel();
            throw;
        }
        finally
        {
            if (!full.IsAddingCompleted)
                full.CompleteAdding();
            WaitQuietly(inferers);
            WaitQuietly([decodingDone]);
            while (free.TryTake(out var batch))
            {
                batch.Count = 0;
                _batches.Add(batch);
            }
        }
        cancellationToken.ThrowIfCancellationRequested();
        if (failure is not null)
            throw new InvalidOperationException($"Featurisation failed: {failure.Message}", failure);
        return new FeaturizationResult(features, failures.Where(f => f is not null).Select(f => f!).ToList(), reporter.FromCache);
    }

    private static Task[] StartThreads(int count, Action body, Action<Exception> fail)
    {
        var tasks = new Task[count];
        for (var t = 0; t < count; t++)
        {
            tasks[t] = Task.Factory.StartNew(() =>
            {
                try
                {
                    body();
                }
                catch (OperationCanceledException)
                {
                    // Stopped by cancellation or by another thread's failure.
                }
                catch (Exception e)
                {
                    fail(e);
                }
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        return tasks;
    }

    private static void WaitQuietly(Task[] tasks)
    {
        try
        {
            Task.WaitAll(tasks, CancellationToken.None);
        }
        catch (AggregateException)
        {
            // Failures were recorded by the threads themselves.
        }
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

    private void RunBatch(Batch batch, float[]?[] features, string? context)
    {
        var session = _session.Value;
        var shape = new long[] { batch.Count, 3, ImageSize, ImageSize };
        var memory = new Memory<float>(batch.Input, 0, batch.Count * ImagePreprocessor.PixelCount(ImageSize));
        using var inputValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, memory, shape);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, [FeaturizerGraph.InputName], [inputValue], [FeaturizerGraph.OutputName]);
        var output = outputs[0].GetTensorDataAsSpan<float>();
        for (var b = 0; b < batch.Count; b++)
        {
            var vector = output.Slice(b * FeatureSize, FeatureSize).ToArray();
            features[batch.Indices[b]] = vector;
            if (_cache is not null && context is not null && batch.Hashes[b] is { } hash)
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
            batch.Hashes[b] = null;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_session.IsValueCreated)
            _session.Value.Dispose();
    }

    /// <summary>A batch being filled or run: the pixels of up to BatchSize images, their indices and content hashes.</summary>
    private sealed class Batch(int capacity, int plane)
    {
        public float[] Input { get; } = new float[capacity * plane];
        public int[] Indices { get; } = new int[capacity];
        public byte[]?[] Hashes { get; } = new byte[]?[capacity];
        public int Count { get; set; }

        public void Add(WorkItem item, int plane)
        {
            item.Pixels.AsSpan(0, plane).CopyTo(Input.AsSpan(Count * plane, plane));
            Indices[Count] = item.Index;
            Hashes[Count] = item.Hash;
            Count++;
        }
    }

    /// <summary>Counts finished images and reports progress from any thread, one report at a time, never going back.</summary>
    private sealed class ProgressCounter(int total, IProgress<FeaturizationProgress>? progress)
    {
        private readonly Lock _lock = new();
        private int _done;
        private int _fromCache;

        public int FromCache
        {
            get
            {
                lock (_lock)
                    return _fromCache;
            }
        }

        public void Add(int done, int fromCache)
        {
            lock (_lock)
            {
                _done += done;
                _fromCache += fromCache;
                progress?.Report(new FeaturizationProgress(_done, total, _fromCache));
            }
        }
    }

    private readonly record struct WorkItem(int Index, float[]? Pixels, float[]? Features, byte[]? Hash, string? Problem)
    {
        public static WorkItem Failure(int index, string problem) => new(index, null, null, null, problem);
    }
}
