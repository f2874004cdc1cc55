"""Reading inputs and writing outputs: bytes in and out, arrays between.

============  ===================================================================================
module        its job
============  ===================================================================================
inputs        where inputs come from (files, ``-``), sniffing their format, NCHW ``LoadedInput``
arrays        decoding ``.npy``/``.npz``/text bytes into arrays; the one ``.npz`` member rule
images        Pillow <-> NCHW float: decoding images, encoding PNG and float TIFF
display       floats -> pixels in [0, 1] (clip, abs, minmax, offset) and montages of maps
formats       output formats and display modes by name and extension (no numpy)
outputs       writing files whole or not at all, ``-`` for stdout, inputs never overwritten
============  ===================================================================================

How each command names its outputs is the command's own (:mod:`convcli.commands`).
Nothing is imported here.
"""
