using System.ComponentModel;
using MLTransfer.Quantization;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MLTransfer.Cli.Commands;

/// <summary>The calibration options shared by <c>mltransfer quantize</c> and <c>mltransfer bench quantize</c>.</summary>
public abstract class CalibrationSettings : CommonSettings
{
    /// <summary>Calibration method.</summary>
    [CommandOption("--calibration-method <METHOD>")]
    [Description("minmax (each tensor's smallest and largest value, ONNX Runtime's default) or percentile (clip the rarest values, see --percentile). Default: minmax.")]
    public CalibrationMethod CalibrationMethod { get; set; } = CalibrationMethod.MinMax;

    /// <summary>Percentile for the percentile method.</summary>
    [CommandOption("--percentile <P>")]
    [Description("With --calibration-method percentile: share (%) of each tensor's values inside its range. Default: 99.99.")]
    public double Percentile { get; set; } = 99.99;

    /// <summary>Convolutions kept float.</summary>
    [CommandOption("--float-convs <N>")]
    [Description("Keep the N convolutions whose int8 version changes the output most (measured one at a time on 32 calibration images) in float. Default: 0.")]
    public int FloatConvolutions { get; set; }

    /// <summary>Skip bias correction.</summary>
    [CommandOption("--no-bias-correction")]
    [Description("Do not correct each convolution's bias for the mean shift int8 causes (on by default; 64 calibration images).")]
    public bool NoBiasCorrection { get; set; }

    /// <summary>Use all 8 bits of the weights.</summary>
    [CommandOption("--full-range-weights")]
    [Description("Quantise weights to ±127 (8 bits) instead of ±63: a little closer to float on CPUs with VNNI or on ARM, wrong on x86 CPUs without VNNI, whose int8 kernels saturate. Default: 7-bit weights, the same numbers on every CPU.")]
    public bool FullRangeWeights { get; set; }

    /// <summary>The quantisation options these settings give (method, percentile, float convolutions, bias correction, weight range; the caller adds the rest).</summary>
    public QuantizationOptions ToQuantizationOptions() => new()
    {
        Method = CalibrationMethod, Percentile = Percentile, FloatConvolutions = FloatConvolutions, BiasCorrection = !NoBiasCorrection,
        WeightLevels = FullRangeWeights ? QuantizationOptions.FullRangeWeightLevels : QuantizationOptions.PortableWeightLevels,
    };

    /// <inheritdoc />
    public override ValidationResult Validate() =>
        Percentile is <= 50 or > 100 ? ValidationResult.Error("--percentile must be in (50, 100].")
        : FloatConvolutions < 0 ? ValidationResult.Error("--float-convs must be 0 or more.")
        : base.Validate();
}
