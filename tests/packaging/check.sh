#!/usr/bin/env bash
# Packs MLTransfer, MLTransfer.Torch and the mltransfer tool into a local feed, then uses them as a user would,
# outside the repository: a scratch app that references only the packages trains feature extraction on the bundled
# sample, saves, reloads and predicts, and fine-tunes one epoch at 64 px; the tool is installed from the feed with
# `dotnet tool install` and runs `mltransfer train` on the sample. Prints one line "packaging: passed" or
# "packaging: failed (<step>)" and exits 0 or 1. Usage: tests/packaging/check.sh [work-dir]
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
feed="$work/feed"
version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$repo/Directory.Build.props" | head -1)
log="$work/packaging.log"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
fail() { echo "packaging: failed ($1); log: $log"; tail -n 30 "$log" >&2; exit 1; }
step() { echo "== $1" >>"$log"; }

step "pack"
for project in src/MLTransfer src/MLTransfer.Torch; do
  dotnet pack "$repo/$project" -c Release -o "$feed" >>"$log" 2>&1 || fail "dotnet pack $project"
done
# The tool is one package per platform (libtorch is hundreds of MB each); this machine's is enough here.
dotnet pack "$repo/src/MLTransfer.Cli" -c Release -o "$feed" \
  -p:ToolPackageRuntimeIdentifiers=linux-x64 -p:RuntimeIdentifiers=linux-x64 >>"$log" 2>&1 || fail "dotnet pack the tool"
for id in MLTransfer MLTransfer.Torch MLTransfer.Cli MLTransfer.Cli.linux-x64; do
  [ -f "$feed/$id.$version.nupkg" ] || fail "no $id.$version.nupkg"
done

# Our packages come from the feed only: a scratch package folder, with the machine's cache as a read-only fallback
# for everything else (ML.NET, TorchSharp), so a stale copy of an earlier 0.9.0 in the cache cannot be used.
packages="$work/packages"
mkdir -p "$packages"
global=$(dotnet nuget locals global-packages --list | sed 's/^global-packages: //')
cat >"$work/nuget.config" <<CONFIG
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <config><add key="globalPackagesFolder" value="$packages" /></config>
  <fallbackPackageFolders><add key="machine" value="$global" /></fallbackPackageFolders>
  <packageSources>
    <clear />
    <add key="local" value="$feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
</configuration>
CONFIG

step "consumer app"
app="$work/app"
cp -r "$repo/tests/packaging/Consumer" "$app"
cp "$work/nuget.config" "$app/nuget.config"
dotnet build "$app" -c Release -p:MLTransferVersion="$version" >>"$log" 2>&1 || fail "build the consumer app"
out="$app/bin/Release/net10.0"
[ -f "$out/DnnImageModels/ResNet18Onnx/ResNet18.onnx" ] || fail "the backbone files were not copied next to the app"
grep -q '"MLTransfer.Torch/' "$out/Consumer.deps.json" || fail "the app does not use the MLTransfer.Torch package"
(cd "$work" && NUGET_PACKAGES=/nonexistent dotnet "$out/Consumer.dll" "$repo/data/sign-language-digits" "$work/app-output") >>"$log" 2>&1 \
  || fail "run the consumer app"

step "tool"
tools="$work/tools"
NUGET_PACKAGES="$packages" dotnet tool install --tool-path "$tools" --configfile "$work/nuget.config" --add-source "$feed" \
  --version "$version" MLTransfer.Cli >>"$log" 2>&1 || fail "dotnet tool install MLTransfer.Cli"
"$tools/mltransfer" train "$repo/data/sign-language-digits" --output "$work/tool-output/model.zip" --image-size 96 \
  --cache-dir "$work/tool-output/cache" >>"$log" 2>&1 || fail "mltransfer train"
[ -f "$work/tool-output/model.zip" ] || fail "mltransfer train wrote no model"
"$tools/mltransfer" train "$repo/data/sign-language-digits" --technique fine-tuning --epochs 1 --image-size 64 \
  --output "$work/tool-output/tuned.zip" >>"$log" 2>&1 || fail "mltransfer train --technique fine-tuning (libtorch from the tool package)"

echo "packaging: passed"
