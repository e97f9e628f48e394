using Microsoft.AspNetCore.Server.Kestrel.Core;
using MLTransfer.Data;
using MLTransfer.Prediction;

namespace MLTransfer.Serving;

/// <summary>
/// The service: <c>POST /predict</c> (multipart field <c>image</c> or a raw image body; <c>?top=K</c>), <c>GET /health</c>,
/// <c>GET /model</c>. One <see cref="ImageClassifier"/> serves every request; concurrent requests run as dynamic batches
/// unless <c>--dynamic-batching false</c>.
/// </summary>
public static class ServingApp
{
    /// <summary>Builds the app from command-line arguments (<c>--model</c>, <c>--urls</c>, and the keys of <see cref="ServingOptions"/>).</summary>
    /// <param name="args">The arguments.</param>
    public static WebApplication Create(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.Services.AddSingleton(services => ServingOptions.Read(services.GetRequiredService<IConfiguration>()));
        builder.Services.AddSingleton(services =>
        {
            var options = services.GetRequiredService<ServingOptions>();
            return ImageClassifier.Load(options.Model, options.ToClassifierOptions());
        });
        builder.Services.AddOptions<KestrelServerOptions>().Configure<ServingOptions>((kestrel, options) => kestrel.Limits.MaxRequestBodySize = options.MaxRequestBytes);
        builder.Services.AddProblemDetails();

        builder.Services.AddSingleton(services => new MlNetBaseline(services.GetRequiredService<ServingOptions>().Model));

        var app = builder.Build();
        app.UseExceptionHandler();
        // Load the model now, so that a bad --model stops the service at once with its one-line reason.
        var options = app.Services.GetRequiredService<ServingOptions>();
        if (options.Engine == ServingOptions.MlNetEngine)
        {
            app.Services.GetRequiredService<MlNetBaseline>();
            MapBaseline(app);
            return app;
        }
        var info = app.Services.GetRequiredService<ImageClassifier>().Info;
        app.Logger.LogInformation("Serving {Model} (technique {Technique}, backbone {Backbone}, {Size} px): {Tasks}", options.Model, info.Technique ?? "unknown",
            info.Backbone ?? "unknown", info.ImageSize, string.Join("; ", info.Tasks.Select(t => t.Kind == TaskKind.Regression
                ? $"{t.Name} (regression)" : $"{(t.Name.Length > 0 ? t.Name + ": " : "")}{string.Join(", ", t.Classes)}")));
        app.MapPost("/predict", PredictAsync);
        app.MapGet("/health", (ImageClassifier classifier) =>
        {
            var statistics = classifier.Statistics;
            return Results.Ok(new { status = "ok", images = statistics.Images, batches = statistics.Batches, meanBatchSize = statistics.MeanBatchSize });
        });
        app.MapGet("/model", (ImageClassifier classifier, ServingOptions options) => Results.Ok(Describe(classifier.Info, options)));
        return app;
    }

    private static async Task<IResult> PredictAsync(HttpRequest request, ImageClassifier classifier, ServingOptions options, CancellationToken cancellationToken)
    {
        int? top = null;
        if (request.Query.TryGetValue("top", out var topText))
        {
            if (!int.TryParse(topText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var k) || k < 1)
                return ImageUpload.BadRequest("Bad top", $"top must be a whole number of at least 1, not '{topText}'.");
            top = k;
        }
        var (image, error) = await ImageUpload.ReadAsync(request, options.MaxRequestBytes, cancellationToken);
        if (error is not null)
            return error;
        using (image)
        {
            try
            {
                var prediction = await classifier.PredictAsync(image!.Memory, cancellationToken);
                return Results.Ok(Render(prediction, classifier.Info.IsMultiTask, top));
            }
            catch (InvalidImageException e)
            {
                return ImageUpload.BadRequest("Not a usable image", e.Reason);
            }
            catch (ObjectDisposedException)
            {
                return Results.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Shutting down", detail: "The service is stopping.");
            }
        }
    }

    // --engine mlnet: the benchmark's ML.NET-only baseline behind the same /predict (multipart or raw body, same JSON).
    private static void MapBaseline(WebApplication app)
    {
        app.MapPost("/predict", async (HttpRequest request, MlNetBaseline baseline, ServingOptions options, CancellationToken cancellationToken) =>
        {
            var (image, error) = await ImageUpload.ReadAsync(request, options.MaxRequestBytes, cancellationToken);
            if (error is not null)
                return error;
            using (image)
            {
                string label;
                float[] scores;
                try
                {
                    (label, scores) = baseline.Predict(image!.Memory);
                }
                catch (Exception e) when (e is InvalidOperationException or ArgumentException)
                {
                    return ImageUpload.BadRequest("Not a usable image", e.Message); // ML.NET's own error for an unreadable image
                }
                var ranked = baseline.Classes.Select((c, i) => KeyValuePair.Create(c, scores[i])).OrderByDescending(p => p.Value);
                return Results.Ok(new { label, scores = new OrderedDictionary<string, float>(ranked) });
            }
        });
        app.MapGet("/health", (MlNetBaseline _) => Results.Ok(new { status = "ok" }));
    }

    /// <summary>
    /// The JSON of a prediction: <c>{"label": "...", "scores": {"class": p, ...}}</c> for a single-task model (classes most
    /// probable first, the first <paramref name="top"/> only when given); for a multi-task model
    /// <c>{"tasks": {"T": {"label", "scores"} or {"value": x}, ...}}</c>.
    /// </summary>
    /// <param name="prediction">The prediction.</param>
    /// <param name="multiTask">Whether the model is a multi-task one.</param>
    /// <param name="top">How many classes to list; null means all.</param>
    public static object Render(ImagePrediction prediction, bool multiTask, int? top)
    {
        object Task(TaskPrediction task) => task.Kind == TaskKind.Regression
            ? new { value = task.Value }
            : new
            {
                label = task.Label,
                scores = new OrderedDictionary<string, float>(task.Top(top ?? task.Classes.Count).Select(s => KeyValuePair.Create(s.Label, s.Score))),
            };
        return multiTask
            ? new { tasks = new OrderedDictionary<string, object>(prediction.Tasks.Select(t => KeyValuePair.Create(t.Task, Task(t)))) }
            : Task(prediction.Tasks[0]);
    }

    private static object Describe(ImageClassifierInfo info, ServingOptions options)
    {
        var serving = new { dynamicBatching = options.DynamicBatching, maxBatchSize = options.MaxBatchSize, batchDelayMs = options.BatchDelayMilliseconds, maxRequestBytes = options.MaxRequestBytes };
        var common = new { technique = info.Technique ?? "unknown", backbone = info.Backbone ?? "unknown", imageSize = info.ImageSize };
        if (!info.IsMultiTask)
            return new { common.technique, common.backbone, common.imageSize, classes = info.Tasks[0].Classes, serving };
        var tasks = new OrderedDictionary<string, object>(info.Tasks.Select(t => KeyValuePair.Create(t.Name, (object)(t.Kind == TaskKind.Regression
            ? new { kind = "regression" }
            : new { kind = "classification", classes = t.Classes }))));
        return new { common.technique, common.backbone, common.imageSize, tasks, serving };
    }
}
