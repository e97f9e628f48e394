using MLTransfer.Prediction;

namespace MLTransfer.Serving;

/// <summary>
/// The service's settings, read from configuration: command line (<c>--model m.zip --dynamic-batching false</c>), environment
/// (<c>model=...</c>) or appsettings. Each key and its default is listed in README.md.
/// </summary>
public sealed class ServingOptions
{
    /// <summary>The value of <see cref="Engine"/> that serves with ML.NET's <c>PredictionEngine</c> (the benchmark's baseline).</summary>
    public const string MlNetEngine = "mlnet";

    /// <summary>
    /// What predicts (key <c>engine</c>): <c>classifier</c>, MLTransfer's <see cref="ImageClassifier"/>, or <c>mlnet</c>, the
    /// benchmark's baseline (<see cref="MlNetBaseline"/>). The default value is <c>classifier</c>.
    /// </summary>
    public string Engine { get; set; } = "classifier";

    /// <summary>The MLTransfer <c>.zip</c> to serve (key <c>model</c>); required.</summary>
    public string Model { get; set; } = "";

    /// <summary>Largest request body in bytes (key <c>max-request-mb</c>, in MiB); larger uploads get 413. The default value is 20 MiB.</summary>
    public long MaxRequestBytes { get; set; } = 20L << 20;

    /// <summary>Whether concurrent requests run as one batch (key <c>dynamic-batching</c>). The default value is true.</summary>
    public bool DynamicBatching { get; set; } = true;

    /// <summary>Most images per batch (key <c>max-batch-size</c>). The default value is 8.</summary>
    public int MaxBatchSize { get; set; } = 8;

    /// <summary>How long a batch waits for more requests after its first, in milliseconds (key <c>batch-delay-ms</c>). The default value is 2.</summary>
    public double BatchDelayMilliseconds { get; set; } = 2;

    /// <summary>Batches run at once (key <c>inference-threads</c>); 0 means the library's default. The default value is 0.</summary>
    public int InferenceThreads { get; set; }

    /// <summary>ONNX Runtime threads per batch (key <c>intra-op-threads</c>); 0 means the library's default. The default value is 0.</summary>
    public int IntraOpThreads { get; set; }

    /// <summary>Reads the settings from configuration, with a one-line error for a bad value.</summary>
    /// <param name="configuration">The app's configuration.</param>
    public static ServingOptions Read(IConfiguration configuration)
    {
        var options = new ServingOptions
        {
            Model = configuration["model"] ?? "",
            Engine = configuration["engine"] ?? "classifier",
            MaxRequestBytes = (long)(Number(configuration, "max-request-mb", 20, min: 0.001) * (1 << 20)),
            DynamicBatching = Flag(configuration, "dynamic-batching", true),
            MaxBatchSize = (int)Number(configuration, "max-batch-size", 8, min: 1),
            BatchDelayMilliseconds = Number(configuration, "batch-delay-ms", 2, min: 0),
            InferenceThreads = (int)Number(configuration, "inference-threads", 0, min: 0),
            IntraOpThreads = (int)Number(configuration, "intra-op-threads", 0, min: 0),
        };
        if (options.Engine is not "classifier" and not MlNetEngine)
            throw new ArgumentException($"--engine must be classifier or {MlNetEngine}, not '{options.Engine}'.");
        if (string.IsNullOrWhiteSpace(options.Model))
            throw new ArgumentException("No model given: start the service with --model <model.zip>.");
        return options;
    }

    /// <summary>The library options these settings mean.</summary>
    public ImageClassifierOptions ToClassifierOptions() => new()
    {
        DynamicBatching = DynamicBatching,
        MaxBatchSize = MaxBatchSize,
        BatchDelay = TimeSpan.FromMilliseconds(BatchDelayMilliseconds),
        InferenceThreads = InferenceThreads,
        IntraOpThreads = IntraOpThreads,
        MaxImageBytes = MaxRequestBytes,
    };

    private static double Number(IConfiguration configuration, string key, double fallback, double min)
    {
        var text = configuration[key];
        if (string.IsNullOrWhiteSpace(text))
            return fallback;
        if (!double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var value) || value < min)
            throw new ArgumentException($"--{key} must be a number of at least {min}, not '{text}'.");
        return value;
    }

    private static bool Flag(IConfiguration configuration, string key, bool fallback)
    {
        var text = configuration[key];
        if (string.IsNullOrWhiteSpace(text))
            return fallback;
        return bool.TryParse(text, out var value) ? value : throw new ArgumentException($"--{key} must be true or false, not '{text}'.");
    }
}
