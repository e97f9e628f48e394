using System.Text.RegularExpressions;
using MLTransfer.Cli.Commands;
using MLTransfer.Cli.Commands.Bench;
using MLTransfer.Featurization;
using MLTransfer.IO;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MLTransfer.Cli;

/// <summary>The <c>mltransfer</c> command line: a thin layer that parses, calls the library and renders results.</summary>
/// <remarks>
/// Exit codes, the same for every verb: <see cref="Success"/> (0); <see cref="DataError"/> (1) for input and data errors
/// (a file or folder that is missing, unreadable or of the wrong kind, unusable images, labels that do not match, an
/// output that cannot or must not be written, a training run that diverged); <see cref="UsageError"/> (2) for usage errors
/// (an unknown verb, option or name, a missing argument, a value of the wrong type or out of range), reported before any
/// work starts. <c>bench multi-task</c> alone also returns 3 when the benchmark ran but missed one of its targets.
/// Every error is one line on standard error starting with <c>error:</c> (<c>--verbose</c> adds the stack trace).
/// Temporary files: every run points <c>TMPDIR</c> (<c>TMP</c> on Windows) at its own scratch folder
/// (<see cref="ScratchFolder"/>) and deletes it at the end, on success and on error; a killed run's folder is deleted by the
/// next run. Long-lived caches live in <see cref="CacheLocation"/>.
/// </remarks>
public static partial class CliApp
{
    /// <summary>Exit code of a successful run.</summary>
    public const int Success = 0;

    /// <summary>Exit code of an input or data error.</summary>
    public const int DataError = 1;

    /// <summary>Exit code of a usage error.</summary>
    public const int UsageError = 2;

    /// <summary>Console width when output goes to a file or pipe, so that every message stays on one line.</summary>
    public const int RedirectedWidth = 400;

    /// <summary>Runs the tool; returns the process exit code (see the remarks).</summary>
    /// <param name="args">Command-line arguments.</param>
    public static int Run(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        OnnxRuntimeEnvironment.Configure(line => Console.Error.WriteLine(line));
        args = PositionalAfterDoubleDash(args);
        if (Console.IsOutputRedirected)
            AnsiConsole.Profile.Width = RedirectedWidth;
        var app = new CommandApp();
        app.Configure(config =>
        {
            config.SetApplicationName("mltransfer");
            config.UseStrictParsing();
            config.PropagateExceptions();
            config.AddCommand<TrainCommand>("train")
                .WithDescription("Train a model on a folder of images (one sub-folder per class) and save it as an ML.NET .zip.")
                .WithExample("train", "data/sign-language-digits", "--output", "models/sample.zip");
            config.AddCommand<EvaluateCommand>("evaluate")
                .WithDescription("Evaluate a saved model on a labelled folder: metrics and confusion matrix.");
            config.AddCommand<PredictCommand>("predict")
                .WithDescription("Predict the class of an image or of every image in a folder.");
            config.AddCommand<ExplainCommand>("explain")
                .WithDescription("Heat maps of where each image's predicted (or a named) class comes from: class-activation maps or occlusion, as PNG overlays.")
                .WithExample("explain", "models/sample.zip", "data/sign-language-digits/3", "--output", "explanations");
            config.AddCommand<FeaturizeCommand>("featurize")
                .WithDescription("Featurise a folder of images with the backbone and write features + labels as CSV or Parquet.");
            config.AddBranch("cluster", cluster =>
            {
                cluster.SetDescription("Featurise and predict on an Orleans cluster: run silos, then featurize/predict with --redis.");
                cluster.AddCommand<Commands.Cluster.ClusterSiloCommand>("silo")
                    .WithDescription("Run a silo that works on cluster jobs until stopped (Ctrl-C gives its running shard back).")
                    .WithExample("cluster", "silo", "--redis", "10.0.0.5:6379", "--threads", "2");
            });
            config.AddCommand<AdviseCommand>("advise")
                .WithDescription("Rank backbone layers, image sizes and backbones by LogME and k-NN accuracy before training; print the train arguments of the best.")
                .WithExample("advise", "data/sign-language-digits", "--sizes", "128,160,224");
            config.AddCommand<QuantizeCommand>("quantize")
                .WithDescription("Quantise a model's backbone to int8 (static QDQ, calibrated on your images); the .zip still loads with ML.NET only.")
                .WithExample("quantize", "models/sample.zip", "--calibration", "data/sign-language-digits", "--output", "models/sample-int8.zip");
            config.AddBranch("bench", bench =>
            {
                bench.SetDescription("Benchmarks against plain ML.NET, measured in the same run.");
                bench.AddCommand<BenchAccuracyCommand>("accuracy")
                    .WithDescription("Accuracy and fit time of plain ML.NET vs MLTransfer feature extraction on the same split.");
                bench.AddCommand<BenchFeaturizeCommand>("featurize")
                    .WithDescription("Images/s of ML.NET's DnnFeaturizeImage vs the MLTransfer engine, cached re-run speed-up, peak memory.");
                bench.AddCommand<BenchExplainCommand>("explain")
                    .WithDescription("Faithfulness of heat maps: probability drop when deleting the most salient 20% of pixels vs a random 20%.");
                bench.AddCommand<BenchQuantizeCommand>("quantize")
                    .WithDescription("int8 vs fp32 engine images/s in the same run, per-operator profile, accuracy and size before and after quantize.");
                bench.AddCommand<BenchDomainAdaptationCommand>("domain-adaptation")
                    .WithDescription("Domain adaptation: every method, both directions, against source-only.");
                bench.AddCommand<BenchClusterCommand>("cluster")
                    .WithDescription("Cluster on this box: 1 vs 2 silos of one core, overhead vs the plain engine, one silo killed at 50 %; --simulate N silos with a fake worker.");
                bench.AddCommand<BenchAdviseCommand>("advise")
                    .WithDescription("advise's LogME ranking vs the held-out accuracy of training every candidate (Kendall tau), and its time against training them all.");
                bench.AddCommand<BenchFineTuningCommand>("fine-tuning")
                    .WithDescription("Fine-tuning (train defaults unless told) vs feature extraction on the same split: accuracy, training images/s, wall and CPU time.");
                bench.AddCommand<BenchTrainingMemoryCommand>("training-memory")
                    .WithDescription("Peak memory of train --technique fine-tuning as the number of images grows (copies under new names in a temporary folder).");
                bench.AddCommand<BenchMultiTaskCommand>("multi-task")
                    .WithDescription("One multi-task model vs one single-task model per task: per-task accuracy/MAE and backbone passes.");
            });
        });
        using var scratch = ScratchFolder.Create();
        var temporaryVariable = OperatingSystem.IsWindows() ? "TMP" : "TMPDIR";
        var temporary = Environment.GetEnvironmentVariable(temporaryVariable);
        Environment.SetEnvironmentVariable(temporaryVariable, scratch.Path);
        try
        {
            return app.Run(args);
        }
        catch (CommandParseException e)
        {
            Console.Error.WriteLine($"error: {Explain(e.Message, args)}");
            return UsageError;
        }
        catch (CommandRuntimeException e)
        {
            Console.Error.WriteLine($"error: {Explain(e.Message, args)}");
            return UsageError;
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"error: {OneLine(e)}");
            return UsageError;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"error: {OneLine(e)}");
            if (args.Contains("--verbose"))
                Console.Error.WriteLine(e.ToString());
            return DataError;
        }
        finally
        {
            Environment.SetEnvironmentVariable(temporaryVariable, temporary);
        }
    }

    /// <summary>
    /// Arguments after <c>--</c> are values, never options: each one that starts with <c>-</c> becomes <c>./-…</c> (the same
    /// file), so <c>predict model.zip -- -x.jpg</c> works; the <c>--</c> itself is dropped.
    /// </summary>
    /// <param name="args">Command-line arguments.</param>
    public static string[] PositionalAfterDoubleDash(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var split = Array.IndexOf(args, "--");
        if (split < 0)
            return args;
        return [.. args[..split], .. args[(split + 1)..].Select(a => a.StartsWith('-') ? "./" + a : a)];
    }

    /// <summary>Spectre's conversion errors name the .NET type; this names the option and what it takes instead.</summary>
    private static string Explain(string message, string[] args)
    {
        var line = message.ReplaceLineEndings(" ");
        var match = ConversionError().Match(line);
        if (!match.Success)
            return line;
        var value = match.Groups["value"].Value;
        for (var i = 0; i < args.Length; i++)
        {
            if (i > 0 && args[i] == value && args[i - 1].StartsWith('-'))
                return $"{args[i - 1]}: '{value}' is not a number.";
            var equals = args[i].IndexOf('=', StringComparison.Ordinal);
            if (args[i].StartsWith('-') && equals > 0 && args[i][(equals + 1)..] == value)
                return $"{args[i][..equals]}: '{value}' is not a number.";
        }
        return $"'{value}' is not a number.";
    }

    [GeneratedRegex("^Failed to convert '(?<value>.*)' to .+$")]
    private static partial Regex ConversionError();

    private static string OneLine(Exception e)
    {
        var inner = e;
        while (inner is AggregateException { InnerException: not null } or System.Reflection.TargetInvocationException { InnerException: not null })
            inner = inner.InnerException!;
        // libtorch's own reports carry the C++ stack after their first line; --verbose prints all of it.
        if (inner is System.Runtime.InteropServices.ExternalException)
            return "libtorch failed: " + inner.Message.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
        return inner.Message.ReplaceLineEndings(" ");
    }

    /// <summary>Console used for human-readable output: stderr when stdout must stay machine-readable (JSON).</summary>
    /// <param name="json">Whether stdout carries JSON.</param>
    public static IAnsiConsole Ui(bool json)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(json ? Console.Error : Console.Out) });
        if (json ? Console.IsErrorRedirected : Console.IsOutputRedirected)
            console.Profile.Width = RedirectedWidth;
        return console;
    }
}
