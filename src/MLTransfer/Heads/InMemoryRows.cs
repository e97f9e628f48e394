using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLTransfer.Heads;

/// <summary>A tiny data view of (feature vector, text) rows with an explicit schema.</summary>
internal sealed class InMemoryRows : IDataView
{
    private readonly List<(float[] Features, string Text)> _rows;

    public InMemoryRows(DataViewSchema schema, List<(float[] Features, string Text)> rows)
    {
        Schema = schema;
        _rows = rows;
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
            if (column.Index == 0)
            {
                ValueGetter<VBuffer<float>> features = (ref VBuffer<float> value) =>
                    value = new VBuffer<float>(parent._rows[_position].Features.Length, parent._rows[_position].Features);
                return (ValueGetter<TValue>)(Delegate)features;
            }
            ValueGetter<ReadOnlyMemory<char>> text = (ref ReadOnlyMemory<char> value) => value = parent._rows[_position].Text.AsMemory();
            return (ValueGetter<TValue>)(Delegate)text;
        }
    }
}
