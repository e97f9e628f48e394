namespace MLTransfer.Quantization;

/// <summary>How the activation ranges of a quantised graph are calibrated.</summary>
public enum CalibrationMethod
{
    /// <summary>The smallest and largest value each tensor took on the calibration images (ONNX Runtime's default).</summary>
    MinMax,

    /// <summary>
    /// The range holding <see cref="QuantizationOptions.Percentile"/> % of each tensor's values (a 2,048-bin histogram over
    /// its min–max range, from a second pass over the calibration images): rare outliers are clipped so that the common
    /// values get finer steps.
    /// </summary>
    Percentile,
}

/// <summary>
/// Options of static int8 quantisation (<see cref="QdqQuantizer"/>, <see cref="ModelQuantizer"/>,
/// <see cref="Featurization.FeaturizerOptions.Quantization"/>): which images calibrate the activation ranges and how.
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

    /// <summary>How activation ranges are computed. The default value is <see cref="CalibrationMethod.MinMax"/>.</summary>
    public CalibrationMethod Method { get; set; } = CalibrationMethod.MinMax;

    /// <summary>Share of each tensor's values kept inside its range with <see cref="CalibrationMethod.Percentile"/>. The default value is 99.99.</summary>
    public double Percentile { get; set; } = 99.99;

    /// <summary>
    /// Whether to correct each convolution's bias for the mean shift quantisation causes in its output, measured on the
    /// first <see cref="BiasCorrectionImages"/> calibration images against the float graph (Nagel et al., ICCV 2019). The
    /// default value is true.
    /// </summary>
    public bool BiasCorrection { get; set; } = true;

    /// <summary>Calibration images used to measure the bias correction. The default value is 64.</summary>
    public int BiasCorrectionImages { get; set; } = 64;

    /// <summary>
    /// How many convolutions stay float (mixed precision): the ones whose int8 version changes the graph's output most,
    /// measured one convolution at a time on the first <see cref="SensitivityImages"/> calibration images (1 − cosine of the
    /// output against the float graph's). Each one kept float costs speed; 0 quantises every convolution. The default value is 0.
    /// </summary>
    public int FloatConvolutions { get; set; }

    /// <summary>Calibration images on which <see cref="FloatConvolutions"/> measures each convolution's sensitivity. The default value is 32.</summary>
    public int SensitivityImages { get; set; } = 32;

    /// <summary><see cref="WeightLevels"/> of a portable graph: 63 (7-bit weights).</summary>
    public const int PortableWeightLevels = 63;

    /// <summary><see cref="WeightLevels"/> using all 8 bits: 127 (for graphs that run only on CPUs with VNNI, or on ARM).</summary>
    public const int FullRangeWeightLevels = 127;

    /// <summary>
    /// Largest magnitude of a quantised weight: weights are <c>round(w / scale)</c> in [−L, L] with one scale per output
    /// channel. At 63 (7 bits, ONNX Runtime's <c>reduce_range</c>) a pair of uint8 × int8 products always fits in 16 bits,
    /// so the int8 kernels of x86 CPUs without VNNI (AVX2, or AVX-512 without VNNI), which add such pairs in saturating
    /// 16-bit arithmetic, compute exactly what VNNI and ARM kernels compute: the graph gives the same numbers on every
    /// CPU. 127 uses all 8 bits, a little closer to the float graph on CPUs with VNNI or on ARM, but on an AVX2 CPU some
    /// sums saturate and the features move far from the float graph's (cosine 0.74 instead of 0.99 measured on an AMD EPYC
    /// without AVX-512); use it only for a graph that runs where it was measured. The default value is 63.
    /// </summary>
    public int WeightLevels { get; set; } = PortableWeightLevels;

    /// <summary>Images per calibration batch. The default value is 8.</summary>
    public int BatchSize { get; set; } = 8;

    /// <summary>
    /// A <see cref="QuantizedGraphStore"/> folder <see cref="ModelQuantizer"/> reads and writes, so that a graph quantised the
    /// same way before (by the int8 engine, which records its graphs in its graph folder) is not calibrated again; null quantises
    /// every time and stores nothing. The default value is null.
    /// </summary>
    public string? GraphStoreDirectory { get; set; }

    /// <summary>A short text naming the settings that change the quantised graph (not the image list), for file names and cache keys.</summary>
    public string Key => (Method == CalibrationMethod.MinMax
        ? $"mm{MaxCalibrationImages}"
        : $"p{Percentile.ToString(System.Globalization.CultureInfo.InvariantCulture)}-{MaxCalibrationImages}")
        + (BiasCorrection ? $"-bc{BiasCorrectionImages}" : "")
        + (FloatConvolutions > 0 ? $"-f{FloatConvolutions}s{SensitivityImages}" : "")
        + (WeightLevels != PortableWeightLevels ? $"-w{WeightLevels}" : "");

    /// <summary>A copy of these options.</summary>
    public QuantizationOptions Clone() => (QuantizationOptions)MemberwiseClone();
}
