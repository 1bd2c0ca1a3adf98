"""The GUI-free core of napari-cytounet.

Nothing in this package imports napari or Qt. Modules that need TensorFlow
(``model``, ``losses``, ``training``, ``predict``, ``bundle``) import it
themselves; the numpy-only modules (``config``, ``events``, ``errors``,
``metrics``, ``postprocess``, ``quality``, ``io``, ``data``) stay light.
"""
