using System.ComponentModel;
using Spectre.Console.Cli;

namespace MLTransfer.Cli.Commands;

/// <summary>Options every command takes.</summary>
public class CommonSettings : CommandSettings
{
    /// <summary>Print the stack trace of an error.</summary>
    [CommandOption("--verbose")]
    [Description("Print the full stack trace on errors.")]
    public bool Verbose { get; set; }
}
