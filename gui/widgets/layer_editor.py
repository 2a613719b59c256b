"""The layer editor: a list of layers with their shapes and costs, edited with undo and redo.

Every edit is a :class:`ModelEdit` on a shared ``QUndoStack`` (the model page owns it), so the
toolbar's Undo and Redo, Ctrl+Z and Ctrl+Shift+Z all walk the same history. The editor never
changes the project itself: a command calls ``apply(changes)`` with ``ModelConfig`` fields.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt, Signal, Slot
from PySide6.QtGui import QAction, QBrush, QColor, QKeySequence, QUndoCommand, QUndoStack
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QSpinBox,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ml.models.layers import LAYER_TYPES, layer_params

from ..theme import mark_problem

#: The "Add layer" menu: sections of layer types (types this build lacks are left out).
LAYER_GROUPS = (
    # Column embeddings read a table's category codes; its columns are set from the data.
    ("Tables", ("embed_columns",)),
    ("Dense", ("linear", "residual_block", "dropout", "flatten")),
    ("Convolution (images, sequences)", ("conv2d", "conv1d", "residual_block")),
    ("Pooling", ("maxpool2d", "avgpool2d", "adaptive_avgpool2d", "maxpool1d", "avgpool1d",
                 "adaptive_avgpool1d", "sequence_pool")),
    ("Normalisation", ("batchnorm", "layernorm")),
    ("Sequences and text", ("embedding", "embedding_bag", "lstm", "gru",
                            "transformer_encoder")),
    ("Activations", ("relu", "gelu", "silu", "tanh", "sigmoid", "leaky_relu")),
)
#: Limits of the numeric settings by name (anything else: 0 .. 65536, or 0 .. 1 for floats).
INT_RANGES = {"kernel_size": (1, 64), "stride": (1, 64), "padding": (0, 64),
              "num_layers": (1, 16), "nhead": (1, 64), "output_size": (1, 64)}
FLOAT_RANGES = {"p": (0.0, 0.95), "dropout": (0.0, 0.95), "negative_slope": (0.0, 1.0)}
#: Settings with a fixed set of values.
CHOICES = {"mode": ("mean", "max")}
#: Settings that may be "not set" (None): shown as 0 with this text.
NONE_TEXT = {"stride": "same as the window"}
_SETTING_LABELS = {"out_features": "Outputs", "out_channels": "Channels", "kernel_size": "Kernel",
                   "hidden_size": "Hidden size", "num_layers": "Layers", "nhead": "Heads",
                   "dim_feedforward": "Feed-forward width", "p": "Drop share",
                   "dim": "Width", "vocab_size": "Vocabulary", "max_length": "Max length",
                   "return_sequence": "Return the whole sequence", "bias": "Bias",
                   "bidirectional": "Both directions", "positional": "Position embeddings",
                   "negative_slope": "Negative slope", "output_size": "Output size",
                   "columns": "Embedded columns"}


_UNITS = {"out_features": "outputs", "out_channels": "channels", "hidden_size": "hidden",
          "dim": "wide"}


def setting_label(key: str) -> str:
    """``"out_channels"`` -> ``"Channels"``."""
    return _SETTING_LABELS.get(key, key.replace("_", " ").capitalize())


def layer_title(layer: dict) -> str:
    """A layer's name: its kind's (``Linear``), or a pretrained backbone's own (``MiniLM-L6
    (all-MiniLM-L6-v2)``)."""
    kind = LAYER_TYPES.get(layer.get("type", ""))
    if layer.get("type") == "pretrained" and layer.get("title"):
        return f"Pretrained: {layer['title']}"
    return kind.title if kind else str(layer.get("type"))


def describe_layer(layer: dict) -> str:
    """The settings that differ from plain, in a few words: ``"32 ch, 3x3, stride 2"``."""
    kind = LAYER_TYPES.get(layer.get("type", ""))
    if kind is None:
        return ""
    if layer.get("type") == "pretrained":  # its architecture is its own; its title names it
        return ""
    try:
        params = layer_params(layer)
    except Exception:  # noqa: BLE001 - a broken layer is described by its check
        return ""
    parts = []
    for key, value in params.items():
        if key == "columns":
            parts.append(f"{len(value)} column(s)")
        elif key == "kernel_size":
            parts.append(f"{value}×{value}" if "2d" in layer["type"] else f"kernel {value}")
        elif key in _UNITS:
            parts.append(f"{value} {_UNITS[key]}")
        elif isinstance(value, bool):
            if value != kind.defaults.get(key):
                parts.append(f"{setting_label(key).lower()} {'on' if value else 'off'}")
        elif value is not None and value != kind.defaults.get(key):
            parts.append(f"{setting_label(key).lower()} {value}")
        elif key in ("p", "nhead"):
            parts.append(f"{setting_label(key).lower()} {value}")
    return ", ".join(parts)


def shape_text(shape: Sequence[int] | None) -> str:
    return " × ".join(str(v) for v in shape) if shape else "—"


def count_text(n: float) -> str:
    """``1234567`` -> ``"1.2M"``."""
    for unit in ("", "K", "M", "G", "T"):
        if abs(n) < 1000 or unit == "T":
            return f"{n:.0f}{unit}" if unit == "" else f"{n:.1f}{unit}"
        n /= 1000
    return str(n)


class ModelEdit(QUndoCommand):
    """One undoable change of ``ModelConfig`` fields (``layers``, ``preset``, ...).

    Consecutive edits of the same setting of the same layer merge into one step, so that
    spinning a value up by ten clicks is undone at once.
    """

    MERGE_ID = 4711

    def __init__(self, apply: Callable[[dict], None], before: dict, after: dict, text: str,
                 merge_key: tuple | None = None):
        super().__init__(text)
        self._apply = apply
        self.before = copy.deepcopy(before)
        self.after = copy.deepcopy(after)
        self.merge_key = merge_key

    def redo(self) -> None:
        self._apply(copy.deepcopy(self.after))

    def undo(self) -> None:
        self._apply(copy.deepcopy(self.before))

    def id(self) -> int:  # noqa: A003 - Qt API
        return self.MERGE_ID if self.merge_key is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 - Qt API
        if not isinstance(other, ModelEdit) or other.merge_key != self.merge_key:
            return False
        self.after = copy.deepcopy(other.after)
        return True


class _LayerTree(QTreeWidget):
    """Rows that can be dragged to a new place; reports the new order of the old rows."""

    reordered = Signal(list)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        # The new order is worked out here and the list redrawn from the project, rather than
        # letting Qt move the items: the project, not the widget, holds the layers.
        source = self.currentItem()
        n = self.topLevelItemCount()
        if source is None or n < 2:
            event.ignore()
            return
        src = self.indexOfTopLevelItem(source)
        pos = event.position().toPoint()
        target = self.itemAt(pos)
        if target is None:
            dst = n  # below the last row
        else:
            rect = self.visualItemRect(target)
            dst = self.indexOfTopLevelItem(target) + (1 if pos.y() > rect.center().y() else 0)
        order = list(range(n))
        order.pop(src)
        order.insert(dst - 1 if dst > src else dst, src)
        event.setDropAction(Qt.DropAction.IgnoreAction)
        event.accept()
        if order != list(range(n)):
            self.reordered.emit(order)


class LayerEditor(QWidget):
    """The layers of the network, each with its output shape, parameters and multiply-adds;
    bad layers in red with the reason. Add, remove, duplicate, move (buttons or drag), edit a
    layer's settings below the list; every change goes through *undo_stack*.

    Parameters
    ----------
    undo_stack : QUndoStack
    apply : callable
        ``apply(changes)`` sets ``ModelConfig`` fields (the project state does the rest).
    """

    COLUMNS = ("#", "Layer", "Settings", "Output shape", "Parameters", "Multiply-adds")

    def __init__(self, undo_stack: QUndoStack, apply: Callable[[dict], None],
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.undo_stack = undo_stack
        self._apply = apply
        self.layers: list[dict] = []
        self.checks: list = []
        self.custom = False
        self._selected = -1
        self._form_key: tuple | None = None

        bar = self._build_toolbar()

        self._build_tree()

        self.settings_box = QGroupBox("Settings of the selected layer")
        self.settings_form = QFormLayout(self.settings_box)
        self.settings_widgets: dict[str, QWidget] = {}
        self.problem_label = QLabel("")
        self.problem_label.setWordWrap(True)
        mark_problem(self.problem_label)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.problem_label)
        layout.addWidget(self.settings_box)
        self._update_buttons()

    def _build_toolbar(self) -> QVBoxLayout:
        """Add layer (a menu by group), Duplicate, Remove, move, undo/redo and reset."""
        self.add_button = QToolButton()
        self.add_button.setObjectName("addLayerButton")
        self.add_button.setText("Add layer")
        self.add_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.add_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.add_menu = QMenu(self)
        self.add_actions: dict[str, QAction] = {}
        for title, names in LAYER_GROUPS:
            self.add_menu.addSection(title)
            for name in names:
                if name in LAYER_TYPES and name not in self.add_actions:
                    action = self.add_menu.addAction(LAYER_TYPES[name].title)
                    action.triggered.connect(lambda _=False, n=name: self.add_layer(n))
                    self.add_actions[name] = action
        self.add_button.setMenu(self.add_menu)
        self.add_button.setToolTip("Insert a layer after the selected one.")

        def button(text: str, tip: str, slot) -> QToolButton:
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            return b

        self.duplicate_button = button("Duplicate", "Insert a copy of the selected layer after "
                                       "it.", self.duplicate_layer)
        self.remove_button = button("Remove", "Remove the selected layer (Delete).",
                                    self.remove_layer)
        self.up_button = button("▲", "Move the selected layer up (or drag it).",
                                lambda: self.move_layer(-1))
        self.down_button = button("▼", "Move the selected layer down (or drag it).",
                                  lambda: self.move_layer(1))
        self.undo_action = self.undo_stack.createUndoAction(self, "Undo")
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.redo_action = self.undo_stack.createRedoAction(self, "Redo")
        self.redo_action.setShortcut(QKeySequence.StandardKey.Redo)
        self.addActions([self.undo_action, self.redo_action])
        self.undo_button = QToolButton()
        self.undo_button.setDefaultAction(self.undo_action)
        self.redo_button = QToolButton()
        self.redo_button.setDefaultAction(self.redo_action)
        self.reset_button = button("Back to the preset", "Drop the hand edits and use the "
                                   "preset's layers again.", self.reset_to_preset)
        # Two rows, editing above history: one row needed more than the network column has
        # at the window's minimum width, and squeezed the labels to "Ad…er".
        edit, history = QHBoxLayout(), QHBoxLayout()
        for w in (self.add_button, self.duplicate_button, self.remove_button, self.up_button,
                  self.down_button):
            edit.addWidget(w)
        edit.addStretch(1)
        for w in (self.undo_button, self.redo_button):
            history.addWidget(w)
        history.addStretch(1)
        history.addWidget(self.reset_button)
        bar = QVBoxLayout()
        bar.addLayout(edit)
        bar.addLayout(history)
        return bar

    def _build_tree(self) -> None:
        """The layers' table, reordered by dragging; Delete removes the selected one."""
        self.tree = _LayerTree()
        self.tree.setObjectName("layerTree")
        self.tree.setHeaderLabels(list(self.COLUMNS))
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.tree.currentItemChanged.connect(self._on_current_changed)
        self.tree.reordered.connect(self._on_reordered)
        delete = QAction(self.tree)
        delete.setShortcut(QKeySequence.StandardKey.Delete)
        delete.triggered.connect(self.remove_layer)
        self.tree.addAction(delete)

    # -- showing --------------------------------------------------------------------------------
    def show_layers(self, layers: list[dict], checks: Sequence, custom: bool) -> None:
        """Show *layers* with their *checks* (:class:`~ml.models.spec.LayerCheck`); *custom*:
        they are hand-edited (not the preset's)."""
        self.layers = [dict(layer) for layer in layers]
        self.checks = list(checks)
        self.custom = custom
        selected = min(self._selected, len(self.layers) - 1)
        with QSignalBlocker(self.tree):
            self.tree.clear()
            # The error banner's colours: light red with dark red text in both themes (the
            # dark theme's light text was unreadable on it).
            red, red_text = QBrush(QColor("#fdecea")), QBrush(QColor("#8a1c12"))
            for i, layer in enumerate(self.layers):
                check = self.checks[i] if i < len(self.checks) else None
                error = getattr(check, "error", None)
                row = [str(i + 1), layer_title(layer),
                       describe_layer(layer),
                       shape_text(getattr(check, "output_shape", None)),
                       f"{check.params:,}" if check is not None and not error else "—",
                       count_text(check.macs) if check is not None and not error else "—"]
                item = QTreeWidgetItem(row)
                item.setData(0, Qt.ItemDataRole.UserRole, i)
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                              | Qt.ItemFlag.ItemIsDragEnabled)  # no drop *onto* a layer
                for c in (0, 4, 5):
                    item.setTextAlignment(c, Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                if error:
                    for c in range(len(row)):
                        item.setBackground(c, red)
                        item.setForeground(c, red_text)
                        item.setToolTip(c, error)
                self.tree.addTopLevelItem(item)
            if selected >= 0:
                self.tree.setCurrentItem(self.tree.topLevelItem(selected))
        self._selected = selected
        errors = [c for c in self.checks if getattr(c, "error", None)]
        first = next((c for c in errors if not str(c.error).startswith("Comes after")), None)
        first = first or (errors[0] if errors else None)
        self.problem_label.setText(f"Layer {first.index + 1}: {first.error}" if first else "")
        self.problem_label.setVisible(first is not None)
        self._show_settings()
        self._update_buttons()

    def _update_buttons(self) -> None:
        has = 0 <= self._selected < len(self.layers)
        for b in (self.duplicate_button, self.remove_button):
            b.setEnabled(has)
        self.up_button.setEnabled(has and self._selected > 0)
        self.down_button.setEnabled(has and self._selected < len(self.layers) - 1)
        self.reset_button.setEnabled(self.custom)

    @Slot()
    def _on_current_changed(self, *_) -> None:
        item = self.tree.currentItem()
        self._selected = self.tree.indexOfTopLevelItem(item) if item is not None else -1
        self._show_settings()
        self._update_buttons()

    def select(self, row: int) -> None:
        """Select layer *row* (0-based)."""
        if 0 <= row < self.tree.topLevelItemCount():
            self.tree.setCurrentItem(self.tree.topLevelItem(row))

    def _show_settings(self) -> None:
        row = self._selected
        key = ((row, self.layers[row].get("type")) if 0 <= row < len(self.layers) else None)
        if key is not None and key == self._form_key:
            # The same layer: update the values in place. Rebuilding would delete the widget
            # whose signal brought us here.
            self._refresh_setting_values()
            return
        self._form_key = key
        while self.settings_form.rowCount():
            self.settings_form.removeRow(0)
        self.settings_widgets = {}
        row = self._selected
        if not 0 <= row < len(self.layers):
            self.settings_box.setTitle("Settings of the selected layer")
            self.settings_form.addRow(QLabel("Select a layer to change its settings."))
            return
        layer = self.layers[row]
        kind = LAYER_TYPES.get(layer.get("type", ""))
        self.settings_box.setTitle(f"Layer {row + 1}: {kind.title if kind else layer.get('type')}")
        if kind is None:
            return
        values = dict(kind.defaults)
        values.update({k: v for k, v in layer.items() if k != "type"})
        if not kind.defaults:
            self.settings_form.addRow(QLabel("This layer has no settings."))
        for key, default in kind.defaults.items():
            widget = self._setting_widget(row, key, default, values.get(key))
            if widget is not None:
                self.settings_widgets[key] = widget
                self.settings_form.addRow(f"{setting_label(key)}:", widget)

    def _refresh_setting_values(self) -> None:
        layer = self.layers[self._selected]
        kind = LAYER_TYPES[layer["type"]]
        for key, widget in self.settings_widgets.items():
            value = layer.get(key, kind.defaults.get(key))
            with QSignalBlocker(widget):
                if isinstance(widget, QCheckBox):
                    widget.setChecked(bool(value))
                elif isinstance(widget, QComboBox):
                    widget.setCurrentText(str(value))
                elif isinstance(widget, QDoubleSpinBox) and isinstance(value, (int, float)):
                    widget.setValue(float(value))
                elif isinstance(widget, QSpinBox):
                    widget.setValue(0 if value is None else int(value)
                                    if isinstance(value, (int, float)) else widget.minimum())

    def _setting_widget(self, row: int, key: str, default: Any, value: Any) -> QWidget | None:
        def commit(new_value: Any) -> None:
            self.set_setting(row, key, new_value)

        if isinstance(default, bool):
            w = QCheckBox()
            w.setChecked(bool(value))
            w.toggled.connect(commit)
            return w
        if key in CHOICES:
            w = QComboBox()
            w.addItems(CHOICES[key])
            w.setCurrentText(str(value))
            w.currentTextChanged.connect(commit)
            return w
        if isinstance(default, float):
            lo, hi = FLOAT_RANGES.get(key, (0.0, 1.0))
            w = QDoubleSpinBox()
            w.setRange(lo, hi)
            w.setDecimals(3)
            w.setSingleStep(0.05)
            w.setValue(float(value) if isinstance(value, (int, float)) else lo)
            w.valueChanged.connect(lambda v: commit(round(v, 4)))
            return w
        if isinstance(default, int) or key in NONE_TEXT:
            lo, hi = INT_RANGES.get(key, (1, 65536))
            w = QSpinBox()
            if key in NONE_TEXT:
                lo = 0
                w.setSpecialValueText(NONE_TEXT[key])
            w.setRange(lo, hi)
            w.setValue(int(value) if isinstance(value, int) and not isinstance(value, bool)
                       else lo)
            w.valueChanged.connect(
                lambda v: commit(None if key in NONE_TEXT and v == 0 else int(v)))
            return w
        if isinstance(default, list):
            label = QLabel(f"{len(value or [])} (set from the data)")
            return label
        return None

    # -- edits ----------------------------------------------------------------------------------
    def _push(self, layers: list[dict], text: str, merge_key: tuple | None = None) -> None:
        before = {"layers": copy.deepcopy(self.layers) if self.custom else []}
        self.undo_stack.push(ModelEdit(self._apply, before, {"layers": layers}, text, merge_key))

    def add_layer(self, name: str) -> None:
        """Insert a *name* layer after the selected one (at the end when none is)."""
        at = self._selected + 1 if 0 <= self._selected < len(self.layers) else len(self.layers)
        layers = copy.deepcopy(self.layers)
        layers.insert(at, {"type": name})
        self._selected = at
        self._push(layers, f"Add {LAYER_TYPES[name].title}")

    def duplicate_layer(self) -> None:
        row = self._selected
        if 0 <= row < len(self.layers):
            layers = copy.deepcopy(self.layers)
            layers.insert(row + 1, copy.deepcopy(layers[row]))
            self._selected = row + 1
            self._push(layers, "Duplicate layer")

    def remove_layer(self) -> None:
        row = self._selected
        if 0 <= row < len(self.layers):
            layers = copy.deepcopy(self.layers)
            del layers[row]
            self._selected = min(row, len(layers) - 1)
            self._push(layers, "Remove layer")

    def move_layer(self, step: int) -> None:
        row, to = self._selected, self._selected + step
        if 0 <= row < len(self.layers) and 0 <= to < len(self.layers):
            layers = copy.deepcopy(self.layers)
            layers[row], layers[to] = layers[to], layers[row]
            self._selected = to
            self._push(layers, "Move layer")

    @Slot(list)
    def _on_reordered(self, order: list) -> None:
        layers = [copy.deepcopy(self.layers[i]) for i in order]
        item = self.tree.currentItem()
        self._selected = self.tree.indexOfTopLevelItem(item) if item is not None else -1
        self._push(layers, "Move layer")

    def set_setting(self, row: int, key: str, value: Any) -> None:
        """Set *key* of layer *row* to *value* (spinning one value merges into one undo step)."""
        if not 0 <= row < len(self.layers) or self.layers[row].get(key) == value:
            return
        layers = copy.deepcopy(self.layers)
        layers[row][key] = value
        self._selected = row
        self._push(layers, f"Change {setting_label(key).lower()}", merge_key=(row, key))

    def reset_to_preset(self) -> None:
        if self.custom:
            self._push([], "Back to the preset")
