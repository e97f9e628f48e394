namespace MLTransfer.Diagnostics;

/// <summary>
/// Training stopped because its loss (or the weights) stopped being finite numbers: usually a learning rate that is too
/// high. Thrown before anything is saved, so no model with NaN weights is ever written. The message is one line that
/// says at which epoch and what to change. Every training loop uses <see cref="ThrowIfNotFinite"/> once per step or epoch.
/// </summary>
public sealed class TrainingDivergedException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">The one-line message.</param>
    public TrainingDivergedException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public TrainingDivergedException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The one-line message.</param>
    /// <param name="innerException">The cause.</param>
    public TrainingDivergedException(string message, Exception innerException) : base(message, innerException)
    {
    }

    /// <summary>Throws when <paramref name="loss"/> is NaN or infinite.</summary>
    /// <param name="loss">The loss just computed.</param>
    /// <param name="epoch">One-based epoch.</param>
    /// <param name="learningRate">The learning rate in use.</param>
    /// <param name="what">What diverged, for the message. The default value is <c>training loss</c>.</param>
    /// <exception cref="TrainingDivergedException"><paramref name="loss"/> is not finite.</exception>
    public static void ThrowIfNotFinite(double loss, int epoch, double learningRate, string what = "training loss")
    {
        if (double.IsFinite(loss))
            return;
        throw new TrainingDivergedException(
            $"Training diverged: the {what} became {(double.IsNaN(loss) ? "NaN" : "infinite")} in epoch {epoch} " +
            $"(learning rate {learningRate:G3}); nothing was saved. Try a learning rate 10 times smaller.");
    }
}
