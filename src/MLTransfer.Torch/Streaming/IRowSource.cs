namespace MLTransfer.Torch.Streaming;

/// <summary>
/// The rows a network reads, one per item (an image's pixels, its cached lower-block output, its frozen features),
/// produced on demand so that nothing has to hold all of them in memory. Implementations are called from several
/// worker threads at once.
/// </summary>
internal interface IRowSource
{
    /// <summary>The number of items.</summary>
    int Count { get; }

    /// <summary>The shape of one row, e.g. [3, S, S] for pixels.</summary>
    long[] RowShape { get; }

    /// <summary>
    /// Writes the row of item <paramref name="index"/> into <paramref name="destination"/>: the exact row (the pixels the
    /// exported model sees) when <paramref name="random"/> is null, otherwise an augmented one drawn from it.
    /// </summary>
    /// <param name="index">The item.</param>
    /// <param name="destination">Receives the product of <see cref="RowShape"/> floats.</param>
    /// <param name="random">The item's own generator for augmentation (seeded from the run's seed, the epoch and the item's position), or null.</param>
    void Fill(int index, Span<float> destination, Random? random);
}

/// <summary>Rows already in memory (e.g. frozen backbone features).</summary>
internal sealed class MemoryRows : IRowSource
{
    private readonly IReadOnlyList<float[]> _rows;

    public MemoryRows(IReadOnlyList<float[]> rows, long[]? shape = null)
    {
        _rows = rows;
        RowShape = shape ?? [rows.Count > 0 ? rows[0].Length : 0];
    }

    public int Count => _rows.Count;

    public long[] RowShape { get; }

    public void Fill(int index, Span<float> destination, Random? random) => _rows[index].CopyTo(destination);
}
