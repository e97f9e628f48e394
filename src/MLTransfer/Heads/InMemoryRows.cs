using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLTransfer.Heads;

/// <summary>
/// A small in-memory data view with an explicit schema, for rows whose columns are known only at run time. Each
/// value is a <c>float[]</c> (served as a vector column) or a <see cref="string"/> (served as text).
/// </summary>
internal sealed class InMemoryRows : IDataView
{
    private readonly IReadOnlyList<IReadOnlyList<object>> _rows;

    public InMemoryRows(DataViewSchema schema, List<(float[] Features, string Text)> rows)
        : this(schema, rows.Select(r => (IReadOnlyList<object>)[r.Features, r.Text]).ToList())
    {
    }

    public InMemoryRows(DataViewSchema schema, IReadOnlyList<IReadOnlyList<object>> rows)
    {
        Schema = schema;
        _rows = rows;
    }

    /// <summary>A data view whose columns are all text.</summary>
    public static InMemoryRows Text(IReadOnlyList<string> columns, IReadOnlyList<IReadOnlyList<string>> rows)
    {
        var builder = new DataViewSchema.Builder();
        foreach (var column in columns)
            builder.AddColumn(column, TextDataViewType.Instance);
        return new InMemoryRows(builder.ToSchema(), rows.Select(r => (IReadOnlyList<object>)r.ToArray<object>()).ToList());
    }

    public bool CanShuffle => false;

    public DataViewSchema Schema { get; }

    public long? GetRowCount() => _rows.Count;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) => new Cursor(this);

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) => [new Cursor(this)];

    private sealed class Cursor(InMemoryRows parent) : DataViewRowCursor
    {
        private int _position = -1;

        public override DataViewSchema Schema => parent.Schema;

        public override long Position => _position;

        public override long Batch => 0;

        public override bool IsColumnActive(DataViewSchema.Column column) => true;

        public override bool MoveNext() => ++_position < parent._rows.Count;

        public override ValueGetter<DataViewRowId> GetIdGetter() =>
            (ref DataViewRowId id) => id = new DataViewRowId((ulong)_position, 0);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Type is VectorDataViewType)
            {
                ValueGetter<VBuffer<float>> features = (ref VBuffer<float> value) =>
                {
                    var vector = (float[])parent._rows[_position][column.Index];
                    value = new VBuffer<float>(vector.Length, vector);
                };
                return (ValueGetter<TValue>)(Delegate)features;
            }
            ValueGetter<ReadOnlyMemory<char>> text = (ref ReadOnlyMemory<char> value) => value = ((string)parent._rows[_position][column.Index]).AsMemory();
            return (ValueGetter<TValue>)(Delegate)text;
        }
    }
}
