"""Pictures for looking at a convolution: colour maps, labelled montages, kernel pictures, terminal previews.

:mod:`~convcli.visual.colormap` maps values to colours (signed: a diverging map with zero
at its neutral white; unsigned: gray); :mod:`~convcli.visual.montage` lays maps out as a
labelled grid with each map's value range; :mod:`~convcli.visual.kernel_picture` draws a
kernel's taps as coloured cells with their numbers; :mod:`~convcli.visual.preview` prints
a thumbnail with half-block characters.  Drawing and text use Pillow (its default font).
"""
