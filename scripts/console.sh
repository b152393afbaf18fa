#!/usr/bin/env bash
# Builds the web console (src/console -> dist/console, vite) when the bundle is
# missing or older than any of its sources; quiet and quick when it is fresh.
# Used by ./proxist up / node / test and by the console's browser test.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
stamp=dist/console/index.html
if [ -f "$stamp" ] && [ -z "$(find src/console package.json -newer "$stamp" -print -quit)" ]; then exit 0; fi
echo "building the web console (npm run build:console) ..." >&2
npm run --silent build:console
