#!/usr/bin/env bash
# Regenerate the README's gallery: bash docs/gallery/make_gallery.sh [OUTPUT_FOLDER]
# (default docs/gallery). Run from anywhere; the sample images are the repository's.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="$(mkdir -p "${1:-$root/docs/gallery}" && cd "${1:-$root/docs/gallery}" && pwd)"
cd "$root"

# a filter bank: one column per kernel (a colour input gives one row per channel)
convcli apply sample_images/gray.png -k sobel-x -k sobel-y -k laplacian -k box:5 \
  --montage "$out/bank-montage.png" -q
# kernels as pictures: a rotation set and a blur
convcli kernels 'Kirsch:@' --png "$out/kirsch.png" -q
convcli kernels log:1.4 --png "$out/log.png" -q
# the backward pass: dx, the layer's dW and the kernels' dK for two kernels on the gray picture
convcli grad sample_images/gray.png -k sobel-x -k box:3 --dout randn:0 --montage "$out/grad-montage.png" -q
