"""The GUI-free core of napari-cytounet.

Nothing in this package imports napari or Qt. Modules that need TensorFlow
(``model``, ``losses``, ``training``, ``predict``, ``bundle``) import it
themselves; the numpy-only modules (``config``, ``events``, ``errors``,
``metrics``, ``postprocess``, ``quality``, ``io``, ``data``) stay light.
"""

import os as _os

# The core runs Keras on TensorFlow. Keras reads KERAS_BACKEND when it is first imported, and
# bioimageio.core (the optional bioimage.io extra) sets it to its own default, "torch", for every
# process started afterwards (the engine among them) unless it is already set.
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")
