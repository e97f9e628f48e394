// Marks one ELF symbol-version requirement as weak (VER_FLG_WEAK) in a shared library.
//
// Why: TorchSharp 0.107's libLibTorchSharp.so is linked against GCC 13's libstdc++ and so requires
// GLIBCXX_3.4.32, while Debian 12 ships libstdc++ with versions up to GLIBCXX_3.4.30. The only
// symbol behind GLIBCXX_3.4.32 is std::ios_base_library_init(), which GCC 13 references from every
// object that includes <iostream> but which has no relocation in libLibTorchSharp.so: nothing binds
// to it at run time. A weak version requirement that is missing makes the dynamic loader print a
// debug note instead of refusing to load the library, so flipping that one flag lets the library
// load and run on Debian 12. Every other version requirement is left as it is.
//
// This file is compiled twice: by MSBuild's RoslynCodeTaskFactory (build/PatchLibTorchSharp.targets,
// which adds the task class below) and into the test project (MLTRANSFER_ELF_PATCHER_NO_TASK), which
// checks the patch on the real library. It targets netstandard2.0, as the task factory requires.
#nullable enable
using System;
using System.IO;
using System.Text;

namespace MLTransfer.Build
{
    /// <summary>The result of <see cref="ElfWeakVersionPatcher.Patch"/>.</summary>
    public enum ElfPatchResult
    {
        /// <summary>The requirement was strong and is now weak; the file was rewritten.</summary>
        Patched,

        /// <summary>The requirement was already weak; the file was left untouched.</summary>
        AlreadyWeak,

        /// <summary>The library does not require that version; the file was left untouched.</summary>
        NotRequired,
    }

    /// <summary>Reads and sets the weak flag of version requirements in the .gnu.version_r section of an ELF64 little-endian file.</summary>
    public static class ElfWeakVersionPatcher
    {
        private const uint ShtGnuVerneed = 0x6ffffffe;
        private const ushort VerFlagWeak = 0x2;

        /// <summary>Returns the file offset of the vna_flags field of the Vernaux entry naming <paramref name="versionName"/>, or -1.</summary>
        public static long FindVernauxFlagsOffset(byte[] elf, string versionName)
        {
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            {
                throw new InvalidDataException("Not an ELF file.");
            }

            if (elf[4] != 2 || elf[5] != 1)
            {
                throw new InvalidDataException("Only 64-bit little-endian ELF files are supported.");
            }

            long sectionHeaders = (long)ReadU64(elf, 0x28);
            int sectionHeaderSize = ReadU16(elf, 0x3A);
            int sectionCount = ReadU16(elf, 0x3C);
            for (int i = 0; i < sectionCount; i++)
            {
                long header = sectionHeaders + ((long)i * sectionHeaderSize);
                if (ReadU32(elf, header + 4) != ShtGnuVerneed)
                {
                    continue;
                }

                long verneed = (long)ReadU64(elf, header + 0x18);
                int entryCount = (int)ReadU32(elf, header + 0x2C);
                int stringSection = (int)ReadU32(elf, header + 0x28);
                long strings = (long)ReadU64(elf, sectionHeaders + ((long)stringSection * sectionHeaderSize) + 0x18);

                long need = verneed;
                for (int n = 0; n < entryCount; n++)
                {
                    int auxCount = ReadU16(elf, need + 2);
                    long aux = need + ReadU32(elf, need + 8);
                    for (int a = 0; a < auxCount; a++)
                    {
                        string name = ReadCString(elf, strings + ReadU32(elf, aux + 8));
                        if (name == versionName)
                        {
                            return aux + 4;
                        }

                        aux += ReadU32(elf, aux + 12);
                    }

                    uint next = ReadU32(elf, need + 12);
                    if (next == 0)
                    {
                        break;
                    }

                    need += next;
                }
            }

            return -1;
        }

        /// <summary>Returns true when <paramref name="versionName"/> is required weakly, false when strongly, null when not at all.</summary>
        public static bool? IsWeak(string path, string versionName)
        {
            byte[] elf = File.ReadAllBytes(path);
            long offset = FindVernauxFlagsOffset(elf, versionName);
            return offset < 0 ? null : (ReadU16(elf, offset) & VerFlagWeak) != 0;
        }

        /// <summary>
        /// Sets VER_FLG_WEAK on the requirement of <paramref name="versionName"/> in the file at <paramref name="path"/>.
        /// Idempotent; the file is rewritten through a temporary file and a rename, so a hard link to the
        /// original (e.g. into the NuGet cache) is never modified.
        /// </summary>
        public static ElfPatchResult Patch(string path, string versionName)
        {
            byte[] elf = File.ReadAllBytes(path);
            long offset = FindVernauxFlagsOffset(elf, versionName);
            if (offset < 0)
            {
                return ElfPatchResult.NotRequired;
            }

            ushort flags = ReadU16(elf, offset);
            if ((flags & VerFlagWeak) != 0)
            {
                return ElfPatchResult.AlreadyWeak;
            }

            flags |= VerFlagWeak;
            elf[offset] = (byte)flags;
            elf[offset + 1] = (byte)(flags >> 8);

            string temp = path + ".weak-patch.tmp";
            File.Copy(path, temp, overwrite: true); // keeps the file mode
            File.WriteAllBytes(temp, elf);
            File.Replace(temp, path, destinationBackupFileName: null);
            return ElfPatchResult.Patched;
        }

        private static ushort ReadU16(byte[] b, long o) => (ushort)(b[o] | (b[o + 1] << 8));

        private static uint ReadU32(byte[] b, long o) => (uint)(b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24));

        private static ulong ReadU64(byte[] b, long o) => ReadU32(b, o) | ((ulong)ReadU32(b, o + 4) << 32);

        private static string ReadCString(byte[] b, long o)
        {
            long end = o;
            while (end < b.Length && b[end] != 0)
            {
                end++;
            }

            return Encoding.ASCII.GetString(b, (int)o, (int)(end - o));
        }
    }

#if !MLTRANSFER_ELF_PATCHER_NO_TASK
    /// <summary>MSBuild task: marks <see cref="VersionName"/> weak in every existing file of <see cref="Files"/>.</summary>
    public sealed class PatchElfWeakVersion : Microsoft.Build.Utilities.Task
    {
        /// <summary>The libraries to patch; missing files are skipped.</summary>
        [Microsoft.Build.Framework.Required]
        public Microsoft.Build.Framework.ITaskItem[] Files { get; set; } = Array.Empty<Microsoft.Build.Framework.ITaskItem>();

        /// <summary>The version requirement to make weak, e.g. GLIBCXX_3.4.32.</summary>
        [Microsoft.Build.Framework.Required]
        public string VersionName { get; set; } = string.Empty;

        /// <inheritdoc />
        public override bool Execute()
        {
            foreach (var item in Files)
            {
                string path = item.ItemSpec;
                if (!File.Exists(path))
                {
                    continue;
                }

                ElfPatchResult result = ElfWeakVersionPatcher.Patch(path, VersionName);
                Log.LogMessage(
                    Microsoft.Build.Framework.MessageImportance.Normal,
                    "PatchElfWeakVersion: {0}: {1} {2}",
                    path,
                    VersionName,
                    result);
            }

            return !Log.HasLoggedErrors;
        }
    }
#endif
}
