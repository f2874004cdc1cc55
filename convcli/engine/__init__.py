"""The engine: geometry, tiles, im2col and the Convolution layer."""
