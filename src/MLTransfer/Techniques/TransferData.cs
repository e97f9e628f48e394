using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Data;
using MLTransfer.Export;

namespace MLTransfer.Techniques;

/// <summary>Helpers every technique shares: reading image rows from a data view and assembling the exported chain.</summary>
public static class TransferData
{
    /// <summary>Name of the label column techniques read.</summary>
    public const string LabelColumn = "Label";

    /// <summary>Reads <c>ImagePath</c> (and, when asked, <c>Label</c>) from a data view.</summary>
    /// <param name="data">Rows with an <c>ImagePath</c> text column and, for labelled data, a <c>Label</c> text column.</param>
    /// <param name="requireLabel">Whether the label column must be present and non-empty.</param>
    /// <exception cref="ArgumentException">A required column is missing or not text.</exception>
    public static IReadOnlyList<ImageExample> ReadExamples(IDataView data, bool requireLabel = true)
    {
        ArgumentNullException.ThrowIfNull(data);
        var pathColumn = RequireText(data.Schema, ImagePipeline.ImagePathColumn);
        var labelColumn = requireLabel ? RequireText(data.Schema, LabelColumn) : data.Schema.GetColumnOrNull(LabelColumn);
        var columns = labelColumn is { } l ? new[] { pathColumn, l } : [pathColumn];
        var examples = new List<ImageExample>();
        using var cursor = data.GetRowCursor(columns);
        var pathGetter = cursor.GetGetter<ReadOnlyMemory<char>>(pathColumn);
        var labelGetter = labelColumn is { } lc && lc.Type is TextDataViewType ? cursor.GetGetter<ReadOnlyMemory<char>>(lc) : null;
        ReadOnlyMemory<char> path = default, label = default;
        while (cursor.MoveNext())
        {
            pathGetter(ref path);
            labelGetter?.Invoke(ref label);
            var example = new ImageExample { ImagePath = path.ToString(), Label = labelGetter is null ? "" : label.ToString() };
            if (requireLabel && example.Label.Length == 0)
                throw new ArgumentException($"Image '{example.ImagePath}' has an empty label.");
            examples.Add(example);
        }
        if (examples.Count == 0)
            throw new ArgumentException("The data view has no rows.");
        return examples;
    }

    /// <summary>Data view of examples with <c>ImagePath</c> and <c>Label</c> text columns.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="examples">The examples.</param>
    public static IDataView ToDataView(MLContext mlContext, IEnumerable<ImageExample> examples) =>
        mlContext.Data.LoadFromEnumerable(examples);

    /// <summary>
    /// Puts the ML.NET-only image front (<see cref="ImagePipeline"/>) before a head, fitted on one real image so
    /// that the chain has a schema. The result takes only <c>ImagePath</c>.
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="imageSize">Square image size.</param>
    /// <param name="graphPath">The ONNX graph (fused backbone, possibly with more outputs).</param>
    /// <param name="head">Transformers that read the graph's outputs.</param>
    /// <param name="sampleImage">Any readable image, used to fit the front.</param>
    /// <param name="graphOutputs">Graph outputs to expose; null means <c>Features</c>.</param>
    public static TransformerChain<ITransformer> Compose(MLContext mlContext, int imageSize, string graphPath, ITransformer head,
        string sampleImage, string[]? graphOutputs = null)
    {
        var sample = ImagePipeline.SampleInput(mlContext, sampleImage);
        var front = ImagePipeline.Create(mlContext, imageSize, graphPath, graphOutputs).Fit(sample);
        return front.Append(head);
    }

    /// <summary>
    /// Like <see cref="Compose(MLContext, int, string, ITransformer, string, string[])"/> for a graph that exists only in
    /// memory (a trained network): the graph is written to a private temporary folder, the chain is built, saved to memory
    /// and loaded back, and the folder is deleted, so that nothing the library wrote stays on disk. The returned chain is
    /// ML.NET's own loaded model, which keeps a temporary copy of the graph until it is disposed.
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="imageSize">Square image size.</param>
    /// <param name="writeGraph">Writes the ONNX graph (input <c>Pixels</c>) to a stream.</param>
    /// <param name="head">Transformers that read the graph's outputs.</param>
    /// <param name="sampleImage">Any readable image, used to fit the front.</param>
    /// <param name="graphOutputs">Graph outputs to expose; null means <c>Features</c>.</param>
    /// <param name="scratchFolder">Where the private temporary folder is made; null means the system's temporary folder.</param>
    public static ITransformer ComposeInMemory(MLContext mlContext, int imageSize, Action<Stream> writeGraph, ITransformer head, string sampleImage,
        string[]? graphOutputs = null, string? scratchFolder = null)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(writeGraph);
        using var scratch = IO.ScratchFolder.Create(scratchFolder);
        var graphPath = scratch.File("graph.onnx");
        using (var file = File.Create(graphPath))
            writeGraph(file);
        using var memory = new MemoryStream();
        using (var chain = Compose(mlContext, imageSize, graphPath, head, sampleImage, graphOutputs))
            mlContext.Model.Save(chain, ImagePipeline.SampleInput(mlContext, sampleImage).Schema, memory);
        memory.Position = 0;
        return mlContext.Model.Load(memory, out _);
    }

    /// <summary>
    /// The output schema shape of a single-task image classifier (the exported-model contract): checks the input has
    /// <c>ImagePath</c> and <c>Label</c>, then adds the image front's columns, <c>Score</c> and <c>PredictedLabel</c>.
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="inputSchema">The input's schema shape.</param>
    /// <param name="backbone">The backbone; null means ResNet18.</param>
    /// <param name="imageSize">Square image size; null means the backbone's.</param>
    /// <param name="graphDirectory">Where fused graphs are kept; null means the default.</param>
    /// <param name="layers">Stages whose pooled outputs are the features (<see cref="Featurization.FeaturizerOptions.Layers"/>); null means the backbone's output.</param>
    public static SchemaShape ClassifierOutputSchema(MLContext mlContext, SchemaShape inputSchema, Backbones.Backbone? backbone, int? imageSize,
        string? graphDirectory = null, IReadOnlyList<string>? layers = null)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        if (!inputSchema.Any(c => c.Name == ImagePipeline.ImagePathColumn))
            throw new ArgumentException($"The input needs an '{ImagePipeline.ImagePathColumn}' text column.");
        if (!inputSchema.Any(c => c.Name == LabelColumn))
            throw new ArgumentException($"The input needs a '{LabelColumn}' text column.");
        backbone ??= Backbones.Backbone.ResNet18();
        var size = imageSize ?? backbone.InputSize;
        var graph = Backbones.FeaturizerGraph.Materialize(backbone, size, graphDirectory, layers);
        return ImagePipeline.Create(mlContext, size, graph)
            .Append(mlContext.Transforms.Conversion.MapValueToKey(LabelColumn))
            .Append(mlContext.MulticlassClassification.Trainers.LbfgsMaximumEntropy(LabelColumn, ImagePipeline.FeaturesColumn))
            .Append(mlContext.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
            .GetOutputSchema(inputSchema);
    }

    private static DataViewSchema.Column RequireText(DataViewSchema schema, string name)
    {
        var column = schema.GetColumnOrNull(name)
            ?? throw new ArgumentException($"The data view needs a '{name}' column; it has: {string.Join(", ", schema.Select(c => c.Name))}.");
        if (column.Type is not TextDataViewType)
            throw new ArgumentException($"Column '{name}' must be text, not {column.Type}.");
        return column;
    }
}
