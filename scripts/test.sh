#!/usr/bin/env bash
# The whole test suite, as README.md states it. Installs what it needs on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH"
echo "node $(node --version)"
tsc --noEmit -p .
biome ci --colors=off .
node --test --test-concurrency=2 'src/**/*.test.ts' 'test/**/*.test.ts'
