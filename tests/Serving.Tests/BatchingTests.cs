using System.Net;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Data;
using MLTransfer.Export;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;
using static MLTransfer.Serving.Tests.ServingAppTests;

namespace MLTransfer.Serving.Tests;

/// <summary>Concurrent requests with dynamic batching on and off, a multi-task model, and the ML.NET-only baseline engine.</summary>
public class BatchingTests
{
    private static readonly string[] Images = TestModels.Classes.SelectMany(c => new[] { TestData.SampleImage(c, 14), TestData.SampleImage(c, 15) }).ToArray();

    [TestCase("true")]
    [TestCase("false")]
    public async Task Should_answer_concurrent_requests_as_one_at_a_time(string dynamicBatching)
    {
        using var factory = Host(("model", TestModels.SingleTask), ("dynamic-batching", dynamicBatching), ("batch-delay-ms", "50"));
        using var client = factory.CreateClient();
        var expected = ZipPredictions(TestModels.SingleTask, Images);
        var bytes = Images.Select(File.ReadAllBytes).ToArray();
        var requests = Enumerable.Range(0, 24).Select(async i =>
        {
            var json = await Json(await client.PostAsync("/predict", Form(bytes[i % bytes.Length])), HttpStatusCode.OK);
            AssertPrediction(json, expected[i % bytes.Length], TestModels.Classes);
        });
        await Task.WhenAll(requests);
        var health = await Json(await client.GetAsync("/health"), HttpStatusCode.OK);
        Assert.That(health.GetProperty("images").GetInt64(), Is.EqualTo(24));
        var batches = health.GetProperty("batches").GetInt64();
        if (dynamicBatching == "true")
            Assert.That(batches, Is.LessThan(24), "concurrent requests share batches");
        else
            Assert.That(batches, Is.EqualTo(24), "every request runs alone");
    }

    [Test]
    public async Task Should_predict_every_task_of_a_multi_task_model()
    {
        using var factory = Host(("model", TestModels.MultiTask));
        using var client = factory.CreateClient();
        var model = await Json(await client.GetAsync("/model"), HttpStatusCode.OK);
        Assert.That(model.GetProperty("technique").GetString(), Is.EqualTo("multi-task"));
        var tasks = model.GetProperty("tasks");
        Assert.That(tasks.GetProperty("parity").GetProperty("classes").EnumerateArray().Select(c => c.GetString()), Is.EqualTo(new[] { "even", "odd" }));
        Assert.That(tasks.GetProperty("value").GetProperty("kind").GetString(), Is.EqualTo("regression"));

        var probes = Images.Take(3).ToList();
        var digit = ZipPredictions(TestModels.MultiTask, probes, "_digit");
        var parity = ZipPredictions(TestModels.MultiTask, probes, "_parity");
        var ml = new MLContext(seed: 0);
        var values = ModelFile.Load(ml, TestModels.MultiTask)
            .Transform(ml.Data.LoadFromEnumerable(probes.Select(p => new ImageExample { ImagePath = p })))
            .GetColumn<float>("Score_value").ToArray();
        for (var i = 0; i < probes.Count; i++)
        {
            var json = (await Json(await client.PostAsync("/predict", Form(File.ReadAllBytes(probes[i]))), HttpStatusCode.OK)).GetProperty("tasks");
            AssertPrediction(json.GetProperty("digit"), digit[i], TestModels.Classes);
            AssertPrediction(json.GetProperty("parity"), parity[i], ["even", "odd"]);
            Assert.That(json.GetProperty("value").GetProperty("value").GetSingle(), Is.EqualTo(values[i]));
        }
        var top = (await Json(await client.PostAsync("/predict?top=1", Form(File.ReadAllBytes(probes[0]))), HttpStatusCode.OK)).GetProperty("tasks");
        Assert.That(top.GetProperty("digit").GetProperty("scores").EnumerateObject().Count(), Is.EqualTo(1));
    }

    [Test]
    public async Task Should_serve_the_same_answers_with_the_mlnet_baseline_engine()
    {
        using var factory = Host(("model", TestModels.SingleTask), ("engine", "mlnet"));
        using var client = factory.CreateClient();
        var expected = ZipPredictions(TestModels.SingleTask, Images.Take(2).ToList());
        for (var i = 0; i < expected.Length; i++)
            AssertPrediction(await Json(await client.PostAsync("/predict", Form(File.ReadAllBytes(Images[i]))), HttpStatusCode.OK), expected[i], TestModels.Classes);
        Assert.That((await Json(await client.GetAsync("/health"), HttpStatusCode.OK)).GetProperty("status").GetString(), Is.EqualTo("ok"));
    }
}
