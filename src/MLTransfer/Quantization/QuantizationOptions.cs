namespace MLTransfer.Quantization;

/// <summary>
/// Options of static int8 quantisation (<see cref="QdqQuantizer"/>, <see cref="ModelQuantizer"/>,
/// <see cref="Featurization.FeaturizerOptions.Quantization"/>): which images calibrate the activation ranges (the smallest
/// and largest value each quantised tensor takes on them, ONNX Runtime's default MinMax calibration).
/// </summary>
public sealed class QuantizationOptions
{
    /// <summary>
    /// Folder of calibration images (searched recursively, image extensions only). Null means: for
    /// <see cref="ModelQuantizer"/>, an error; for the featurisation engine, <see cref="CalibrationImages"/> or else the
    /// images of the first <c>Featurize</c> call. The default value is null.
    /// </summary>
    public string? CalibrationFolder { get; set; }

    /// <summary>Calibration image files, used when <see cref="CalibrationFolder"/> is null. The default value is null.</summary>
    public IReadOnlyList<string>? CalibrationImages { get; set; }

    /// <summary>
    /// Most calibration images to run: spread evenly over the folder's images in path order (so every class folder is
    /// represented), deterministic. The default value is 300.
    /// </summary>
    public int MaxCalibrationImages { get; set; } = 300;

    /// <summary>Images per calibration batch. The default value is 8.</summary>
    public int BatchSize { get; set; } = 8;

    /// <summary>A short text naming the settings that change the quantised graph (not the image list), for file names and cache keys.</summary>
    public string Key => $"mm{MaxCalibrationImages}";

    /// <summary>A copy of these options.</summary>
    public QuantizationOptions Clone() => (QuantizationOptions)MemberwiseClone();
}
