namespace MLTransfer.Cluster.Client;

/// <summary>An <see cref="IProgress{T}"/> that calls back on the reporting thread (unlike <see cref="Progress{T}"/>, which posts).</summary>
/// <typeparam name="T">The progress type.</typeparam>
/// <param name="report">Called with each report.</param>
public sealed class CallbackProgress<T>(Action<T> report) : IProgress<T>
{
    /// <inheritdoc />
    public void Report(T value) => report(value);
}
