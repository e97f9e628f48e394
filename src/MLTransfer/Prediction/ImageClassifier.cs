using System.Buffers;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Microsoft.ML.Transforms.Image;
using Microsoft.ML.Transforms.Onnx;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Export;
using MLTransfer.Featurization;
using MLTransfer.Heads;
using MLTransfer.Techniques.MultiTask;

namespace MLTransfer.Prediction;

/// <summary>
/// Predicts with any MLTransfer <c>.zip</c> (single-task or multi-task, any technique) from images in memory — bytes, a
/// <see cref="Stream"/>, an ML.NET <see cref="MLImage"/> — or from files, one image or a batch at a time, from any number of
/// threads at once. Results equal the <c>.zip</c>'s own <c>PredictedLabel</c>/<c>Score</c> columns for the same image.
/// </summary>
/// <remarks>
/// <para>The <c>.zip</c>'s chain is <c>LoadImages → ResizeImages → ExtractPixels → ApplyOnnxModel → head</c>. This class replaces
/// the first three by <see cref="ImagePreprocessor"/> (bit-identical pixels, decoded from memory, no temporary file, the image's
/// header checked against <see cref="ImageClassifierOptions.MaxPixels"/> before any pixel memory is allocated), runs the
/// <c>.zip</c>'s own ONNX graph on one shared ONNX Runtime session (thread-safe, batched: <c>[N,3,S,S]</c> in one run), and
/// scores the features with the <c>.zip</c>'s own ML.NET head transformers.</para>
/// <para>An image that cannot be used gives an <see cref="InvalidImageException"/> naming the reason (a batch reports it per
/// image); a failure of ONNX Runtime gives an <see cref="InvalidOperationException"/>. Neither harms later predictions.</para>
/// <para><see cref="PredictAsync(ReadOnlyMemory{byte}, CancellationToken)"/> decodes on the caller's thread and queues the
/// pixels to <see cref="ImageClassifierOptions.InferenceThreads"/> worker threads, which run concurrent requests as dynamic
/// batches when <see cref="ImageClassifierOptions.DynamicBatching"/> is on.</para>
/// </remarks>
public sealed class ImageClassifier : IDisposable
{
    private readonly ImageClassifierOptions _options;
    private readonly InferenceSession _session;
    private readonly string _inputName;
    private readonly string[] _outputNames;
    private readonly DataViewSchema _headInput;
    private readonly ITransformer _head;
    private readonly int _maxBatch;
    private readonly int _plane;
    private readonly Lazy<DynamicBatcher<float[], ImagePrediction>> _batcher;
    private int _disposed;
    private long _images;
    private long _batches;

    private ImageClassifier(string path, ImageClassifierOptions options)
    {
        _options = options;
        var mlContext = new MLContext(seed: 0);
        var model = ModelFile.Load(mlContext, path);
        var parts = Flatten(model).ToList();
        OnnxTransformer? onnx = null;
        try
        {
            if (parts is not [ImageLoadingTransformer load, ImageResizingTransformer resize, ImagePixelExtractingTransformer extract, OnnxTransformer graph, .. var head] || head.Count == 0)
                throw new InvalidDataException(
                    $"'{path}' is not an MLTransfer image model: its chain is {string.Join(" → ", parts.Select(p => p.GetType().Name))}, not LoadImages → ResizeImages → ExtractPixels → ApplyOnnxModel → head.");
            onnx = graph;
            var frontSchema = new TransformerChain<ITransformer>(load, resize, extract).GetOutputSchema(ImagePathSchema());
            ImageSize = CheckFront(path, resize, extract, frontSchema);
            var graphSchema = graph.GetOutputSchema(frontSchema);
            var graphColumns = graphSchema.Where(c => c.Index >= frontSchema.Count && !c.IsHidden).ToList();
            var builder = new DataViewSchema.Builder();
            foreach (var column in graphColumns)
                builder.AddColumn(column.Name, column.Type);
            _headInput = builder.ToSchema();
            _outputNames = graphColumns.Select(c => c.Name).ToArray();
            _head = new TransformerChain<ITransformer>(head.ToArray());
            Info = Describe(path, model);
        }
        finally
        {
            onnx?.Dispose(); // the graph runs on this class's own session; ML.NET's copy (and its temporary file) is not needed
        }

        _plane = ImagePreprocessor.PixelCount(ImageSize);
        _session = CreateSession(path, ModelFile.ReadOnnxGraph(path), options.EffectiveIntraOpThreads);
        try
        {
            _inputName = CheckGraph(path, out var fixedBatch);
            _maxBatch = fixedBatch > 0 ? (int)Math.Min(fixedBatch, options.MaxBatchSize) : options.MaxBatchSize;
            Info = new ImageClassifierInfo(Info.Technique,
                _session.ModelMetadata.CustomMetadataMap.TryGetValue(FeaturizerGraph.BackboneMetadataKey, out var backbone) ? backbone : null,
                ImageSize, Info.Tasks, Info.IsMultiTask);
        }
        catch
        {
            _session.Dispose();
            throw;
        }
        _batcher = new Lazy<DynamicBatcher<float[], ImagePrediction>>(() => new DynamicBatcher<float[], ImagePrediction>(RunBatch, ReturnPixels,
            options.EffectiveInferenceThreads, options.DynamicBatching ? _maxBatch : 1, options.DynamicBatching ? options.BatchDelay : TimeSpan.Zero),
            LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>Loads a model.</summary>
    /// <param name="modelPath">An MLTransfer <c>.zip</c>.</param>
    /// <param name="options">Options; null means the defaults.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not an ML.NET model, or not an MLTransfer image model.</exception>
    public static ImageClassifier Load(string modelPath, ImageClassifierOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelPath);
        options = options?.Clone() ?? new ImageClassifierOptions();
        options.Validate();
        return new ImageClassifier(modelPath, options);
    }

    /// <summary>What the model is: tasks, classes, technique, backbone, image size.</summary>
    public ImageClassifierInfo Info { get; private set; }

    /// <summary>The square size images are resized to.</summary>
    public int ImageSize { get; }

    /// <summary>How many images and batches the session has run so far (their ratio is the mean batch size).</summary>
    public PredictionStatistics Statistics => new(Interlocked.Read(ref _images), Interlocked.Read(ref _batches));

    /// <summary>Predicts one encoded image (JPEG, PNG, BMP, GIF, WebP, ... as bytes; a <c>byte[]</c> converts implicitly).</summary>
    /// <param name="image">The bytes of the image file.</param>
    /// <exception cref="InvalidImageException">The bytes are not a usable image.</exception>
    public ImagePrediction Predict(ReadOnlyMemory<byte> image) => PredictOne(pixels => TryDecode(image.Span, pixels));

    /// <summary>Predicts one encoded image read from a stream (read to its end, at most <see cref="ImageClassifierOptions.MaxImageBytes"/>).</summary>
    /// <param name="image">The stream.</param>
    /// <exception cref="InvalidImageException">The stream is over the size limit or not a usable image.</exception>
    public ImagePrediction Predict(Stream image) => Predict(ReadAll(image));

    /// <summary>Predicts one decoded ML.NET image, exactly as the <c>.zip</c>'s <c>ResizeImages</c> and <c>ExtractPixels</c> would see it.</summary>
    /// <param name="image">The image.</param>
    /// <exception cref="InvalidImageException">The image's pixel layout is not supported.</exception>
    public ImagePrediction Predict(MLImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        return PredictOne(pixels => ImagePreprocessor.TryLoadPixels(image, ImageSize, pixels));
    }

    /// <summary>Predicts one image file.</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="InvalidImageException">The file is missing, unreadable or not a usable image.</exception>
    public ImagePrediction PredictFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return PredictOne(pixels => ImagePreprocessor.TryLoadPixels(path, ImageSize, pixels, _options.MaxPixels));
    }

    /// <summary>
    /// Predicts a batch of encoded images: decoded in parallel, run <see cref="ImageClassifierOptions.MaxBatchSize"/> at a time on
    /// the inference threads, a bounded number in memory at once whatever the batch's length.
    /// </summary>
    /// <param name="images">The images' bytes.</param>
    /// <returns>One outcome per image, in order: its prediction, or the reason it was rejected.</returns>
    public IReadOnlyList<PredictionOutcome> Predict(IReadOnlyList<ReadOnlyMemory<byte>> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        return PredictMany(images.Count, (i, pixels) => TryDecode(images[i].Span, pixels));
    }

    /// <summary>Predicts a batch of image files; see <see cref="Predict(IReadOnlyList{ReadOnlyMemory{byte}})"/>.</summary>
    /// <param name="paths">The files.</param>
    /// <returns>One outcome per file, in order.</returns>
    public IReadOnlyList<PredictionOutcome> PredictFiles(IReadOnlyList<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        return PredictMany(paths.Count, (i, pixels) => ImagePreprocessor.TryLoadPixels(paths[i], ImageSize, pixels, _options.MaxPixels));
    }

    /// <summary>
    /// Predicts one encoded image without blocking a thread on inference: the image is decoded on the calling thread, then run by
    /// the inference threads — with other concurrent calls as one batch when <see cref="ImageClassifierOptions.DynamicBatching"/>
    /// is on.
    /// </summary>
    /// <param name="image">The bytes of the image file.</param>
    /// <param name="cancellationToken">Cancels the wait (an image already running still runs).</param>
    /// <returns>The prediction; the task faults with <see cref="InvalidImageException"/> when the bytes are not a usable image.</returns>
    public Task<ImagePrediction> PredictAsync(ReadOnlyMemory<byte> image, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (cancellationToken.IsCancellationRequested)
            return Task.FromCanceled<ImagePrediction>(cancellationToken);
        var pixels = RentPixels();
        try
        {
            Decode(image.Span, pixels);
        }
        catch (InvalidImageException e)
        {
            ReturnPixels(pixels);
            return Task.FromException<ImagePrediction>(e);
        }
        return _batcher.Value.Enqueue(pixels, cancellationToken);
    }

    /// <summary>Stops the inference threads (queued images fail with <see cref="ObjectDisposedException"/>) and frees the session.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        if (_batcher.IsValueCreated)
            _batcher.Value.Dispose();
        _session.Dispose();
    }

    private static IEnumerable<ITransformer> Flatten(ITransformer transformer) =>
        transformer is IEnumerable<ITransformer> chain ? chain.SelectMany(Flatten) : [transformer];

    private static DataViewSchema ImagePathSchema()
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumn(ImagePipeline.ImagePathColumn, TextDataViewType.Instance);
        return builder.ToSchema();
    }

    // The front must do what ImagePreprocessor reproduces (square IsoCrop/Center resize, planar RGB floats, scale 1, offset 0):
    // checked by running the .zip's own resize and pixel transforms on a small non-square gradient, where any other setting differs.
    private static int CheckFront(string path, ImageResizingTransformer resize, ImagePixelExtractingTransformer extract, DataViewSchema frontSchema)
    {
        if (frontSchema.GetColumnOrNull(ImagePipeline.PixelsColumn)?.Type is not VectorDataViewType { Dimensions: [3, var size, var width] } || size != width)
            throw new InvalidDataException($"'{path}': its image transforms do not produce square planar RGB pixels in a '{ImagePipeline.PixelsColumn}' column.");
        var pattern = new byte[ProbeImage.Width * ProbeImage.Height * 4];
        for (var y = 0; y < ProbeImage.Height; y++)
            for (var x = 0; x < ProbeImage.Width; x++)
            {
                var p = (y * ProbeImage.Width + x) * 4;
                (pattern[p], pattern[p + 1], pattern[p + 2], pattern[p + 3]) = ((byte)(x * 6), (byte)(y * 10), (byte)(200 - 3 * (x + y)), 255);
            }
        using var image = MLImage.CreateFromPixels(ProbeImage.Width, ProbeImage.Height, MLPixelFormat.Bgra32, pattern);
        var ml = new MLContext(seed: 0);
        var probe = ml.Data.LoadFromEnumerable([new ProbeImage { Image = image }]);
        var expected = new TransformerChain<ITransformer>(resize, extract).Transform(probe)
            .GetColumn<VBuffer<float>>(ImagePipeline.PixelsColumn).Single().DenseValues().ToArray();
        var actual = new float[ImagePreprocessor.PixelCount(size)];
        if (ImagePreprocessor.TryLoadPixels(image, size, actual) is not null || !expected.AsSpan().SequenceEqual(actual))
            throw new InvalidDataException(
                $"'{path}': its image transforms are not those of an MLTransfer model (ResizeImages IsoCrop/Center, ExtractPixels planar RGB, scale 1, offset 0).");
        return size;
    }

    private sealed class ProbeImage
    {
        public const int Width = 40;
        public const int Height = 24;

        [ImageType(Height, Width)]
        public MLImage? Image { get; set; }
    }

    private static ImageClassifierInfo Describe(string path, ITransformer model)
    {
        var multiTask = MultiTaskEvaluator.Tasks(model);
        if (multiTask.Count > 0)
        {
            var tasks = multiTask.Select(t => new ModelTask(t.Key, t.Value,
                t.Value == TaskKind.Classification ? ModelEvaluator.Classes(model, MultiTaskColumns.Score(t.Key)) : [])).ToList();
            return new ImageClassifierInfo(ModelFile.ReadTechnique(path), null, 0, tasks, isMultiTask: true);
        }
        return new ImageClassifierInfo(ModelFile.ReadTechnique(path), null, 0, [new ModelTask("", TaskKind.Classification, ModelEvaluator.Classes(model))],
            isMultiTask: false);
    }

    private static InferenceSession CreateSession(string path, byte[] graph, int intraOpThreads)
    {
        using var options = OnnxImageFeaturizer.CreateSessionOptions(intraOpThreads);
        try
        {
            return new InferenceSession(graph, options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new InvalidDataException($"'{path}': ONNX Runtime cannot load the model's graph: {e.Message}", e);
        }
    }

    private string CheckGraph(string path, out long fixedBatch)
    {
        if (!_session.InputMetadata.TryGetValue(ImagePipeline.PixelsColumn, out var input) || input.ElementDataType != TensorElementType.Float
            || input.Dimensions is not [var batch, 3, var height, var width] || height != ImageSize || width != ImageSize)
            throw new InvalidDataException($"'{path}': the model's graph has no float input '{ImagePipeline.PixelsColumn}' [N,3,{ImageSize},{ImageSize}].");
        foreach (var name in _outputNames)
            if (!_session.OutputMetadata.TryGetValue(name, out var output) || output.ElementDataType != TensorElementType.Float)
                throw new InvalidDataException($"'{path}': the model's graph has no float output '{name}'.");
        fixedBatch = batch;
        return ImagePipeline.PixelsColumn;
    }

    private float[] RentPixels() => ArrayPool<float>.Shared.Rent(_plane);

    private static void ReturnPixels(float[] pixels) => ArrayPool<float>.Shared.Return(pixels);

    private string? TryDecode(ReadOnlySpan<byte> encoded, float[] pixels)
    {
        try
        {
            return ImagePreprocessor.TryLoadPixels(encoded, ImageSize, pixels, _options.MaxPixels);
        }
        catch (Exception e) when (e is not OutOfMemoryException and not ArgumentException)
        {
            return $"cannot decode image: {e.Message}";
        }
    }

    // Loads one image's pixels on the calling thread (load returns null or the reason it cannot) and runs it alone.
    private ImagePrediction PredictOne(Func<float[], string?> load)
    {
        var pixels = RentPixels();
        try
        {
            if (load(pixels) is { } problem)
                throw new InvalidImageException(problem);
            return RunBatch([pixels])[0];
        }
        finally
        {
            ReturnPixels(pixels);
        }
    }

    private void Decode(ReadOnlySpan<byte> encoded, float[] pixels)
    {
        if (TryDecode(encoded, pixels) is { } problem)
            throw new InvalidImageException(problem);
    }

    private ReadOnlyMemory<byte> ReadAll(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var limit = _options.MaxImageBytes;
        if (stream.CanSeek && stream.Length - stream.Position > limit)
            throw new InvalidImageException($"image is {stream.Length - stream.Position:N0} bytes, over the limit of {limit:N0}");
        using var copy = new MemoryStream();
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            int read;
            while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
            {
                if (copy.Length + read > limit)
                    throw new InvalidImageException($"image is over the limit of {limit:N0} bytes");
                copy.Write(buffer, 0, read);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return copy.GetBuffer().AsMemory(0, (int)copy.Length);
    }

    private PredictionOutcome[] PredictMany(int count, Func<int, float[], string?> load)
    {
        var results = new PredictionOutcome[count];
        var window = _maxBatch * _options.EffectiveInferenceThreads;
        var buffers = new float[Math.Min(window, count)][];
        try
        {
            for (var start = 0; start < count; start += window)
            {
                var n = Math.Min(window, count - start);
                var errors = new string?[n];
                Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
                {
                    buffers[i] ??= RentPixels();
                    errors[i] = load(start + i, buffers[i]);
                });
                var chunks = Enumerable.Range(0, n).Where(i => errors[i] is null).Chunk(_maxBatch).ToArray();
                Parallel.For(0, chunks.Length, new ParallelOptions { MaxDegreeOfParallelism = _options.EffectiveInferenceThreads }, c =>
                {
                    var predictions = RunBatch(chunks[c].Select(i => buffers[i]).ToList());
                    for (var j = 0; j < chunks[c].Length; j++)
                        results[start + chunks[c][j]] = new PredictionOutcome(predictions[j], null);
                });
                for (var i = 0; i < n; i++)
                    if (errors[i] is { } error)
                        results[start + i] = new PredictionOutcome(null, error);
            }
        }
        finally
        {
            foreach (var buffer in buffers)
                if (buffer is not null)
                    ReturnPixels(buffer);
        }
        return results;
    }

    // One ONNX Runtime run over the batch, then the .zip's head on the graph's outputs.
    private ImagePrediction[] RunBatch(IReadOnlyList<float[]> pixels)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var n = pixels.Count;
        var input = n == 1 ? pixels[0] : ArrayPool<float>.Shared.Rent(n * _plane);
        var rows = new IReadOnlyList<object>[n];
        try
        {
            if (n > 1)
                for (var b = 0; b < n; b++)
                    pixels[b].AsSpan(0, _plane).CopyTo(input.AsSpan(b * _plane, _plane));
            using var tensor = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, new Memory<float>(input, 0, n * _plane),
                [n, 3, ImageSize, ImageSize]);
            using var runOptions = new RunOptions();
            IDisposableReadOnlyCollection<OrtValue> outputs;
            try
            {
                outputs = _session.Run(runOptions, [_inputName], [tensor], _outputNames);
            }
            catch (OnnxRuntimeException e)
            {
                throw new InvalidOperationException($"ONNX Runtime failed to run the model's graph: {e.Message}", e);
            }
            Interlocked.Add(ref _images, n);
            Interlocked.Increment(ref _batches);
            using (outputs)
            {
                var values = new object[n][];
                for (var b = 0; b < n; b++)
                    values[b] = new object[_outputNames.Length];
                for (var o = 0; o < _outputNames.Length; o++)
                {
                    var data = outputs[o].GetTensorDataAsSpan<float>();
                    var per = data.Length / n;
                    for (var b = 0; b < n; b++)
                        values[b][o] = data.Slice(b * per, per).ToArray();
                }
                for (var b = 0; b < n; b++)
                    rows[b] = values[b];
            }
        }
        finally
        {
            if (n > 1)
                ArrayPool<float>.Shared.Return(input);
        }
        return Score(rows);
    }

    private ImagePrediction[] Score(IReadOnlyList<IReadOnlyList<object>> rows)
    {
        var scored = _head.Transform(new InMemoryRows(_headInput, rows));
        var tasks = Info.Tasks;
        var scoreColumns = tasks.Select(t => scored.Schema[Info.IsMultiTask ? MultiTaskColumns.Score(t.Name) : "Score"]).ToArray();
        var labelColumns = tasks.Select(t => t.Kind == TaskKind.Classification
            ? scored.Schema[Info.IsMultiTask ? MultiTaskColumns.PredictedLabel(t.Name) : "PredictedLabel"] : (DataViewSchema.Column?)null).ToArray();
        var predictions = new ImagePrediction[rows.Count];
        using var cursor = scored.GetRowCursor(scoreColumns.Concat(labelColumns.OfType<DataViewSchema.Column>()));
        var vectorGetters = tasks.Select((t, i) => t.Kind == TaskKind.Classification ? cursor.GetGetter<VBuffer<float>>(scoreColumns[i]) : null).ToArray();
        var valueGetters = tasks.Select((t, i) => t.Kind == TaskKind.Regression ? cursor.GetGetter<float>(scoreColumns[i]) : null).ToArray();
        var labelGetters = labelColumns.Select(c => c is { } column ? cursor.GetGetter<ReadOnlyMemory<char>>(column) : null).ToArray();
        var vector = default(VBuffer<float>);
        var label = default(ReadOnlyMemory<char>);
        for (var r = 0; cursor.MoveNext(); r++)
        {
            var perTask = new TaskPrediction[tasks.Count];
            for (var t = 0; t < tasks.Count; t++)
            {
                if (tasks[t].Kind == TaskKind.Regression)
                {
                    var value = 0f;
                    valueGetters[t]!(ref value);
                    perTask[t] = new TaskPrediction(tasks[t].Name, TaskKind.Regression, null, [], [], value);
                    continue;
                }
                vectorGetters[t]!(ref vector);
                labelGetters[t]!(ref label);
                perTask[t] = new TaskPrediction(tasks[t].Name, TaskKind.Classification, label.ToString(), tasks[t].Classes, vector.DenseValues().ToArray(), float.NaN);
            }
            predictions[r] = new ImagePrediction(perTask);
        }
        return predictions;
    }
}
