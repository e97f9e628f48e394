namespace MLTransfer.Cli;

/// <summary>A command line the tool cannot run as given (an unknown name, a missing or contradictory option): exit code 2.</summary>
public sealed class UsageException : Exception
{
    /// <summary>Creates the exception.</summary>
    public UsageException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">One line saying what to change.</param>
    public UsageException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">One line saying what to change.</param>
    /// <param name="innerException">The cause.</param>
    public UsageException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
