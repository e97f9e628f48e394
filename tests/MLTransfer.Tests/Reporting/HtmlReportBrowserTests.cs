using System.Diagnostics;
using System.Text.RegularExpressions;
using MLTransfer.Tests.Cli;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Reporting;

/// <summary>
/// The HTML report of <c>mltransfer train</c> and <c>evaluate</c>, loaded in a real headless Chromium (Debian's
/// <c>chromium</c>; <c>.ci/run</c> installs it).
/// </summary>
[NonParallelizable]
public class HtmlReportBrowserTests
{
    private static string _model = "";
    private static string _report = "";
    private static string _train = "";

    [OneTimeSetUp]
    public void TrainOnce()
    {
        _train = TestData.CopySample(6, "0", "2", "7");
        File.WriteAllText(Path.Combine(_train, "2", "broken.jpg"), "not a jpeg");
        _model = Path.Combine(TestData.TempFolder(), "report model.zip");
        var (code, output, error) = CliTests.Run("train", _train, "--output", _model, "--image-size", "96", "--cache-dir", Shared.CacheDir,
            "--validation-fraction", "0.34", "--head", "image-classification", "--epochs", "12", "--no-plots");
        Assert.That(code, Is.Zero, error + output);
        _report = Path.Combine(Path.GetDirectoryName(_model)!, "report model.report.html");
    }

    [Test]
    public void Train_writes_one_self_contained_report_beside_the_model()
    {
        Assert.That(File.Exists(_report), _report);
        var html = File.ReadAllText(_report);
        var sources = Regex.Matches(html, "(?:src|href)=\"([^\"]*)\"").Select(m => m.Groups[1].Value).ToList();
        Assert.That(sources, Is.Not.Empty);
        Assert.That(sources.Where(s => !s.StartsWith("data:image/png;base64,", StringComparison.Ordinal) && !s.StartsWith('#')), Is.Empty,
            "every picture is embedded and every link stays in the page");
        Assert.That(html, Does.Contain("default-src 'none'"), "a content-security policy forbids any network access");
        Assert.That(html, Does.Contain("broken.jpg").And.Contain("not a supported image"), "the rejected image is listed with its reason");
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(_model)!, "*.tmp"), Is.Empty);
    }

    [Test]
    public void Train_report_renders_in_headless_chromium_with_every_section_and_picture_and_no_console_error()
    {
        var page = Chromium.Load(_report, Path.Combine(TestData.TempFolder(), "train-report.png"));
        foreach (var id in new[] { "summary", "curves", "confusion", "per-class", "worst", "rejected" })
            Assert.That(page.Dom, Does.Contain($"<section id=\"{id}\">"), id);
        // 1 training-curve chart + 6 validation images (2 per class) × (photo + heat map).
        Assert.That(page.Attribute("data-images"), Is.EqualTo("13"));
        Assert.That(page.Attribute("data-images-decoded"), Is.EqualTo("13"), "the browser decoded every embedded picture");
        Assert.That(Regex.Matches(page.Dom, "<figure class=\"item").Count, Is.EqualTo(6));
        Assert.That(page.ConsoleMessages, Is.Empty);
        Assert.That(page.Screenshot.Length, Is.GreaterThan(20_000), "a screenshot with content");
        TestContext.AddTestAttachment(page.ScreenshotPath, "the report as Chromium draws it");
    }

    [Test]
    public void Evaluate_writes_a_report_with_the_worst_predictions_that_renders_in_chromium()
    {
        var report = Path.Combine(TestData.TempFolder(), "evaluation.html");
        var test = TestData.TempFolder();
        foreach (var label in new[] { "0", "2", "7" })
        {
            Directory.CreateDirectory(Path.Combine(test, label));
            for (var i = 10; i < 13; i++)
                File.Copy(TestData.SampleImage(label, i), Path.Combine(test, label, $"{i}.jpg"));
        }
        var (code, output, error) = CliTests.Run("evaluate", _model, test, "--report", report);
        Assert.That(code, Is.Zero, error + output);
        var page = Chromium.Load(report, Path.Combine(TestData.TempFolder(), "evaluation.png"));
        foreach (var id in new[] { "summary", "confusion", "per-class", "worst", "rejected" })
            Assert.That(page.Dom, Does.Contain($"<section id=\"{id}\">"), id);
        Assert.That(page.Dom, Does.Not.Contain("<section id=\"curves\">"), "a saved model has no training history");
        Assert.That(page.Attribute("data-images"), Is.EqualTo("18"), "9 images × (photo + heat map)");
        Assert.That(page.Attribute("data-images-decoded"), Is.EqualTo("18"));
        Assert.That(page.ConsoleMessages, Is.Empty);

        var (skipCode, _, skipError) = CliTests.Run("evaluate", _model, test, "--report", report + ".none", "--no-report");
        Assert.That(skipCode, Is.Zero, skipError);
        Assert.That(File.Exists(report + ".none"), Is.False, "--no-report writes no report");
    }

    /// <summary>Runs Debian's chromium headless on a file:// URL: the DOM after load, its console messages and a screenshot.</summary>
    internal static class Chromium
    {
        public sealed record Page(string Dom, IReadOnlyList<string> ConsoleMessages, byte[] Screenshot, string ScreenshotPath)
        {
            public string? Attribute(string name) => Regex.Match(Dom, $"<body[^>]*\\s{name}=\"([^\"]*)\"") is { Success: true } m ? m.Groups[1].Value : null;
        }

        public static Page Load(string htmlPath, string screenshotPath)
        {
            var url = new Uri(Path.GetFullPath(htmlPath)).AbsoluteUri;
            var dom = Run(["--dump-dom", url], out var domLog);
            Run([$"--screenshot={screenshotPath}", "--window-size=1280,2200", "--hide-scrollbars", url], out var shotLog);
            var console = (domLog + shotLog).Split('\n').Where(l => l.Contains(":CONSOLE(", StringComparison.Ordinal)).ToList();
            Assert.That(File.Exists(screenshotPath), "chromium wrote the screenshot\n" + shotLog);
            return new Page(dom, console, File.ReadAllBytes(screenshotPath), screenshotPath);
        }

        private static string Run(IEnumerable<string> args, out string log)
        {
            var binary = new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser" }.FirstOrDefault(File.Exists);
            Assert.That(binary, Is.Not.Null, "Debian's chromium is needed (apt-get install chromium; .ci/run installs it)");
            var profile = TestData.TempFolder();
            var start = new ProcessStartInfo(binary!)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var a in new[]
                     {
                         "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", $"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                         "--virtual-time-budget=5000",
                     }.Concat(args))
                start.ArgumentList.Add(a);
            using var process = Process.Start(start)!;
            var stderr = process.StandardError.ReadToEndAsync();
            var stdout = process.StandardOutput.ReadToEnd();
            if (!process.WaitForExit(120_000))
            {
                process.Kill(entireProcessTree: true);
                Assert.Fail("chromium did not finish within 2 minutes");
            }
            log = stderr.Result;
            Assert.That(process.ExitCode, Is.Zero, log);
            try
            {
                Directory.Delete(profile, recursive: true);
            }
            catch (IOException)
            {
            }
            return stdout;
        }
    }
}
