using MLTransfer.Cli;

return CliApp.Run(args);
