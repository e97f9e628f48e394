// Loads an MLTransfer model with nothing but ML.NET and prints one JSON line per image:
//   dotnet run --project samples/MLNetConsumer -- models/sample.zip image1.jpg [image2.png ...]
using System.Text.Json;
using Microsoft.ML;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: MLNetConsumer <model.zip> <image> [<image> ...]");
    return 2;
}

var mlContext = new MLContext();
var model = mlContext.Model.Load(args[0], out _);
var engine = mlContext.Model.CreatePredictionEngine<ImageInput, ImagePrediction>(model);
foreach (var path in args.Skip(1))
{
    var prediction = engine.Predict(new ImageInput { ImagePath = Path.GetFullPath(path) });
    Console.WriteLine(JsonSerializer.Serialize(new { path, label = prediction.PredictedLabel, score = prediction.Score }));
}
return 0;

/// <summary>The model's only input column.</summary>
public sealed class ImageInput
{
    public string ImagePath { get; set; } = "";
}

/// <summary>The model's outputs every MLTransfer classifier has.</summary>
public sealed class ImagePrediction
{
    public string PredictedLabel { get; set; } = "";

    public float[] Score { get; set; } = [];
}
