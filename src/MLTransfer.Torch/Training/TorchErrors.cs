using System.Runtime.InteropServices;

namespace MLTransfer.Torch.Training;

/// <summary>A training run stopped because its loss stopped being a finite number; nothing was saved from it.</summary>
public sealed class TrainingDivergedException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">The one-line message.</param>
    public TrainingDivergedException(string message)
        : base(message)
    {
    }
}

/// <summary>libtorch failed; the message is one line, the native one (with its C++ stack) is the inner exception.</summary>
public sealed class TorchFailureException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">The one-line message.</param>
    /// <param name="inner">The native error as TorchSharp reported it.</param>
    public TorchFailureException(string message, Exception inner)
        : base(message, inner)
    {
    }
}

/// <summary>Turns libtorch's multi-kilobyte error reports into one-line messages.</summary>
internal static class TorchErrors
{
    /// <summary>Runs <paramref name="work"/>, translating a libtorch error into a <see cref="TorchFailureException"/> that says what was being done.</summary>
    public static T Translate<T>(string doing, Func<T> work)
    {
        try
        {
            return work();
        }
        catch (ExternalException e)
        {
            throw new TorchFailureException($"libtorch failed while {doing}: {FirstLine(e.Message)}", e);
        }
    }

    /// <summary>The first meaningful line of a libtorch message (without "Exception raised from …" and the C++ frames).</summary>
    public static string FirstLine(string message)
    {
        var lines = message.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var first = lines.FirstOrDefault(l => !l.StartsWith("Exception raised from", StringComparison.Ordinal) && !l.StartsWith("frame #", StringComparison.Ordinal));
        return first ?? "unknown error";
    }
}
