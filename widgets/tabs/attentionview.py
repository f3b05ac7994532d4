"""The Attention tab: where a vision transformer's tokens look, block by block and head by head.

For the current frame the model runs once with its attention written out (the engine's
``capture_attention``), on the compute thread; while the tab is in front each new frame is
captured again, one capture at a time and the newest frame first (a live camera never queues
captures). Everything else is drawn from that capture without running the model again:

- block: each attention module in call order, or rollout through all blocks (Abnar & Zuidema:
  the heads' mean plus the residual, multiplied through the blocks);
- head: the mean of the heads or one head (also picked by clicking its thumbnail);
- query: the CLS token, or the patch clicked on the picture ("where does this patch look").

The picture is the model input under the query's attention over the patches (its row of the
attention matrix without the prefix tokens, on the patch grid, enlarged), with the query patch
outlined; beside it every head of the block as thumbnails (every block's mean for rollout), and
under it the numbers: the largest weight and how much of the query's attention goes to the
prefix tokens (CLS, registers) rather than to the patches. PNG saves the picture, NPY the map
at the grid's resolution.
"""

import math
import time
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy,
                               QSlider, QSplitter, QVBoxLayout, QWidget)

from deepvis.attribution.render import render_saliency
from deepvis.errors import DeepvisError
from deepvis.io.images import quiet_cv2
from deepvis.live.computethread import compute_thread, outcome
from deepvis.render.colormaps import COLORMAPS
from deepvis.widgets.panes.export import save_dialog, save_picture_or_array
from deepvis.widgets.panes.imagepanel import ImagePanel
from deepvis.widgets.window.views import DrawnWhenShown, View, register_view

ROLLOUT = "rollout (all blocks)"
MEAN = "mean of heads"
PICTURE_SIDE = 640  # small inputs are enlarged to about this, so the outline and grid lines stay thin
THUMB_SIDE = 128
OUTLINE = (0, 220, 255)  # the query patch: cyan stands out on inferno and viridis alike
GRID_SHADE = 0.7  # patch borders darkened this much where patches are big enough to show them
STORE_FLOAT16_BYTES = 512 * 2 ** 20  # beyond this the captured matrices are kept in half precision
NOT_A_VIT = ("This tab shows the attention of vision transformers (ViT/DeiT-style models with nn.MultiheadAttention "
             "blocks, as torchvision's ViT, timm's ViTs or Hugging Face ViT folders): where the CLS token or a clicked patch looks, per block "
             "and head, and attention rollout.")


@dataclass(frozen=True)
class Captured:
    """One frame's attention, as the capture job returns it (numpy, batch of one)."""
    state: object  # the ModelState it was captured with
    frame: object  # the Frame the model saw
    fit: str | None  # how it was fitted to the model (None: the model's own way)
    model_input: np.ndarray  # uint8 (H, W, 3): the picture under the maps
    layers: tuple[str, ...]  # module paths, in call order
    probabilities: tuple[np.ndarray, ...]  # (heads, N, N) per block
    rolled: np.ndarray  # (N, N): rollout through all the blocks, every row
    rolled_cls: np.ndarray  # (grid_h, grid_w): the engine's rollout map (the CLS row)
    prefix: int
    grid: tuple[int, int]
    skipped: tuple[str, ...]  # attention modules whose tokens are not the patch grid's (cross attention)
    ms: float


BUNDLED_VIT = "digits_vit"


def capture(state, frame, fit: str | None = None) -> Captured:
    """Run on the compute thread: the model on ``frame`` (fitted as the live pipeline fits it:
    the model's own way, or ``fit``) with its attention written out."""
    from dataclasses import replace

    import torch

    from deepvis.attribution.attention import capture_attention, rollout
    from deepvis.attribution.saliency import token_layout
    from deepvis.core.inputspec import Preprocessor

    layout = token_layout(state.probe)
    if layout is None:
        raise DeepvisError("no patch grid: this model has no token layers")
    prefix, gh, gw = layout
    start = time.perf_counter()
    model = state.model
    pre = model.preprocessor if fit is None else Preprocessor(replace(model.spec, fit=fit))
    fitted = pre.fit(frame.image)
    x = torch.from_numpy(pre.normalize(fitted))[None].to(model.device)
    # The picture under the maps is made here too: after a model switch the newest result still
    # holds the previous model's input.
    model_input = fitted if fitted.shape[2] == 3 else np.repeat(fitted[:, :, :1], 3, axis=2)
    _, attention = capture_attention(state.model.module, x)
    n = prefix + gh * gw
    layers, kept, skipped = [], [], []
    for path, p in zip(attention.layers, attention.probabilities):
        if p.ndim == 4 and tuple(p.shape[-2:]) == (n, n):
            layers.append(path)
            kept.append(p[:1].float().cpu())
        else:
            skipped.append(path)
    if not kept:
        shapes = ", ".join("x".join(map(str, p.shape[-2:])) for p in attention.probabilities)
        raise DeepvisError(f"the attention covers {shapes} tokens, the patch grid {gh}x{gw} with {prefix} prefix "
                           f"tokens {n}: nothing to show on the grid")
    rolled_cls = rollout(kept, prefix, (gh, gw))[0].numpy()
    # Every row of the rollout, for patch queries: the engine's recipe without taking the CLS row.
    rolled = None
    for a in kept:
        a = a.mean(1)
        a = 0.5 * torch.eye(n).expand_as(a) + 0.5 * a
        a = a / a.sum(-1, keepdim=True)
        rolled = a if rolled is None else a @ rolled
    dtype = np.float32 if sum(p.numel() for p in kept) * 4 <= STORE_FLOAT16_BYTES else np.float16
    probabilities = tuple(p[0].numpy().astype(dtype, copy=False) for p in kept)
    return Captured(state, frame, fit, model_input, tuple(layers), probabilities, rolled[0].numpy(), rolled_cls,
                    prefix, (gh, gw), tuple(skipped), (time.perf_counter() - start) * 1000)


def availability(state) -> str:
    """Why this model has no attention to show ("" when it has)."""
    if state is None:
        return "load a model first"
    from deepvis.attribution.attention import attention_modules
    from deepvis.attribution.saliency import token_layout

    name = state.model.name
    if state.model.signal is not None:
        return f"{name} takes a 1-D signal, not a picture. {NOT_A_VIT}"
    has_grid = token_layout(state.probe) is not None
    has_attention = bool(attention_modules(state.model.module))
    if has_grid and has_attention:
        return ""
    if has_grid:
        return (f"{name} has patch tokens but no attention module whose probabilities can be read here "
                f"(nn.MultiheadAttention, timm's or Hugging Face's). {NOT_A_VIT}")
    if has_attention:
        return (f"{name} has attention modules but no patch grid (no patch embedding before its tokens), so its "
                f"attention cannot be laid over the picture. {NOT_A_VIT}")
    return f"{name} is not a vision transformer. {NOT_A_VIT}"


def overlay(image: np.ndarray, grid_map: np.ndarray, size: tuple[int, int], opacity: float, colormap: str,
            smooth: bool, stretch: bool = False) -> np.ndarray:
    """``grid_map`` (patch grid) enlarged to ``size`` (H, W) and blended over ``image`` enlarged to it,
    coloured from 0 (or with ``stretch`` its minimum) to its maximum; where the map is weak the
    picture shows through."""
    cv2 = quiet_cv2()
    if stretch:
        grid_map = grid_map - grid_map.min()
    h, w = size
    base = cv2.resize(np.ascontiguousarray(image[:, :, :3]), (w, h), interpolation=cv2.INTER_NEAREST)
    values = cv2.resize(np.ascontiguousarray(grid_map, np.float32), (w, h),
                        interpolation=cv2.INTER_LINEAR if smooth else cv2.INTER_NEAREST)
    return render_saliency(values, "norm", colormap, image=base, opacity=opacity)


def patch_edges(n: int, size: int) -> list[int]:
    """Where each of ``n`` patches starts along ``size`` pixels (and where the last ends)."""
    return [round(i * size / n) for i in range(n + 1)]


class Thumbnails(QWidget):
    """Small maps in a grid, each with a caption; a click picks one."""

    picked = Signal(int)
    CAPTION = 16
    GAP = 6

    def __init__(self):
        super().__init__()
        self.images: list[QImage] = []
        self._buffers: list[np.ndarray] = []
        self.captions: list[str] = []
        self.selected: int | None = None
        self.placeholder = ""
        self.setMinimumSize(150, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def set_tiles(self, images: list[np.ndarray], captions: list[str], selected: int | None) -> None:
        self._buffers = [np.ascontiguousarray(im) for im in images]
        self.images = [QImage(b.data, b.shape[1], b.shape[0], b.strides[0], QImage.Format.Format_RGB888)
                       for b in self._buffers]
        self.captions, self.selected = list(captions), selected
        self.update()

    def clear(self, text: str = "") -> None:
        self.set_tiles([], [], None)
        self.placeholder = text
        self.update()

    def tile_rects(self) -> list[QRectF]:
        """The image part of each tile, in widget coordinates."""
        n = len(self.images)
        if not n:
            return []
        aspect = self.images[0].width() / max(1, self.images[0].height())
        width, height, gap, caption = self.width(), self.height(), self.GAP, self.CAPTION
        best = (0.0, 1)
        for cols in range(1, n + 1):
            rows = math.ceil(n / cols)
            tile_w = min((width - gap * (cols + 1)) / cols, ((height - gap * (rows + 1)) / rows - caption) * aspect)
            if tile_w > best[0]:
                best = (tile_w, cols)
        tile_w, cols = best
        tile_w = max(8.0, min(tile_w, 240.0))
        tile_h = tile_w / aspect
        return [QRectF(gap + (i % cols) * (tile_w + gap), gap + (i // cols) * (tile_h + caption + gap), tile_w, tile_h)
                for i in range(n)]

    def index_at(self, pos) -> int | None:
        for i, r in enumerate(self.tile_rects()):
            if r.adjusted(0, 0, 0, self.CAPTION).contains(pos):
                return i
        return None

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#1e1f22"))
        if not self.images:
            p.setPen(QColor("#8a8a8a"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            return
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        for i, (r, image, text) in enumerate(zip(self.tile_rects(), self.images, self.captions)):
            p.drawImage(r, image)
            if i == self.selected:
                p.setPen(QPen(QColor(255, 220, 0), 3))
                p.drawRect(r.adjusted(-2, -2, 2, 2))
            p.setPen(QColor("#e0e0e0") if i == self.selected else QColor("#a0a0a0"))
            p.drawText(QRectF(r.x() - 2, r.bottom() + 1, r.width() + 4, self.CAPTION),
                       Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, text)

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            i = self.index_at(event.position())
            if i is not None:
                self.picked.emit(i)


@register_view
class AttentionView(DrawnWhenShown, View):
    title = "Attention"
    order = 42

    _posted = Signal(object)  # (job, Captured | None, error)

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.captured: Captured | None = None
        self.query: tuple[int, int] | None = None  # the query patch (row, column); None: the CLS token
        self.picture: np.ndarray | None = None  # what the panel shows and "Save PNG..." writes
        self.scale = 1  # picture pixels per model-input pixel
        self._job = 0
        self._in_flight = False
        self._future = None  # the capture submitted last
        self._wanted = None  # the newest result waiting for a capture while one runs
        self._closed = False
        self._unavailable = "load a model first"
        self._last_error = ""
        self._broken = ""  # why capturing failed for this model (no more tries until another is loaded)

        self.block = QComboBox()
        self.block.setToolTip("an attention module (in the order the model calls them), or rollout through all")
        self.block.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.block.setMinimumContentsLength(26)
        self.head = QComboBox()
        self.head.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.head.setMinimumContentsLength(len(MEAN))
        self.head.setToolTip("one head of the block, or their mean (a thumbnail on the right picks one too)")
        self.cls = QPushButton("CLS query")
        self.cls.setToolTip("show where the CLS token looks (a click on a patch makes that patch the query)")
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(70)
        self.opacity.setFixedWidth(100)
        self.opacity.setToolTip("the map over the picture: 0 shows the picture alone")
        self.colormap = QComboBox()
        self.colormap.addItems([c for c in COLORMAPS if c not in ("gray", "redgreen", "coolwarm")])
        self.colormap.setCurrentText("inferno")
        self.stretch = QCheckBox("stretch")
        self.stretch.setToolTip("colours from the map's smallest weight to its largest (off: from 0, so a nearly "
                                "uniform map looks nearly uniform)")
        self.smooth = QCheckBox("smooth")
        self.smooth.setToolTip("interpolate between patch centres (off: one colour per patch, as the model sees it)")
        self.save_png_button = QPushButton("Save PNG...")
        self.save_png_button.setToolTip("the picture with the map, as shown")
        self.save_npy_button = QPushButton("Save NPY...")
        self.save_npy_button.setToolTip("the map shown, at the patch grid's resolution (float32, rows x columns)")
        self.hint = QLabel("")
        self.hint.setWordWrap(True)
        self.hint.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.panel = ImagePanel("Attention", session=session, placeholder=self._unavailable)
        self.panel.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.thumbs = Thumbnails()
        self.thumbs_caption = QLabel("Heads")
        self.thumbs_caption.setWordWrap(True)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.info.setStyleSheet("padding: 2px 4px;")
        self.readout = QLabel(" ")
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

        controls = QHBoxLayout()
        controls.addWidget(QLabel("block"))
        controls.addWidget(self.block)
        controls.addWidget(self.head)
        controls.addWidget(self.cls)
        controls.addStretch(1)
        controls.addWidget(self.save_png_button)
        controls.addWidget(self.save_npy_button)
        # In the save buttons' place while the model has no attention: one click to one that has,
        # as the Signals tab offers signals_wavenet.
        self.load_vit = QPushButton(f"Load {BUNDLED_VIT}")
        self.load_vit.setToolTip(f"the bundled {BUNDLED_VIT} names the digits in mosaics; it opens on them")
        self.load_vit.clicked.connect(lambda: self.session.load_model(BUNDLED_VIT))
        controls.addWidget(self.load_vit)
        look = QHBoxLayout()
        look.addWidget(QLabel("opacity"))
        look.addWidget(self.opacity)
        look.addWidget(self.colormap)
        look.addWidget(self.stretch)
        look.addWidget(self.smooth)
        look.addSpacing(12)
        look.addWidget(self.hint, 1)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.thumbs_caption)
        right_layout.addWidget(self.thumbs, 1)
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(self.panel)
        body.addWidget(right)
        body.setStretchFactor(0, 3)
        body.setStretchFactor(1, 2)
        body.setSizes([3000, 2000])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addLayout(look)
        layout.addWidget(body, 1)
        layout.addWidget(self.readout)
        layout.addWidget(self.info)

        self._posted.connect(self._captured)
        self.block.currentIndexChanged.connect(self._block_changed)
        self.head.currentIndexChanged.connect(lambda _i: self.redraw())
        self.cls.clicked.connect(lambda: self.set_query(None))
        self.opacity.valueChanged.connect(lambda _v: self.redraw())
        self.colormap.currentTextChanged.connect(lambda _t: self.redraw())
        self.smooth.toggled.connect(lambda _on: self.redraw())
        self.stretch.toggled.connect(lambda _on: self.redraw())
        self.save_png_button.clicked.connect(lambda: self._save_dialog("png"))
        self.save_npy_button.clicked.connect(lambda: self._save_dialog("npy"))
        self.panel.clicked.connect(self._clicked)
        self.panel.hovered.connect(self._hovered)
        self.thumbs.picked.connect(self._thumb_picked)
        session.modelChanged.connect(self._model_changed)
        session.resultReady.connect(self._on_result)
        self._set_enabled(False)

    # --- the model and its frames ---------------------------------------------------------

    def _set_enabled(self, on: bool) -> None:
        for w in (self.block, self.head, self.opacity, self.colormap, self.stretch, self.smooth, self.save_png_button,
                  self.save_npy_button):
            w.setEnabled(on)
        unavailable = bool(self._unavailable)
        for w in (self.save_png_button, self.save_npy_button):
            w.setVisible(not unavailable)
        self.load_vit.setVisible(unavailable)
        self.cls.setEnabled(on and self.query is not None)
        if on:
            self.head.setEnabled(not self.is_rollout())

    def _model_changed(self, state) -> None:
        self._job += 1  # a capture of the old model is dropped when it comes back
        self.set_working("")
        self._wanted = None
        self.captured, self.query, self.picture = None, None, None
        self._last_error = self._broken = ""
        self._unavailable = availability(state)
        self._fill_blocks(())
        if self._unavailable:
            self._show_unavailable()
            return
        from deepvis.attribution.attention import attention_modules

        self._fill_blocks(tuple(path for path, _ in attention_modules(state.model.module)))
        self.hint.setText("Where the CLS token looks, for the current frame. Click a patch: where that patch looks.")
        self.panel.clear("waiting for a frame...")
        self.panel.set_title("Attention")
        self.thumbs.clear("")
        self.info.setText("")
        self._set_enabled(False)
        if self.isVisible() and self.session.result is not None:
            self._request(self.session.result)

    def _show_unavailable(self) -> None:
        self.captured, self.picture = None, None
        state = self.session.state
        self.hint.setText(f"{state.model.name}: no attention to show" if state is not None else self._unavailable)
        self.panel.clear(self._unavailable)
        self.panel.set_title("Attention")
        self.panel.set_stale(False)
        self.thumbs.clear("a vision transformer's heads appear here, one map each")
        self.thumbs_caption.setText("Heads")
        self.info.setText("")
        self.readout.setText(" ")
        self._set_enabled(False)

    def _fill_blocks(self, layers: tuple[str, ...], heads: int = 0) -> None:
        """The block combo for these attention modules (kept, with its choice, when they are the same)."""
        current = [self.block.itemData(i) for i in range(self.block.count())]
        wanted = [*layers, ROLLOUT] if layers else []
        if current != wanted:
            index = self.block.currentIndex()
            self.block.blockSignals(True)
            self.block.clear()
            for i, path in enumerate(layers):
                self.block.addItem(f"{i}: {_short(path)}", path)
                self.block.setItemData(i, path, Qt.ItemDataRole.ToolTipRole)
            if layers:
                self.block.addItem(ROLLOUT, ROLLOUT)
                self.block.setItemData(len(layers), "the heads' mean plus the residual (0.5 A + 0.5 I), rows "
                                       "renormalized, multiplied through all the blocks", Qt.ItemDataRole.ToolTipRole)
                # The last block by default: its CLS row is what the classifier head reads.
                self.block.setCurrentIndex(index if 0 <= index < len(wanted) and current[:1] == wanted[:1]
                                           else len(layers) - 1)
            self.block.blockSignals(False)
        if heads and self.head.count() != heads + 1:
            index = self.head.currentIndex()
            self.head.blockSignals(True)
            self.head.clear()
            self.head.addItems([MEAN, *(f"head {h}" for h in range(heads))])
            self.head.setCurrentIndex(index if 0 <= index <= heads else 0)
            self.head.blockSignals(False)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        result = self.session.result
        if not self._unavailable and not self._broken and result is not None and not self._is_captured(result):
            self._request(result)

    def draw_missed(self) -> None:
        pass  # showEvent asks for a capture of the newest frame

    def _is_captured(self, result) -> bool:
        c = self.captured
        # The same Frame object: a mirrored frame keeps its serial but is a new picture.
        return (c is not None and c.state is self.session.state and c.frame is result.frame
                and c.fit == result.settings.fit)

    def _on_result(self) -> None:
        if self.hidden_now() or self._unavailable or self._broken:
            return
        result = self.session.result
        if result is None:
            return
        if self._is_captured(result):
            self.panel.set_stale(False)
            return
        if self.captured is not None:
            self.panel.set_stale(True)  # until the newest frame's capture is in
        self._request(result)

    def _request(self, result) -> None:
        """Capture the attention for ``result``'s frame: at once when no capture runs, else after
        it, and then only for the newest frame asked for meanwhile."""
        if self._closed:
            return
        if self._in_flight:
            self._wanted = result
            return
        self._wanted = None
        state, frame, fit = self.session.state, result.frame, result.settings.fit
        if state is None:
            return
        self._in_flight = True
        job = self._job
        if self.captured is None:
            self.hint.setText("capturing the attention of every block...")
            self.set_working("capturing the attention of every block...")

        def finish(future):
            try:
                self._posted.emit((job, *outcome(future)))
            except RuntimeError:  # the view was deleted with its window
                pass

        self._future = compute_thread().submit(capture, state, frame, fit)
        self._future.add_done_callback(finish)

    def _captured(self, value) -> None:
        job, captured, error = value
        self._in_flight = False
        self.set_working("")
        if self._closed:
            return
        if job == self._job:
            if captured is None:
                if error and error != self._last_error:  # said once, not for every frame of a camera
                    self._last_error = error
                    self.session.message.emit(f"attention: {error}")
                if error:  # it would fail on every frame: no more captures of this model
                    self._broken = f"the attention could not be captured: {error}"
                    self.captured, self.picture = None, None
                    self.hint.setText(self._broken)
                    self.panel.clear(self._broken)
                    self.thumbs.clear("")
                    self.info.setText("")
                    self._set_enabled(False)
            else:
                self._last_error = ""
                self._take(captured)
        wanted = self._wanted
        self._wanted = None
        if wanted is not None and self.isVisible() and not self._unavailable and not self._broken:
            newest = self.session.result or wanted
            if not self._is_captured(newest):
                self._request(newest)

    def _take(self, captured: Captured) -> None:
        self.captured = captured
        if self.query is not None and not (0 <= self.query[0] < captured.grid[0] and
                                           0 <= self.query[1] < captured.grid[1]):
            self.query = None
        self._fill_blocks(captured.layers, heads=captured.probabilities[0].shape[0])
        self._set_enabled(True)
        self.redraw()
        result = self.session.result
        self.panel.set_stale(result is not None and not self._is_captured(result))

    # --- what is shown --------------------------------------------------------------------

    def is_rollout(self) -> bool:
        return self.block.currentData() == ROLLOUT

    def block_index(self) -> int | None:
        """The block shown (None for rollout)."""
        return None if self.is_rollout() or self.block.currentIndex() < 0 else self.block.currentIndex()

    def head_index(self) -> int | None:
        """The head shown (None for the mean of the heads)."""
        return None if self.head.currentIndex() <= 0 else self.head.currentIndex() - 1

    def query_token(self) -> int:
        c = self.captured
        if self.query is None:
            return 0
        return c.prefix + self.query[0] * c.grid[1] + self.query[1]

    def token_row(self, block: int | None = None, head: int | None = None, rolled: bool = False) -> np.ndarray:
        """The query's attention over all N tokens (prefix tokens first), float32."""
        c, q = self.captured, self.query_token()
        if rolled:
            return np.asarray(c.rolled[q], np.float32)
        p = c.probabilities[block]
        return np.asarray(p[:, q], np.float32).mean(0) if head is None else np.asarray(p[head, q], np.float32)

    def grid_map(self, block: int | None = None, head: int | None = None, rolled: bool = False) -> np.ndarray:
        """The query's attention over the patches, on the patch grid (grid_h, grid_w) float32."""
        c = self.captured
        if rolled and self.query is None:
            return np.asarray(c.rolled_cls, np.float32)  # the engine's rollout, as the saliency pane has it
        return self.token_row(block, head, rolled)[c.prefix:].reshape(c.grid)

    def current_map(self) -> np.ndarray | None:
        """The map shown (what Save NPY writes), or None before the first capture."""
        if self.captured is None or self.block.currentIndex() < 0:
            return None
        return self.grid_map(self.block_index(), self.head_index(), rolled=self.is_rollout())

    def current_row(self) -> np.ndarray:
        return self.token_row(self.block_index(), self.head_index(), rolled=self.is_rollout())

    def redraw(self) -> None:
        c = self.captured
        if c is None or self._unavailable:
            return
        self.head.setEnabled(not self.is_rollout())
        self.cls.setEnabled(self.query is not None)
        grid_map = self.current_map()
        h, w = c.model_input.shape[:2]
        s = self.scale = max(1, math.ceil(PICTURE_SIDE / max(h, w)))
        picture = overlay(c.model_input, grid_map, (h * s, w * s), *self._look())
        rows, cols = patch_edges(c.grid[0], h * s), patch_edges(c.grid[1], w * s)
        if min(h * s / c.grid[0], w * s / c.grid[1]) >= 12:  # big patches: faint borders make them countable
            for y in rows[1:-1]:
                picture[y] = (picture[y] * GRID_SHADE).astype(np.uint8)
            for x in cols[1:-1]:
                picture[:, x] = (picture[:, x] * GRID_SHADE).astype(np.uint8)
        if self.query is not None:
            r, q = self.query
            _outline(picture, rows[r], rows[r + 1] - 1, cols[q], cols[q + 1] - 1, OUTLINE,
                     3 if s * min(h / c.grid[0], w / c.grid[1]) >= 24 else 2)
        self.picture = np.ascontiguousarray(picture)
        # The picture is enlarged: clicks still come back in model-input pixels.
        self.panel.data = self.picture
        self.panel.canvas.show_rgb(self.picture, scale=1 / s, shape=(h, w))
        self.panel.set_title(f"{self._what()} · query {self._query_words()}")
        self.panel.setToolTip(f"the model input ({w}x{h}) under the query's attention over its {c.grid[0]}x{c.grid[1]} "
                              f"patches; click a patch to make it the query")
        self._draw_thumbs()
        self.info.setText(self.describe())
        if self.query is None:
            self.hint.setText("Where the CLS token looks in the current frame. Click a patch: where that patch looks. "
                              "A thumbnail picks a head.")
        else:
            self.hint.setText(f"Where patch (row {self.query[0]}, col {self.query[1]}) looks (outlined). Click another "
                              f"patch, or this one again or CLS query for the CLS token.")

    def _look(self) -> tuple:
        return (self.opacity.value() / 100.0, self.colormap.currentText(), self.smooth.isChecked(),
                self.stretch.isChecked())

    def _what(self) -> str:
        if self.is_rollout():
            return "rollout through all blocks"
        head = self.head_index()
        return f"block {self.block_index()} · " + (MEAN if head is None else f"head {head}")

    def _query_words(self) -> str:
        return "CLS token" if self.query is None else f"patch (row {self.query[0]}, col {self.query[1]})"

    def _draw_thumbs(self) -> None:
        c = self.captured
        h, w = c.model_input.shape[:2]
        t = THUMB_SIDE / max(h, w)
        size = (max(1, round(h * t)), max(1, round(w * t)))
        maps, captions = [], []
        if self.is_rollout():
            for b in range(len(c.layers)):
                maps.append(self.grid_map(b, None))
                captions.append(f"block {b}")
            maps.append(self.grid_map(rolled=True))
            captions.append("rollout")
            selected = len(c.layers)
            self.thumbs_caption.setText("Each block's mean of heads for this query, and the rollout (click a block "
                                        "to show it)")
        else:
            b = self.block_index()
            maps.append(self.grid_map(b, None))
            captions.append("mean")
            for head in range(c.probabilities[b].shape[0]):
                maps.append(self.grid_map(b, head))
                captions.append(f"head {head}")
            head = self.head_index()
            selected = 0 if head is None else head + 1
            self.thumbs_caption.setText(f"Heads of block {b} for this query, each scaled to its own maximum "
                                        f"(click one to show it)")
        images = [overlay(c.model_input, m, size, *self._look()) for m in maps]
        self.thumbs.set_tiles(images, [f"{text} · {float(m.max()):.3g}" for text, m in zip(captions, maps)],
                              selected)

    def describe(self) -> str:
        c = self.captured
        row = self.current_row()
        grid_map = self.current_map()
        n = row.shape[0]
        r, col = np.unravel_index(int(np.argmax(grid_map)), grid_map.shape)
        to_prefix = float(row[:c.prefix].sum())
        to_patches = float(row[c.prefix:].sum())
        total = to_prefix + to_patches or 1.0
        if self.is_rollout():
            what = (f"<b>rollout</b> through {len(c.layers)} block{'s' if len(c.layers) > 1 else ''} (heads' mean, "
                    f"0.5 residual)")
        else:
            b, head = self.block_index(), self.head_index()
            heads = c.probabilities[b].shape[0]
            what = (f"<b>block {b}</b> ({c.layers[b]}) · " +
                    (f"mean of its {heads} heads" if head is None else f"head {head} of {heads}"))
        lines = [f"{what} · query <b>{self._query_words()}</b>"]
        peak = (f"largest weight on a patch <b>{float(grid_map.max()):.3g}</b> at (row {r}, col {col}); "
                f"uniform would be {1 / n:.3g} (1/{n} tokens)")
        if self.query is not None and tuple(self.query) == (int(r), int(col)):
            peak += " · the patch looks mostly at itself"
        lines.append(peak)
        if c.prefix:
            split = f"<b>{to_prefix / total:.1%}</b> of the query's attention goes to the {c.prefix} prefix token" \
                    f"{'s' if c.prefix > 1 else ''}"
            if c.prefix > 1:
                split += (f" (CLS {float(row[0]) / total:.1%}, the other {c.prefix - 1} (registers or distillation) "
                          f"{float(row[1:c.prefix].sum()) / total:.1%})")
            split += f", <b>{to_patches / total:.1%}</b> to the {c.grid[0] * c.grid[1]} patches"
            if self.is_rollout():
                split += " (shares of the rolled-out flow, residual included)"
            lines.append(split)
        notes = f"captured in {c.ms:.0f} ms on frame {c.frame.serial}"
        if c.skipped:
            notes += f"; left out (tokens not on the patch grid): {', '.join(c.skipped)}"
        if c.probabilities[0].dtype == np.float16:
            notes += "; kept in half precision (large model)"
        lines.append(notes)
        return "<br>".join(lines)

    # --- the mouse and the controls -------------------------------------------------------

    def patch_at(self, x: float, y: float) -> tuple[int, int] | None:
        """The patch under model-input pixel (x, y)."""
        c = self.captured
        if c is None:
            return None
        h, w = c.model_input.shape[:2]
        if not (0 <= x < w and 0 <= y < h):
            return None
        return min(c.grid[0] - 1, int(y * c.grid[0] / h)), min(c.grid[1] - 1, int(x * c.grid[1] / w))

    def _clicked(self, x: float, y: float) -> None:
        patch = self.patch_at(x, y)
        if patch is not None:
            self.set_query(None if patch == self.query else patch)  # a second click goes back to CLS

    def set_query(self, patch: tuple[int, int] | None) -> None:
        self.query = None if patch is None else (int(patch[0]), int(patch[1]))
        self.redraw()

    def _hovered(self, x: float, y: float) -> None:
        patch = self.patch_at(x, y) if x >= 0 else None
        grid_map = self.current_map()
        if patch is None or grid_map is None:
            self.readout.setText(" ")
            return
        value, peak = float(grid_map[patch]), float(grid_map.max()) or 1.0
        self.readout.setText(f"patch (row {patch[0]}, col {patch[1]}): {value:.4g}, {value / peak:.0%} of the "
                             f"largest · click: make it the query")

    def _block_changed(self, _index: int) -> None:
        self.redraw()

    def _thumb_picked(self, index: int) -> None:
        c = self.captured
        if c is None:
            return
        if self.is_rollout():
            self.block.setCurrentIndex(index)  # a block, or the rollout itself (the last tile)
            self.head.setCurrentIndex(0)
        else:
            self.head.setCurrentIndex(index)  # tile 0 is the mean

    # --- export ---------------------------------------------------------------------------

    def _save_dialog(self, kind: str) -> None:
        if kind == "npy":
            save_dialog(self, "Save attention map", "deepvis-attention.npy", "NumPy (*.npy)", self.save_to)
        else:
            save_dialog(self, "Save attention picture", "deepvis-attention.png", "PNG (*.png)", self.save_to)

    def save_to(self, path: str) -> None:
        """The picture as shown, or with a .npy name the map at the patch grid's resolution."""
        def grid_map() -> np.ndarray | None:
            shown = self.current_map()
            return None if shown is None else shown.astype(np.float32)

        save_picture_or_array(self.session, path, self.picture, grid_map, "no attention captured yet")

    def shutdown(self) -> None:
        self._closed = True
        self._job += 1  # a capture still running is dropped when it comes back
        self._wanted = None
        if self._future is not None:
            self._future.cancel()  # one still queued never runs


def _short(path: str, limit: int = 40) -> str:
    """A module path without the parts every block shares: "encoder_layer_3.self_attention"."""
    parts = path.split(".")
    text = ".".join(parts[-2:]) if len(parts) > 1 else path
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


def _outline(image: np.ndarray, y0: int, y1: int, x0: int, x1: int, colour, width: int) -> None:
    """A rectangle's border drawn inside [y0, y1] x [x0, x1] (inclusive)."""
    h, w = image.shape[:2]
    y0, y1, x0, x1 = max(0, y0), min(h - 1, y1), max(0, x0), min(w - 1, x1)
    image[y0:min(y0 + width, y1 + 1), x0:x1 + 1] = colour
    image[max(y1 - width + 1, y0):y1 + 1, x0:x1 + 1] = colour
    image[y0:y1 + 1, x0:min(x0 + width, x1 + 1)] = colour
    image[y0:y1 + 1, max(x1 - width + 1, x0):x1 + 1] = colour
