using Microsoft.ML;
using MLTransfer.Techniques;
using Spectre.Console;

namespace MLTransfer.Cli.Commands.Train;

/// <summary>Runs one technique for <c>mltransfer train</c>: reads the settings, calls the library, returns the model.</summary>
public interface ITrainRunner
{
    /// <summary>The technique name used with <c>--technique</c>.</summary>
    string Technique { get; }

    /// <summary>Trains; progress and extra reports go to <paramref name="console"/>.</summary>
    /// <param name="settings">Parsed settings.</param>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="console">Where to render.</param>
    TransferModel Train(TrainSettings settings, MLContext mlContext, IAnsiConsole console);
}
