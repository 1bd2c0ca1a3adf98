"""The Train UNet widget's "Training data" section: the layer pairs to train and validate on.

:class:`TrainingData` holds the Image and Labels choices (the Labels follow the Image), the
label mode, the extra pairs added with "Add this pair to the training set" and the optional
validation pair. It only chooses layers; :mod:`._train_request` turns the choice into arrays.
Part of the Train widget (:mod:`._train`); no other widget imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, Container, PushButton, Select, create_widget

from napari_cytounet.core.errors import CytoUNetError

from . import _layers
from ._common import LABEL_MODES, notify_exception

if TYPE_CHECKING:
    import napari

#: An Image layer and the Labels layer drawn on it.
Pair = tuple[Any, Any]


class TrainingData:
    """The fields of the training data and the list of extra pairs.

    Parameters
    ----------
    viewer
        The napari viewer whose layers are offered.

    Examples
    --------
    >>> data = TrainingData(viewer)  # doctest: +SKIP
    >>> data.selected_pairs()  # doctest: +SKIP
    [(<Image layer 'cells'>, <Labels layer 'cells mask'>)]
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        self.extra_pairs: list[Pair] = []
        self.image = create_widget(annotation="napari.layers.Image", label="Image")
        self.labels = create_widget(annotation="napari.layers.Labels", label="Labels")
        self.mode = ComboBox(label="Labels are", choices=LABEL_MODES, value="dense")
        self.add_pair = PushButton(text="Add this pair to the training set")
        self.pairs = Select(
            label="Also train on", choices=[], tooltip="Pairs added with the button above"
        )
        self.remove_pair = PushButton(text="Remove selected pairs")
        self.val_image = create_widget(
            annotation="napari.layers.Image", label="Validation image", options={"nullable": True}
        )
        self.val_labels = create_widget(
            annotation="napari.layers.Labels", label="Validation labels", options={"nullable": True}
        )
        self.val_image.value = None
        self.val_labels.value = None
        self.pairs.native.setMaximumHeight(70)
        self.image.changed.connect(self._on_image_changed)
        self.add_pair.changed.connect(self._on_add_pair)
        self.remove_pair.changed.connect(self._on_remove_pairs)

    def widgets(self) -> list[Any]:
        """The section's rows, in order (without its header)."""
        row = {"layout": "horizontal", "labels": False}
        return [
            Container(widgets=[self.image, self.labels, self.mode], labels=True),
            Container(widgets=[self.add_pair, self.remove_pair], **row),
            Container(widgets=[self.pairs, self.val_image, self.val_labels], labels=True),
        ]

    def selected_pairs(self) -> list[Pair]:
        """The current pair plus the added ones (each once)."""
        pairs = [(self.image.value, self.labels.value)]
        for img, lab in self.extra_pairs:
            if not any(img is i and lab is la for i, la in pairs):
                pairs.append((img, lab))
        return pairs

    def validation_pair(self) -> tuple[Any, Any]:
        """The validation Image and Labels layers (either may be ``None``)."""
        return self.val_image.value, self.val_labels.value

    def forget_removed_layers(self) -> None:
        """Drop the extra pairs whose image or labels layer left the viewer."""
        layers = list(self._viewer.layers)
        self.extra_pairs = [
            (img, lab)
            for img, lab in self.extra_pairs
            if any(img is la for la in layers) and any(lab is la for la in layers)
        ]
        self._refresh_pairs()

    def _refresh_pairs(self) -> None:
        self.pairs.choices = [
            (f"{img.name} + {lab.name}", (img.name, lab.name)) for img, lab in self.extra_pairs
        ]

    def _on_image_changed(self, image: Any) -> None:
        """Pick the labels drawn on the new image (same shape, named after it) if there are any."""
        if image is None:
            return
        from napari.layers import Labels

        shape = _layers.spatial_shape(image)
        current = self.labels.value
        if (
            current is not None
            and _layers.spatial_shape(current) == shape
            and (current.name.startswith(image.name))
        ):
            return
        candidates = [
            la
            for la in self._viewer.layers
            if isinstance(la, Labels)
            and _layers.spatial_shape(la) == shape
            and not la.name.endswith(_layers.SEGMENTATION)
        ]
        named = [la for la in candidates if la.name.startswith(image.name)]
        pick = (named or candidates or [None])[0]
        if pick is not None:
            self.labels.value = pick

    def _on_add_pair(self, *_: Any) -> None:
        image, labels = self.image.value, self.labels.value
        try:
            _layers.check_pair(image, labels)
        except CytoUNetError as exc:
            notify_exception(exc)
            return
        if any(img is image and lab is labels for img, lab in self.extra_pairs):
            return
        self.extra_pairs.append((image, labels))
        self._refresh_pairs()

    def _on_remove_pairs(self, *_: Any) -> None:
        selected = set(self.pairs.value or [])
        self.extra_pairs = [
            (img, lab) for img, lab in self.extra_pairs if (img.name, lab.name) not in selected
        ]
        self._refresh_pairs()
