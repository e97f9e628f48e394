using System.Text;

namespace MLTransfer.Data;

/// <summary>
/// A small RFC 4180 CSV reader: comma-separated fields, fields in double quotes may hold commas, line breaks
/// and doubled quotes (<c>""</c>); CRLF or LF line ends; a leading UTF-8 byte-order mark is ignored.
/// </summary>
public static class Csv
{
    /// <summary>One parsed record and the (1-based) line it starts on.</summary>
    /// <param name="Line">Line number where the record starts.</param>
    /// <param name="Fields">The fields, unquoted.</param>
    public sealed record Record(int Line, IReadOnlyList<string> Fields);

    /// <summary>Parses CSV text into records; blank lines are skipped.</summary>
    /// <param name="text">The whole file.</param>
    /// <exception cref="InvalidDataException">A quoted field is not closed, or text follows a closing quote.</exception>
    public static IReadOnlyList<Record> Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length > 0 && text[0] == '\uFEFF')
            text = text[1..];
        var records = new List<Record>();
        var fields = new List<string>();
        var field = new StringBuilder();
        var line = 1;
        var recordLine = 1;
        var i = 0;
        var atFieldStart = true;
        var quoted = false;
        while (i < text.Length)
        {
            var c = text[i];
            if (c == '"' && atFieldStart)
            {
                var quoteLine = line;
                i++;
                while (true)
                {
                    if (i >= text.Length)
                        throw new InvalidDataException($"Line {quoteLine}: a quoted field is not closed.");
                    if (text[i] == '"')
                    {
                        if (i + 1 < text.Length && text[i + 1] == '"')
                        {
                            field.Append('"');
                            i += 2;
                            continue;
                        }
                        i++;
                        break;
                    }
                    if (text[i] == '\n')
                        line++;
                    field.Append(text[i++]);
                }
                quoted = true;
                atFieldStart = false;
                if (i < text.Length && text[i] is not (',' or '\r' or '\n'))
                    throw new InvalidDataException($"Line {line}: unexpected text after a closing quote.");
                continue;
            }
            if (c == ',')
            {
                fields.Add(field.ToString());
                field.Clear();
                atFieldStart = true;
                quoted = false;
                i++;
                continue;
            }
            if (c is '\r' or '\n')
            {
                EndRecord();
                i += c == '\r' && i + 1 < text.Length && text[i + 1] == '\n' ? 2 : 1;
                line++;
                recordLine = line;
                continue;
            }
            field.Append(c);
            atFieldStart = false;
            i++;
        }
        EndRecord();
        return records;

        void EndRecord()
        {
            if (quoted || field.Length > 0 || fields.Count > 0)
            {
                fields.Add(field.ToString());
                records.Add(new Record(recordLine, fields.ToArray()));
            }
            fields.Clear();
            field.Clear();
            atFieldStart = true;
            quoted = false;
        }
    }
}
