"""napari widgets of napari-cytounet (the only package, with ``_sample_data``, that imports Qt).

One module per widget, each a ``magicgui.widgets.Container`` taking the viewer:

- :mod:`._train` — **Train UNet**: train on Image + Labels pairs, live plot, Stop, Save.
- :mod:`._predict` — **Predict**: segment an image; correct with the brush and retrain.
- :mod:`._score` — **Score**: Dice, IoU, object F1 against ground truth; CSV; error layer.
- :mod:`._check` — **Quality check**: outline-only, empty or mismatched labels.
- :mod:`._models` — **Model**: the session's current model; load, save, training record.

Their jobs (train, predict, load, save) live in :mod:`._jobs` and run in the engine
process (:mod:`napari_cytounet.engine`): napari's process never imports TensorFlow.
No widget imports another widget's module.
"""
