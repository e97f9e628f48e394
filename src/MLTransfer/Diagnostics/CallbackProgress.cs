namespace MLTransfer.Diagnostics;

/// <summary>
/// An <see cref="IProgress{T}"/> that calls back on the reporting thread, one report at a time (unlike
/// <see cref="Progress{T}"/>, which posts to the captured context or the thread pool, so reports may arrive late or out of order).
/// </summary>
/// <typeparam name="T">The progress type.</typeparam>
/// <param name="report">Called with each report.</param>
public sealed class CallbackProgress<T>(Action<T> report) : IProgress<T>
{
    private readonly object _gate = new();

    /// <inheritdoc />
    public void Report(T value)
    {
        lock (_gate)
            report(value);
    }
}
