using MLTransfer.Cli.Commands;
using MLTransfer.Cli.Commands.Bench;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MLTransfer.Cli;

/// <summary>The <c>mltransfer</c> command line: a thin layer that parses, calls the library and renders results.</summary>
public static class CliApp
{
    /// <summary>Runs the tool; returns the process exit code (0 on success, 1 on any error, 2 on bad usage).</summary>
    /// <param name="args">Command-line arguments.</param>
    public static int Run(string[] args)
    {
        var app = new CommandApp();
        app.Configure(config =>
        {
            config.SetApplicationName("mltransfer");
            config.PropagateExceptions();
            config.AddCommand<TrainCommand>("train")
                .WithDescription("Train a model on a folder of images (one sub-folder per class) and save it as an ML.NET .zip.")
                .WithExample("train", "data/sign-language-digits", "--output", "models/sample.zip");
            config.AddCommand<EvaluateCommand>("evaluate")
                .WithDescription("Evaluate a saved model on a labelled folder: metrics and confusion matrix.");
            config.AddCommand<PredictCommand>("predict")
                .WithDescription("Predict the class of an image or of every image in a folder.");
            config.AddCommand<FeaturizeCommand>("featurize")
                .WithDescription("Featurise a folder of images with the backbone and write features + labels as CSV or Parquet.");
            config.AddBranch("bench", bench =>
            {
                bench.SetDescription("Benchmarks against plain ML.NET, measured in the same run.");
                bench.AddCommand<BenchAccuracyCommand>("accuracy")
                    .WithDescription("Accuracy and fit time of plain ML.NET vs MLTransfer feature extraction on the same split.");
                bench.AddCommand<BenchFeaturizeCommand>("featurize")
                    .WithDescription("Images/s of ML.NET's DnnFeaturizeImage vs the MLTransfer engine, cached re-run speed-up, peak memory.");
                bench.AddCommand<BenchDomainAdaptationCommand>("domain-adaptation")
                    .WithDescription("Domain adaptation: every method, both directions, against source-only.");
                bench.AddCommand<BenchFineTuningCommand>("fine-tuning")
                    .WithDescription("Fine-tuning (train defaults unless told) vs feature extraction on the same split: accuracy, training images/s, wall and CPU time.");
                bench.AddCommand<BenchTrainingMemoryCommand>("training-memory")
                    .WithDescription("Peak memory of train --technique fine-tuning as the number of images grows (copies under new names in a temporary folder).");
                bench.AddCommand<BenchMultiTaskCommand>("multi-task")
                    .WithDescription("One multi-task model vs one single-task model per task: per-task accuracy/MAE and backbone passes.");
            });
        });
        try
        {
            return app.Run(args);
        }
        catch (CommandParseException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
        catch (CommandRuntimeException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"error: {OneLine(e)}");
            if (args.Contains("--verbose"))
                Console.Error.WriteLine(e.ToString());
            return 1;
        }
    }

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
    public static IAnsiConsole Ui(bool json) => json
        ? AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) })
        : AnsiConsole.Console;
}
