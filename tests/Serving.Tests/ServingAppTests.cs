using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Export;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Serving.Tests;

/// <summary>The service's endpoints and bad inputs, hosted in memory by WebApplicationFactory.</summary>
public class ServingAppTests
{
    private WebApplicationFactory<Program> _factory = null!;
    private HttpClient _client = null!;

    private static readonly string[] Probes =
    [
        TestData.SampleImage("0", 10), TestData.SampleImage("3", 11), TestData.SampleImage("5", 12), TestData.SampleImage("8", 13),
        TestData.MlNetImage("tomato.bmp"), TestData.MlNetImage("fruit0.png"), TestData.MlNetImage("tomato_indexedpixelformat.gif"),
    ];

    /// <summary>A host of the sample with the given settings (command-line keys of the service).</summary>
    internal static WebApplicationFactory<Program> Host(params (string Key, string Value)[] settings) =>
        new WebApplicationFactory<Program>().WithWebHostBuilder(builder =>
        {
            foreach (var (key, value) in settings)
                builder.UseSetting(key, value);
        });

    [OneTimeSetUp]
    public void StartService()
    {
        _factory = Host(("model", TestModels.SingleTask), ("max-request-mb", "2"));
        _client = _factory.CreateClient();
    }

    [OneTimeTearDown]
    public void StopService()
    {
        _client.Dispose();
        _factory.Dispose();
    }

    /// <summary>The .zip's own predictions through ML.NET (the ground truth).</summary>
    internal static (string Label, float[] Scores)[] ZipPredictions(string model, IReadOnlyList<string> paths, string suffix = "")
    {
        var ml = new MLContext(seed: 0);
        var output = ModelFile.Load(ml, model).Transform(ml.Data.LoadFromEnumerable(paths.Select(p => new PathRow { ImagePath = p })));
        var labels = output.GetColumn<ReadOnlyMemory<char>>("PredictedLabel" + suffix).Select(l => l.ToString()).ToArray();
        var scores = output.GetColumn<VBuffer<float>>("Score" + suffix).Select(v => v.DenseValues().ToArray()).ToArray();
        return labels.Zip(scores).ToArray();
    }

    private sealed class PathRow
    {
        public string ImagePath { get; set; } = "";
    }

    internal static MultipartFormDataContent Form(byte[] image, string field = "image")
    {
        var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(image);
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        form.Add(file, field, "upload.jpg");
        return form;
    }

    internal static async Task<JsonElement> Json(HttpResponseMessage response, HttpStatusCode expected)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.That(response.StatusCode, Is.EqualTo(expected), body);
        return JsonDocument.Parse(body).RootElement;
    }

    /// <summary>Checks a {"label", "scores"} object against the .zip's label and scores (classes by name; exact floats).</summary>
    internal static void AssertPrediction(JsonElement json, (string Label, float[] Scores) expected, IReadOnlyList<string> classes, int? top = null)
    {
        Assert.That(json.GetProperty("label").GetString(), Is.EqualTo(expected.Label));
        var scores = json.GetProperty("scores").EnumerateObject().Select(p => (p.Name, Score: p.Value.GetSingle())).ToList();
        var ranked = classes.Select((c, i) => (Name: c, Score: expected.Scores[i])).OrderByDescending(p => p.Score).Take(top ?? classes.Count).ToList();
        Assert.That(scores, Is.EqualTo(ranked), "classes most probable first, with the .zip's probabilities");
    }

    [Test]
    public async Task Should_predict_a_multipart_upload_and_a_raw_body_as_the_zip_does()
    {
        var expected = ZipPredictions(TestModels.SingleTask, Probes);
        for (var i = 0; i < Probes.Length; i++)
        {
            var bytes = await File.ReadAllBytesAsync(Probes[i]);
            AssertPrediction(await Json(await _client.PostAsync("/predict", Form(bytes)), HttpStatusCode.OK), expected[i], TestModels.Classes);
            var raw = new ByteArrayContent(bytes);
            raw.Headers.ContentType = new MediaTypeHeaderValue("image/png");
            AssertPrediction(await Json(await _client.PostAsync("/predict", raw), HttpStatusCode.OK), expected[i], TestModels.Classes);
        }
    }

    [Test]
    public async Task Should_list_only_the_top_classes_when_asked()
    {
        var expected = ZipPredictions(TestModels.SingleTask, [Probes[1]])[0];
        var bytes = await File.ReadAllBytesAsync(Probes[1]);
        var json = await Json(await _client.PostAsync("/predict?top=3", Form(bytes)), HttpStatusCode.OK);
        AssertPrediction(json, expected, TestModels.Classes, top: 3);
        Assert.That(json.GetProperty("scores").EnumerateObject().Count(), Is.EqualTo(3));
        foreach (var bad in new[] { "0", "-2", "three", "1.5" })
        {
            var problem = await Json(await _client.PostAsync($"/predict?top={bad}", Form(bytes)), HttpStatusCode.BadRequest);
            Assert.That(problem.GetProperty("detail").GetString(), Does.Contain("top must be a whole number"));
        }
    }

    [Test]
    public async Task Should_answer_health_and_describe_the_model()
    {
        var health = await Json(await _client.GetAsync("/health"), HttpStatusCode.OK);
        Assert.That(health.GetProperty("status").GetString(), Is.EqualTo("ok"));
        var model = await Json(await _client.GetAsync("/model"), HttpStatusCode.OK);
        Assert.That(model.GetProperty("technique").GetString(), Is.EqualTo("feature-extraction"));
        Assert.That(model.GetProperty("backbone").GetString(), Is.EqualTo("resnet18"));
        Assert.That(model.GetProperty("imageSize").GetInt32(), Is.EqualTo(TestModels.ImageSize));
        Assert.That(model.GetProperty("classes").EnumerateArray().Select(c => c.GetString()), Is.EqualTo(TestModels.Classes));
        Assert.That(model.GetProperty("serving").GetProperty("maxRequestBytes").GetInt64(), Is.EqualTo(2 << 20));
    }

    [Test]
    public async Task Should_reject_every_bad_upload_with_its_reason_and_keep_serving()
    {
        var folder = TestData.TempFolder();
        var jpeg = await File.ReadAllBytesAsync(TestData.MlNetImage("hotdog.jpg"));
        var bomb = await File.ReadAllBytesAsync(ImageFactory.HugeHeaderPng(Path.Combine(folder, "bomb.png"), 100_000, 100_000));
        var oversized = new byte[(2 << 20) + 1];
        jpeg.CopyTo(oversized, 0);
        var cases = new (string What, Func<HttpContent> Content, HttpStatusCode Status, string Reason)[]
        {
            ("text as a body", () => new StringContent("hello, not an image"), HttpStatusCode.BadRequest, "not a supported image"),
            ("text in the form", () => Form("hello, not an image"u8.ToArray()), HttpStatusCode.BadRequest, "not a supported image"),
            ("an empty body", () => new ByteArrayContent([]), HttpStatusCode.BadRequest, "Send the image"),
            ("an empty form field", () => Form([]), HttpStatusCode.BadRequest, "field 'image' is empty"),
            ("a form without the field", () => Form(jpeg, field: "photo"), HttpStatusCode.BadRequest, "no field 'image'"),
            ("a truncated JPEG", () => Form(jpeg[..(jpeg.Length / 2)]), HttpStatusCode.BadRequest, "truncated"),
            ("a PNG claiming 100000x100000", () => Form(bomb), HttpStatusCode.BadRequest, "100000x100000, over the limit"),
            ("a body over the limit", () => new ByteArrayContent(oversized), HttpStatusCode.RequestEntityTooLarge, "over the limit of 2,097,152 bytes"),
            ("a form over the limit", () => Form(oversized), HttpStatusCode.RequestEntityTooLarge, "over the limit of 2,097,152 bytes"),
            ("a chunked body over the limit", () => new StreamContent(new MemoryStream(oversized)), HttpStatusCode.RequestEntityTooLarge, "over the limit"),
        };
        var good = await File.ReadAllBytesAsync(Probes[0]);
        var expected = ZipPredictions(TestModels.SingleTask, [Probes[0]])[0];
        foreach (var (what, content, status, reason) in cases)
        {
            var problem = await Json(await _client.PostAsync("/predict", content()), status);
            Assert.That(problem.GetProperty("detail").GetString(), Does.Contain(reason), what);
            AssertPrediction(await Json(await _client.PostAsync("/predict", Form(good)), HttpStatusCode.OK), expected, TestModels.Classes);
        }
    }

    [Test]
    public async Task Should_refuse_uploads_over_20_MiB_by_default()
    {
        using var factory = Host(("model", TestModels.SingleTask));
        using var client = factory.CreateClient();
        var model = await Json(await client.GetAsync("/model"), HttpStatusCode.OK);
        Assert.That(model.GetProperty("serving").GetProperty("maxRequestBytes").GetInt64(), Is.EqualTo(20L << 20));
        var under = await Json(await client.PostAsync("/predict", new ByteArrayContent(new byte[(20 << 20) - 1000])), HttpStatusCode.BadRequest);
        Assert.That(under.GetProperty("detail").GetString(), Does.Contain("not a supported image"));
        var over = await Json(await client.PostAsync("/predict", new ByteArrayContent(new byte[(20 << 20) + 1])), HttpStatusCode.RequestEntityTooLarge);
        Assert.That(over.GetProperty("detail").GetString(), Does.Contain("20 MiB"));
    }

    [Test]
    public void Should_not_start_without_a_usable_model()
    {
        Assert.That(() => ServingApp.Create(["--urls", "http://127.0.0.1:5098"]), Throws.ArgumentException.With.Message.Contains("--model"));
        Assert.That(() => ServingApp.Create(["--model", TestModels.SingleTask, "--max-request-mb", "lots"]), Throws.ArgumentException.With.Message.Contains("--max-request-mb must be a number"));
        var text = Path.Combine(TestData.TempFolder(), "not-a-model.zip");
        File.WriteAllText(text, "text");
        Assert.That(() => ServingApp.Create(["--model", text]), Throws.InstanceOf<InvalidDataException>().With.Message.Contains("not an ML.NET model"));
        Assert.That(() => ServingApp.Create(["--model", text + ".missing"]), Throws.InstanceOf<FileNotFoundException>());
    }
}
