"""napari widgets of napari-cytounet (the only package, with ``_sample_data``, that imports Qt).

One module per widget, each a ``magicgui.widgets.Container`` taking the viewer:

- :mod:`._train` — **Train UNet**: train on Image + Labels pairs, live plot, Stop, Save.
- :mod:`._predict` — **Predict**: segment an image; correct with the brush and retrain.
- :mod:`._score` — **Score**: Dice, IoU, object F1 against ground truth; CSV; error layer.
- :mod:`._check` — **Quality check**: outline-only, empty or mismatched labels.
- :mod:`._models` — **Model**: the session's current model; load, save, training record.

Importing this package does not import TensorFlow: the core modules that need it
are imported inside the worker functions, when work starts.
"""
