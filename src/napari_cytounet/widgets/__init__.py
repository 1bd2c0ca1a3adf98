"""napari widgets of napari-cytounet (the only package, with ``_sample_data``, that imports Qt).

One module per widget, each a ``magicgui.widgets.Container`` taking the viewer:

- :mod:`._train` — **Train UNet**: train on Image + Labels pairs, live plot, Stop, Save.
- :mod:`._predict` — **Predict**: segment an image; correct with the brush and retrain.
- :mod:`._score` — **Score**: Dice, IoU, object F1 against ground truth; CSV; error layer.
- :mod:`._check` — **Quality check**: outline-only, empty or mismatched labels.
- :mod:`._models` — **Model**: the session's current model; load, save, training record.

Their jobs (train, predict, load, save) live in :mod:`._jobs` and run in the engine
process (:mod:`napari_cytounet.engine`): napari's process never imports TensorFlow.
Every widget starts its jobs with :func:`._jobs.start_job`.

No widget imports another widget's module: a widget imports the shared modules
(``_common``, ``_jobs``, ``_layers``, ``_settings``, ``_session``, ``_scroll``, ``_plot``,
``_live``, ``_export``) and its own parts, named after it (``_train_data``,
``_train_request``, ``_train_progress``, ``_train_result``); ``tests/test_widget_imports.py``
checks it.
"""
