// An ASP.NET Core minimal API serving an MLTransfer model (see README.md):
//   dotnet run --project samples/Serving -- --model models/sample.zip --urls http://127.0.0.1:5088
// and its load benchmark against real Kestrel on loopback:
//   dotnet run --project samples/Serving -c Release -- bench --model models/sample.zip --images data/sign-language-digits
using MLTransfer.Serving;

if (args is ["bench", .. var benchArgs])
    return await LoadBenchmark.RunAsync(benchArgs);

try
{
    await ServingApp.Create(args).RunAsync();
    return 0;
}
catch (Exception e) when (e is ArgumentException or FileNotFoundException or InvalidDataException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return e is ArgumentException ? 2 : 1;
}

/// <summary>The entry point (public so that tests can host the app with WebApplicationFactory).</summary>
public partial class Program;
