using System.Globalization;
using System.Text;

namespace MLTransfer.Tests.TestSupport;

/// <summary>
/// Builds a multi-task manifest on the fly over the bundled sign-language digits (the UTKFace data may not be copied into the repository):
/// task <c>digit</c> (the folder, classification), <c>parity</c> (even/odd, classification) and <c>value</c>
/// (the digit as a number, regression). Images are copied into a fresh temporary folder next to the manifest.
/// </summary>
public static class SampleManifest
{
    /// <summary>Writes <c>labels.csv</c> with the first <paramref name="perClass"/> images of each digit; returns its path.</summary>
    /// <param name="perClass">Images per digit.</param>
    /// <param name="digits">Digits to include; null means 0–9.</param>
    /// <param name="blank">Decides, from (row index, task name), whether that label is left blank.</param>
    public static string Write(int perClass, string[]? digits = null, Func<int, string, bool>? blank = null)
    {
        var dir = TestData.TempFolder();
        var csv = new StringBuilder("path,digit,parity,value\n");
        var row = 0;
        foreach (var example in TestData.SampleSubset(perClass, digits ?? Enumerable.Range(0, 10).Select(d => d.ToString(CultureInfo.InvariantCulture)).ToArray()))
        {
            var folder = Path.Combine(dir, "images", example.Label);
            Directory.CreateDirectory(folder);
            var name = Path.GetFileName(example.ImagePath);
            File.Copy(example.ImagePath, Path.Combine(folder, name));
            var digit = int.Parse(example.Label, CultureInfo.InvariantCulture);
            string Cell(string task, string value) => blank?.Invoke(row, task) == true ? "" : value;
            csv.Append($"images/{example.Label}/{name},{Cell("digit", example.Label)},{Cell("parity", digit % 2 == 0 ? "even" : "odd")},{Cell("value", example.Label)}\n");
            row++;
        }
        var path = Path.Combine(dir, "labels.csv");
        File.WriteAllText(path, csv.ToString());
        return path;
    }
}
