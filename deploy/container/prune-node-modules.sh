#!/bin/sh
# Removes from a production node_modules what Node never loads at run time: TypeScript declarations and
# sources, and source maps (only read with --enable-source-maps, which the services do not use). Licences,
# READMEs and package.json files stay. Used by the Dockerfile and by scripts/measure-image.sh, so the
# measured size is the image's.
# Usage: prune-node-modules.sh [DIR]   (default: ./node_modules)
set -eu
dir="${1:-node_modules}"
[ -d "$dir" ] || { echo "prune-node-modules: no directory $dir" >&2; exit 1; }
find "$dir" -type f \( -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.map' \) -delete
