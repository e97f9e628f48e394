using System.Globalization;
using MLTransfer.Backbones;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MLTransfer.Cli.Commands;

/// <summary>Parse-time checks of option values, shared by every verb: each returns null when the value is fine, else one line.</summary>
public static class Check
{
    /// <summary>The first failure as a validation error, or success.</summary>
    /// <param name="problems">Results of the checks, in order.</param>
    public static ValidationResult First(params string?[] problems) =>
        problems.FirstOrDefault(p => p is not null) is { } problem ? ValidationResult.Error(problem) : ValidationResult.Success();

    /// <summary>A value among names (case-insensitive).</summary>
    /// <param name="option">The option.</param>
    /// <param name="value">Its value.</param>
    /// <param name="names">The accepted names.</param>
    public static string? OneOf(string option, string value, IReadOnlyList<string> names) =>
        names.Contains(value, StringComparer.OrdinalIgnoreCase) ? null : $"Unknown {option.TrimStart('-').Replace('-', ' ')} '{value}' ({option}): use {string.Join(", ", names)}.";

    /// <summary>An integer of at least <paramref name="minimum"/>, when given.</summary>
    /// <param name="option">The option.</param>
    /// <param name="value">Its value.</param>
    /// <param name="minimum">Smallest accepted.</param>
    /// <param name="maximum">Largest accepted.</param>
    public static string? AtLeast(string option, int? value, int minimum, int maximum = int.MaxValue) =>
        value is not { } v || (v >= minimum && v <= maximum) ? null
            : maximum == int.MaxValue ? $"{option} must be at least {minimum} (got {v})." : $"{option} must be between {minimum} and {maximum} (got {v}).";

    /// <summary>A finite number above zero, when given (NaN and infinity are refused).</summary>
    /// <param name="option">The option.</param>
    /// <param name="value">Its value.</param>
    public static string? PositiveFinite(string option, double? value) =>
        value is not { } v || (double.IsFinite(v) && v > 0) ? null : $"{option} must be a number above 0 (got {v.ToString(CultureInfo.InvariantCulture)}).";

    /// <summary>A finite number of at least zero, when given (NaN and infinity are refused).</summary>
    /// <param name="option">The option.</param>
    /// <param name="value">Its value.</param>
    public static string? NonNegativeFinite(string option, double? value) =>
        value is not { } v || (double.IsFinite(v) && v >= 0) ? null : $"{option} must be a number of at least 0 (got {v.ToString(CultureInfo.InvariantCulture)}).";

    /// <summary>A share in [0, 1), when given.</summary>
    /// <param name="option">The option.</param>
    /// <param name="value">Its value.</param>
    public static string? Fraction(string option, double? value) =>
        value is not { } v || v is >= 0 and < 1 ? null : $"{option} must be at least 0 and below 1 (got {v.ToString(CultureInfo.InvariantCulture)}).";

    /// <summary>An image size the engine supports: 16 to 2,048 pixels.</summary>
    /// <param name="value">The size, when given.</param>
    public static string? ImageSize(int? value) =>
        AtLeast("--image-size", value, FeaturizerGraph.MinImageSize, FeaturizerGraph.MaxImageSize) is null ? null
            : $"--image-size must be between {FeaturizerGraph.MinImageSize} and {FeaturizerGraph.MaxImageSize} pixels (got {value}).";

    /// <summary>A file name with the given extension.</summary>
    /// <param name="option">The option.</param>
    /// <param name="value">The path.</param>
    /// <param name="extensions">Accepted extensions, with the dot.</param>
    public static string? Extension(string option, string? value, params string[] extensions) =>
        value is null || extensions.Contains(Path.GetExtension(value), StringComparer.OrdinalIgnoreCase) ? null
            : $"{option} '{value}' must end with {string.Join(" or ", extensions)}.";

    /// <summary>A backbone name: <c>resnet18</c> or something that looks like a spec path (checked when read).</summary>
    /// <param name="value">The value.</param>
    public static string? Backbone(string value) =>
        string.Equals(value, "resnet18", StringComparison.OrdinalIgnoreCase) || value.Contains('/') || value.Contains('\\') || Path.HasExtension(value)
            ? null : $"Unknown backbone '{value}': use 'resnet18' or the path of a backbone spec (.json) file.";

    /// <summary>Task weights <c>task=weight,...</c> with finite, non-negative weights.</summary>
    /// <param name="text">The option's value.</param>
    public static string? TaskWeights(string text)
    {
        foreach (var entry in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = entry.Split('=', 2, StringSplitOptions.TrimEntries);
            if (parts.Length != 2 || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var w) || !double.IsFinite(w) || w < 0)
                return $"Bad --task-weights entry '{entry}': use task=weight with a weight of 0 or more, e.g. age=0.5.";
        }
        return null;
    }
}
