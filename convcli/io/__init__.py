"""Reading inputs and writing outputs: bytes in and out, arrays between.

============  ===================================================================================
module        its job
============  ===================================================================================
inputs        where inputs come from (files, ``-``), sniffing their format, NCHW ``LoadedInput``
streams       reading a source's bytes, bounded: devices refused, FIFOs never waited on forever
limits        how much a source may bring: byte budgets per format, image pixels/pages/memory
arrays        decoding ``.npy``/``.npz``/text bytes into arrays; the one ``.npz`` member rule
images        Pillow <-> NCHW float: decoding images, encoding PNG and float TIFF
display       floats -> pixels in [0, 1] (clip, abs, minmax, offset) and montages of maps
formats       output formats and display modes by name and extension (no numpy)
outputs       a run's outputs all or none: reserved before the work, committed by renames
targets       the rules of an output target: never an input, never replaced unless the user may
============  ===================================================================================

How each command names its outputs is the command's own (:mod:`convcli.commands`).
Nothing is imported here.
"""
