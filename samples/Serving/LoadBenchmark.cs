using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Reflection;
using System.Text.Json;
using MLTransfer.Data;
using MLTransfer.Diagnostics;

namespace MLTransfer.Serving;

/// <summary>
/// <c>bench</c>: a bounded load test of this service on real Kestrel over loopback. For each server mode (dynamic batching on,
/// off, and the ML.NET-only baseline) it starts the service as a separate process, waits for <c>/health</c>, warms it up, then
/// sends the same number of <c>POST /predict</c> requests (multipart field <c>image</c>, images from a folder) at each
/// concurrency, and reports throughput, p50/p99 latency, errors and the server's RSS before and after.
/// </summary>
public static class LoadBenchmark
{
    private const string Usage = "usage: Serving bench --model <model.zip> --images <folder> [--requests 2000] [--concurrency 1,4,16] [--modes batching,no-batching,mlnet] " +
        "[--port 5089] [--warmup 50] [--bad-every N] [--json <file>] [-- <server options>]";

    /// <summary>Runs the benchmark; returns the process exit code (0, 1 when a request failed, 2 for a usage error).</summary>
    /// <param name="args">The arguments after <c>bench</c>.</param>
    public static async Task<int> RunAsync(string[] args)
    {
        Settings settings;
        try
        {
            settings = Settings.Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            Console.Error.WriteLine(Usage);
            return 2;
        }
        var images = Directory.EnumerateFiles(settings.Images, "*", SearchOption.AllDirectories).Where(ImageFileCheck.HasImageExtension)
            .Order(StringComparer.Ordinal).Take(500).Select(File.ReadAllBytes).ToList();
        if (images.Count == 0)
        {
            Console.Error.WriteLine($"error: no images in '{settings.Images}'.");
            return 1;
        }
        Console.WriteLine($"{images.Count} images from {settings.Images} (mean {images.Average(i => i.Length) / 1024:F1} KiB), {settings.Requests} requests per level, " +
            $"{Environment.ProcessorCount} cores, load average {ProcessMemory.LoadAverage()?.ToString("F1", CultureInfo.InvariantCulture) ?? "n/a"}");
        var rows = new List<Row>();
        foreach (var mode in settings.Modes)
        {
            await using var server = await Server.StartAsync(settings, mode);
            using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64 }) { BaseAddress = server.Address, Timeout = TimeSpan.FromMinutes(2) };
            await SendAsync(client, images, settings.Warmup, concurrency: 4, badEvery: 0);
            var rss = ProcessMemory.CurrentRssBytes(server.ProcessId);
            foreach (var concurrency in settings.Concurrency)
            {
                var result = await SendAsync(client, images, settings.Requests, concurrency, settings.BadEvery);
                var health = JsonDocument.Parse(await client.GetStringAsync("/health")).RootElement;
                var after = ProcessMemory.CurrentRssBytes(server.ProcessId);
                var row = new Row(mode, concurrency, result, rss, after, health.TryGetProperty("meanBatchSize", out var mean) ? mean.GetDouble() : double.NaN);
                rows.Add(row);
                Console.WriteLine(row.Describe());
                rss = after;
            }
        }
        Console.WriteLine();
        PrintTable(rows);
        if (settings.Json is { } json)
            File.WriteAllText(json, JsonSerializer.Serialize(rows.Select(r => r.ToJson()), new JsonSerializerOptions { WriteIndented = true }));
        return rows.Any(r => r.Result.Errors > 0) ? 1 : 0;
    }

    private static async Task<Result> SendAsync(HttpClient client, List<byte[]> images, int requests, int concurrency, int badEvery)
    {
        var latencies = new double[requests];
        var errors = 0;
        var rejected = 0;
        var next = -1;
        var firstError = (string?)null;
        var clock = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < requests)
            {
                var bad = badEvery > 0 && i % badEvery == badEvery - 1;
                var bytes = bad ? "not an image, a garbage upload"u8.ToArray() : images[i % images.Count];
                using var form = new MultipartFormDataContent();
                var file = new ByteArrayContent(bytes);
                file.Headers.ContentType = new MediaTypeHeaderValue("image/jpeg");
                form.Add(file, ImageUpload.FieldName, "upload.jpg");
                var start = Stopwatch.GetTimestamp();
                try
                {
                    using var response = await client.PostAsync("/predict", form);
                    var body = await response.Content.ReadAsStringAsync();
                    latencies[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                    if (bad && (int)response.StatusCode == StatusCodes.Status400BadRequest)
                        Interlocked.Increment(ref rejected);
                    else if (bad || !response.IsSuccessStatusCode || !body.Contains("\"label\"", StringComparison.Ordinal) && !body.Contains("\"tasks\"", StringComparison.Ordinal))
                    {
                        Interlocked.Increment(ref errors);
                        Interlocked.CompareExchange(ref firstError, $"{(int)response.StatusCode}: {body}", null);
                    }
                }
                catch (HttpRequestException e)
                {
                    latencies[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                    Interlocked.Increment(ref errors);
                    Interlocked.CompareExchange(ref firstError, e.Message, null);
                }
            }
        })).ToArray();
        await Task.WhenAll(workers);
        var elapsed = clock.Elapsed;
        Array.Sort(latencies);
        if (firstError is not null)
            Console.Error.WriteLine($"  first error: {firstError}");
        return new Result(requests, elapsed, requests / elapsed.TotalSeconds, Percentile(latencies, 0.50), Percentile(latencies, 0.99), errors, rejected);
    }

    private static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];

    private static void PrintTable(List<Row> rows)
    {
        Console.WriteLine("| server | concurrency | requests | requests/s | vs no-batching | vs mlnet | p50 ms | p99 ms | errors | mean batch | RSS before → after (MiB) |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        string Ratio(Row row, string mode) =>
            rows.FirstOrDefault(r => r.Mode == mode && r.Concurrency == row.Concurrency) is { } other ? $"{row.Result.Throughput / other.Result.Throughput:F2}×" : "";
        foreach (var row in rows)
        {
            var bad = row.Result.Rejected > 0 ? $" ({row.Result.Rejected} garbage → 400)" : "";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {row.Mode} | {row.Concurrency} | {row.Result.Requests}{bad} | {row.Result.Throughput:F1} | {Ratio(row, "no-batching")} | {Ratio(row, "mlnet")} | {row.Result.P50:F1} | {row.Result.P99:F1} | {row.Result.Errors} | {(row.MeanBatchSize is double.NaN ? "" : row.MeanBatchSize.ToString("F2", CultureInfo.InvariantCulture))} | {row.RssBefore / 1048576.0:F0} → {row.RssAfter / 1048576.0:F0} |"));
        }
    }

    private sealed record Result(int Requests, TimeSpan Elapsed, double Throughput, double P50, double P99, int Errors, int Rejected);

    private sealed record Row(string Mode, int Concurrency, Result Result, long RssBefore, long RssAfter, double MeanBatchSize)
    {
        public string Describe() => string.Create(CultureInfo.InvariantCulture,
            $"{Mode,-12} c={Concurrency,-3} {Result.Requests} requests in {Result.Elapsed.TotalSeconds:F1} s: {Result.Throughput:F1}/s, p50 {Result.P50:F1} ms, p99 {Result.P99:F1} ms, " +
            $"{Result.Errors} errors, {Result.Rejected} garbage rejected, mean batch {MeanBatchSize:F2}, RSS {RssBefore / 1048576.0:F0} → {RssAfter / 1048576.0:F0} MiB");

        public object ToJson() => new
        {
            mode = Mode, concurrency = Concurrency, requests = Result.Requests, seconds = Result.Elapsed.TotalSeconds, requestsPerSecond = Result.Throughput,
            p50Ms = Result.P50, p99Ms = Result.P99, errors = Result.Errors, garbageRejected = Result.Rejected, meanBatchSize = MeanBatchSize,
            rssBeforeBytes = RssBefore, rssAfterBytes = RssAfter,
        };
    }

    private sealed record Settings(string Model, string Images, int Requests, int[] Concurrency, string[] Modes, int Port, int Warmup, int BadEvery, string? Json, string[] ServerArgs)
    {
        public static Settings Parse(string[] args)
        {
            var split = Array.IndexOf(args, "--");
            var own = split < 0 ? args : args[..split];
            var server = split < 0 ? [] : args[(split + 1)..];
            var values = new Dictionary<string, string>(StringComparer.Ordinal);
            for (var i = 0; i < own.Length; i++)
            {
                if (!own[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= own.Length)
                    throw new ArgumentException($"unexpected argument '{own[i]}'.");
                values[own[i][2..]] = own[++i];
            }
            string Get(string key, string? fallback = null) => values.Remove(key, out var v) ? v : fallback ?? throw new ArgumentException($"--{key} is required.");
            int Int(string key, int fallback, int min) => int.TryParse(Get(key, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture, out var v) && v >= min
                ? v : throw new ArgumentException($"--{key} must be a whole number of at least {min}.");
            var modes = Get("modes", "batching,no-batching,mlnet").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (modes.Except(["batching", "no-batching", "mlnet"]).FirstOrDefault() is { } unknown)
                throw new ArgumentException($"unknown mode '{unknown}' (modes: batching, no-batching, mlnet).");
            var settings = new Settings(Path.GetFullPath(Get("model")), Path.GetFullPath(Get("images")), Int("requests", 2000, 1),
                Get("concurrency", "1,4,16").Split(',').Select(c => int.TryParse(c, CultureInfo.InvariantCulture, out var v) && v >= 1 ? v : throw new ArgumentException("--concurrency takes whole numbers, e.g. 1,4,16.")).ToArray(),
                modes, Int("port", 5089, 1), Int("warmup", 50, 0), Int("bad-every", 0, 0), values.Remove("json", out var json) ? json : null, server);
            if (values.Count > 0)
                throw new ArgumentException($"unknown option --{values.Keys.First()}.");
            if (!File.Exists(settings.Model))
                throw new ArgumentException($"model '{settings.Model}' does not exist.");
            if (!Directory.Exists(settings.Images))
                throw new ArgumentException($"image folder '{settings.Images}' does not exist.");
            return settings;
        }
    }

    /// <summary>This same program started as the service in a child process (the process this benchmark started, stopped by its id).</summary>
    private sealed class Server : IAsyncDisposable
    {
        private readonly Process _process;

        private Server(Process process, Uri address)
        {
            _process = process;
            Address = address;
        }

        public Uri Address { get; }

        public int ProcessId => _process.Id;

        public static async Task<Server> StartAsync(Settings settings, string mode)
        {
            var address = new Uri($"http://127.0.0.1:{settings.Port}");
            var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, RedirectStandardError = true };
            if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet")
                start.ArgumentList.Add(Assembly.GetEntryAssembly()!.Location);
            foreach (var arg in new[] { "--model", settings.Model, "--urls", address.ToString().TrimEnd('/') })
                start.ArgumentList.Add(arg);
            if (mode == "mlnet")
                start.ArgumentList.Add("--engine");
            start.ArgumentList.Add(mode == "mlnet" ? "mlnet" : "--dynamic-batching");
            if (mode != "mlnet")
                start.ArgumentList.Add(mode == "batching" ? "true" : "false");
            foreach (var arg in settings.ServerArgs)
                start.ArgumentList.Add(arg);
            start.Environment["Logging__LogLevel__Default"] = "Warning";
            var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start the service.");
            var log = new System.Text.StringBuilder();
            process.OutputDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
            process.ErrorDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var server = new Server(process, address);
            using var probe = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(2) };
            var deadline = Stopwatch.StartNew();
            while (deadline.Elapsed < TimeSpan.FromMinutes(2))
            {
                if (process.HasExited)
                    throw new InvalidOperationException($"the service ({mode}) exited with {process.ExitCode}: {log}");
                try
                {
                    if ((await probe.GetAsync("/health")).IsSuccessStatusCode)
                    {
                        Console.WriteLine($"{mode}: service {process.Id} ready at {address} after {deadline.Elapsed.TotalSeconds:F1} s");
                        return server;
                    }
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    // Not listening yet.
                }
                await Task.Delay(200);
            }
            await server.DisposeAsync();
            throw new TimeoutException($"the service ({mode}) did not answer /health within 2 minutes: {log}");
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
            _process.Dispose();
        }
    }
}
