using System.Text.Json;
using System.Text.Json.Serialization;

namespace MLTransfer.Backbones;

/// <summary>Order of the colour channels a backbone expects in its input tensor.</summary>
public enum ChannelOrder
{
    /// <summary>Red, green, blue planes.</summary>
    Rgb,
    /// <summary>Blue, green, red planes (Caffe and CNTK models).</summary>
    Bgr,
}

/// <summary>How pixel values are normalised before they reach the backbone's first layer.</summary>
public enum NormalizationKind
{
    /// <summary>Pixels are only multiplied by <see cref="Backbone.PixelScale"/>.</summary>
    None,
    /// <summary>A per-channel mean is subtracted and the result divided by a per-channel standard deviation.</summary>
    MeanStd,
    /// <summary>A whole mean image (one value per channel and pixel, from an ONNX file) is subtracted.</summary>
    MeanImage,
}

/// <summary>
/// Describes a pretrained convolutional backbone stored as an ONNX file: which nodes to feed and read,
/// the input size and how raw pixels are turned into the tensor the network was trained on.
/// </summary>
/// <remarks>
/// MLTransfer always feeds the backbone planar RGB pixels in 0–255 (what ML.NET's <c>ExtractPixels</c>
/// produces by default); <see cref="FeaturizerGraph"/> folds the channel order, scale and normalisation
/// described here into the graph, so the exported model needs nothing but ML.NET's own transforms.
/// A backbone can be described in a JSON spec file; see <see cref="FromSpecFile"/>.
/// </remarks>
public sealed record Backbone
{
    /// <summary>Short name, used in cache keys and reports (e.g. <c>resnet18</c>).</summary>
    public required string Name { get; init; }

    /// <summary>Path of the ONNX file holding the network.</summary>
    public required string ModelPath { get; init; }

    /// <summary>Name of the graph input that takes the image tensor [N,3,H,W].</summary>
    public required string InputName { get; init; }

    /// <summary>Name of the graph output that yields the pooled features [N,D] or [N,D,1,1].</summary>
    public required string OutputName { get; init; }

    /// <summary>Input width and height in pixels the network was trained at. The default value is 224.</summary>
    public int InputSize { get; init; } = 224;

    /// <summary>Channel order the network expects. The default value is <see cref="ChannelOrder.Rgb"/>.</summary>
    public ChannelOrder ChannelOrder { get; init; } = ChannelOrder.Rgb;

    /// <summary>Factor applied to 0–255 pixels before normalisation (1/255 for networks trained on 0–1). The default value is 1.</summary>
    public float PixelScale { get; init; } = 1f;

    /// <summary>Kind of normalisation. The default value is <see cref="NormalizationKind.None"/>.</summary>
    public NormalizationKind Normalization { get; init; } = NormalizationKind.None;

    /// <summary>Per-channel mean in the network's channel order, after <see cref="PixelScale"/>; used with <see cref="NormalizationKind.MeanStd"/>.</summary>
    public float[]? Mean { get; init; }

    /// <summary>Per-channel standard deviation in the network's channel order; used with <see cref="NormalizationKind.MeanStd"/>.</summary>
    public float[]? Std { get; init; }

    /// <summary>ONNX file whose initializer <see cref="MeanImageInitializer"/> holds the mean image [1,3,H,W]; used with <see cref="NormalizationKind.MeanImage"/>.</summary>
    public string? MeanImagePath { get; init; }

    /// <summary>Name of the initializer holding the mean image inside <see cref="MeanImagePath"/>. The default value is <c>MeanImage</c>.</summary>
    public string MeanImageInitializer { get; init; } = "MeanImage";

    /// <summary>
    /// Image sizes other than <see cref="InputSize"/> must be a multiple of this (the network's total stride; a size
    /// that is not makes the strided layers disagree on shapes). The default value is 32.
    /// </summary>
    public int SizeMultiple { get; init; } = 32;

    /// <summary>Length of the feature vector the backbone outputs. The default value is 512.</summary>
    public int FeatureSize { get; init; } = 512;

    /// <summary>
    /// The ResNet18 backbone shipped offline by the <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c> package
    /// (He et al. 2016, "Deep Residual Learning for Image Recognition"; CNTK export, BGR input minus a mean image).
    /// </summary>
    /// <exception cref="FileNotFoundException">The package's ONNX files cannot be found.</exception>
    public static Backbone ResNet18()
    {
        var model = BackboneFiles.Locate(Path.Combine("ResNet18Onnx", "ResNet18.onnx"));
        var prep = BackboneFiles.Locate(Path.Combine("ResNetPrepOnnx", "ResNetPreprocess.onnx"));
        return new Backbone
        {
            Name = "resnet18",
            ModelPath = model,
            InputName = "Input247",
            OutputName = "Pooling395_Output_0",
            InputSize = 224,
            ChannelOrder = ChannelOrder.Bgr,
            Normalization = NormalizationKind.MeanImage,
            MeanImagePath = prep,
            MeanImageInitializer = "MeanImage",
            FeatureSize = 512,
        };
    }

    /// <summary>
    /// Resolves a backbone by name (<c>resnet18</c>) or by the path of a JSON spec file.
    /// </summary>
    /// <param name="nameOrSpecPath">A built-in name or a path to a <c>.json</c> spec.</param>
    public static Backbone Resolve(string nameOrSpecPath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(nameOrSpecPath);
        if (string.Equals(nameOrSpecPath, "resnet18", StringComparison.OrdinalIgnoreCase))
            return ResNet18();
        if (Path.GetExtension(nameOrSpecPath).Equals(".onnx", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException(
                $"'{nameOrSpecPath}' is an ONNX file; the backbone option takes 'resnet18' or a backbone spec (.json) whose modelPath names the ONNX file, " +
                "with its input and output nodes and preprocessing (see \"Bring your own ONNX backbone\" in the README).", nameof(nameOrSpecPath));
        if (Directory.Exists(nameOrSpecPath))
            throw new ArgumentException($"Backbone spec '{nameOrSpecPath}' is a folder; give the spec's .json file.", nameof(nameOrSpecPath));
        if (File.Exists(nameOrSpecPath))
            return FromSpecFile(nameOrSpecPath);
        if (nameOrSpecPath.Contains('/') || nameOrSpecPath.Contains('\\') || Path.HasExtension(nameOrSpecPath))
            throw new FileNotFoundException($"Backbone spec file '{nameOrSpecPath}' does not exist.", nameOrSpecPath);
        throw new ArgumentException(
            $"Unknown backbone '{nameOrSpecPath}': use 'resnet18' or the path of a backbone spec (.json) file.",
            nameof(nameOrSpecPath));
    }

    /// <summary>
    /// Reads a backbone description from a JSON file. Paths in it are relative to the file's folder, or start with
    /// <c>package:</c> to name a file inside the pretrained-model package.
    /// Property names follow this type (camelCase accepted), enums as strings, e.g.
    /// <c>{"name":"mynet","modelPath":"mynet.onnx","inputName":"input","outputName":"pool","inputSize":224,
    /// "pixelScale":0.00392157,"normalization":"MeanStd","mean":[0.485,0.456,0.406],"std":[0.229,0.224,0.225],"featureSize":1280}</c>.
    /// </summary>
    /// <param name="specPath">Path of the spec file.</param>
    /// <exception cref="InvalidDataException">The file is not a valid backbone spec.</exception>
    public static Backbone FromSpecFile(string specPath)
    {
        Backbone? spec;
        var text = File.ReadAllText(specPath);
        if (!text.TrimStart('\uFEFF', ' ', '\t', '\r', '\n').StartsWith('{'))
            throw new InvalidDataException($"Backbone spec '{specPath}' is not a JSON spec (it does not start with '{{'): give the .json that describes the backbone.");
        try
        {
            spec = JsonSerializer.Deserialize<Backbone>(text, SpecJson);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Backbone spec '{specPath}' is not valid: {e.Message}", e);
        }
        if (spec is null)
            throw new InvalidDataException($"Backbone spec '{specPath}' is empty.");
        var folder = Path.GetDirectoryName(Path.GetFullPath(specPath))!;
        spec = spec with
        {
            ModelPath = ResolvePath(folder, spec.ModelPath),
            MeanImagePath = spec.MeanImagePath is null ? null : ResolvePath(folder, spec.MeanImagePath),
        };
        spec.CheckConsistency(specPath);
        return spec;
    }

    private static string ResolvePath(string folder, string path) =>
        path.StartsWith(PackagePrefix, StringComparison.Ordinal)
            ? BackboneFiles.Locate(path[PackagePrefix.Length..].Replace('/', Path.DirectorySeparatorChar))
            : Path.GetFullPath(Path.Combine(folder, path));

    /// <summary>Prefix of spec paths that point inside the pretrained-model NuGet package (no download).</summary>
    public const string PackagePrefix = "package:";

    /// <summary>Writes this description as a JSON spec file.</summary>
    /// <param name="specPath">Destination path.</param>
    public void SaveSpecFile(string specPath) =>
        AtomicFile.WriteAllText(specPath, JsonSerializer.Serialize(this, SpecJson));

    internal void CheckConsistency(string origin)
    {
        if (InputSize < 16)
            throw new InvalidDataException($"Backbone '{Name}' ({origin}): inputSize must be at least 16, got {InputSize}.");
        if (FeatureSize < 1)
            throw new InvalidDataException($"Backbone '{Name}' ({origin}): featureSize must be positive.");
        if (Normalization == NormalizationKind.MeanStd && (Mean is not { Length: 3 } || Std is not { Length: 3 } || Std.Any(s => s <= 0)))
            throw new InvalidDataException($"Backbone '{Name}' ({origin}): MeanStd normalisation needs 'mean' and 'std' with 3 positive values each.");
        if (Normalization == NormalizationKind.MeanImage && string.IsNullOrEmpty(MeanImagePath))
            throw new InvalidDataException($"Backbone '{Name}' ({origin}): MeanImage normalisation needs 'meanImagePath'.");
    }

    /// <summary>A short identity string for cache keys: name, model file size and content hash prefix, preprocessing.</summary>
    public string Identity => BackboneFiles.Identity(this);

    private static readonly JsonSerializerOptions SpecJson = new()
    {
        PropertyNameCaseInsensitive = true,
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter() },
    };
}
