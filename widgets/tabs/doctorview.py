"""The Doctor tab: the checkpoint doctor (deepvis.doctor) on the window's model, run over its
own data or a folder, cancellable, with the findings first and every layer in a table; and
two more modes, Compare and Timeline (widgets/tabs/checkpointpages.py): the live frame
through another checkpoint, or through each checkpoint of a training run.

Clicking a finding or a table row selects that layer in every view (the activations grid, the
unit pane, saliency); a preprocessing that reads the input better than the declared one is
applied to the running model in one click, for the session. The first time the tab is seen it
examines the model over its own bundled data (the digits, or the bundled photos).
"""

import threading

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QHBoxLayout, QHeaderView, QLabel,
                               QListWidget, QListWidgetItem, QProgressBar, QPushButton, QSizePolicy, QSpinBox,
                               QSplitter, QStackedWidget, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from deepvis.core.zoo import sample_kind
from deepvis.errors import DeepvisError
from deepvis.io.datasets import Dataset, digits_dataset, folder_dataset, samples_dataset
from deepvis.live.computethread import compute_thread, outcome
from deepvis.widgets.tabs.checkpointpages import ComparePage, TimelinePage
from deepvis.widgets.window.views import View, register_view

DIGITS = "digits (scikit-learn, 1,797)"
PHOTOS = "bundled photos and crops"
FOLDER = "folder..."
MODES = ("Examine", "Compare", "Timeline")
FLAG_COLOUR = QColor("#f0a08a")
ADVICE_COLOUR = QColor("#b8b8c0")
FLAGGED_ROW = QColor(120, 50, 35)
COLUMNS = ("layer", "type", "dead", "saturated", "non-finite", "mean", "std", "flags")


@register_view
class DoctorView(View):
    title = "Doctor"
    order = 48

    _posted_progress = Signal(int, str, int, int)  # job, stage, done, total
    _posted_done = Signal(int, object, str)  # job, report or None, error ("" when stopped)

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.report: dict | None = None
        self.folder: str | None = None
        self._cancel: threading.Event | None = None
        self._job = 0
        self._first_look_done = False

        self.data = QComboBox()
        self.data.addItems([DIGITS, PHOTOS, FOLDER])
        self.data.setToolTip("the inputs to examine: a folder is labelled by its first-level subfolders")
        self.data.activated.connect(self._data_picked)
        self.limit = QSpinBox()
        self.limit.setRange(0, 1_000_000)
        self.limit.setSpecialValueText("all inputs")
        self.limit.setPrefix("first ")
        self.limit.setToolTip("examine only the first N inputs (0: all of them)")
        self.run_button = QPushButton("Examine")
        self.run_button.clicked.connect(lambda: self.start())
        self.stop = QPushButton("Stop")
        self.stop.setEnabled(False)
        self.stop.clicked.connect(self.halt)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.hide()
        controls = QHBoxLayout()
        for widget in (QLabel("data"), self.data, self.limit, self.run_button, self.stop, self.progress):
            controls.addWidget(widget)
        controls.addStretch(1)

        self.summary = QLabel("The doctor runs the model over data and points at what is wrong: dead or saturated "
                              "layers, NaN, BatchNorm statistics, input preprocessing, weight spectra.")
        self.summary.setWordWrap(True)
        self.summary.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.fix = QPushButton()
        self.fix.hide()
        self.fix.clicked.connect(self._fix_preprocessing)
        self.findings = QListWidget()
        self.findings.setWordWrap(True)  # a finding is a sentence: wrapped, never cut
        self.findings.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.findings.setToolTip("click a finding to select its layer in every view")
        self.findings.itemClicked.connect(self._finding_clicked)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)  # long names elide, every column shows
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(1, self.fontMetrics().horizontalAdvance("Conv2dStaticSame") + 12)
        header.setMinimumSectionSize(self.fontMetrics().horizontalAdvance("layer") + 16)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.cellClicked.connect(lambda row, _column: self._select_layer(self.table.item(row, 0).text()))
        split = QSplitter(Qt.Orientation.Vertical)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.findings)
        top_layout.addWidget(self.fix, 0, Qt.AlignmentFlag.AlignLeft)
        split.addWidget(top)
        split.addWidget(self.table)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 4)
        split.setSizes([130, 520])  # a few findings above, the layers below

        examine = QWidget()
        examine_layout = QVBoxLayout(examine)
        examine_layout.setContentsMargins(0, 0, 0, 0)
        examine_layout.addLayout(controls)
        examine_layout.addWidget(self.summary)
        examine_layout.addWidget(split, 1)
        self.compare = ComparePage(session)
        self.timeline = TimelinePage(session)
        self.pages = QStackedWidget()
        for page in (examine, self.compare, self.timeline):
            self.pages.addWidget(page)
        self.mode = QComboBox()
        self.mode.addItems(MODES)
        self.mode.setToolTip("Examine: the doctor's report; Compare: the live frame through this model and another "
                             "checkpoint; Timeline: through each checkpoint of a training run")
        self.mode.currentIndexChanged.connect(self.pages.setCurrentIndex)
        head = QHBoxLayout()
        head.addWidget(QLabel("mode"))
        head.addWidget(self.mode)
        head.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(head)
        layout.addWidget(self.pages, 1)

        self._posted_progress.connect(self._show_progress)
        self._posted_done.connect(self._finished)
        session.modelChanged.connect(self._model_changed)

    # --- data ------------------------------------------------------------------------------

    def _model_changed(self, state) -> None:
        kind = sample_kind(state.model.name)
        if kind == "photos" and state.model.spec.channels == 3:
            self.data.setCurrentText(PHOTOS)
        elif kind == "digits":
            self.data.setCurrentText(DIGITS)
        if self.report is not None and self.report.get("model") != state.model.name:
            self.summary.setText(f"The report below is of {self.report['model']}; Examine for {state.model.name}.")
        self._first_look()

    def _data_picked(self, index: int) -> None:
        if self.data.itemText(index) == FOLDER:
            path = QFileDialog.getExistingDirectory(self, "Folder of inputs (subfolders are labels)")
            if path:
                self.set_folder(path)
            else:
                self.data.setCurrentText(DIGITS)

    def set_folder(self, path: str) -> None:
        self.folder = path
        label = f"folder: {path}"
        if self.data.findText(label) < 0:
            self.data.insertItem(self.data.count() - 1, label)
        self.data.setCurrentText(label)

    def dataset(self) -> Dataset:
        text = self.data.currentText()
        if text == DIGITS:
            return digits_dataset()
        if text == PHOTOS:
            return samples_dataset()
        if text.startswith("folder: "):
            return folder_dataset(text[len("folder: "):])
        raise DeepvisError("pick the data to examine")

    # --- the run ---------------------------------------------------------------------------

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._first_look()

    def _first_look(self) -> None:
        """The first time the tab is seen, the model is examined over its own bundled data."""
        state = self.session.state
        if self._first_look_done or not self.isVisible() or not self.session.autostart or state is None or \
                self._cancel is not None or self.report is not None:
            return
        self._first_look_done = True
        kind = sample_kind(state.model.name)
        if state.model.signal is not None or kind not in ("digits", "photos"):
            self.summary.setText(f"Pick a folder of {state.model.name}'s own inputs (labelled by subfolder for an "
                                 f"accuracy) and press Examine.")
            return
        self.start()

    def start(self) -> None:
        state = self.session.state
        if state is None:
            self.session.message.emit("load a model first")
            return
        try:
            dataset = self.dataset()
        except DeepvisError as exc:
            self.session.message.emit(str(exc))
            return
        self.halt()
        self._job += 1
        job = self._job
        cancel = self._cancel = threading.Event()
        limit = self.limit.value() or None
        self.run_button.setEnabled(False)
        self.stop.setEnabled(True)
        self.progress.setRange(0, 0)
        self.progress.setFormat("starting...")
        self.progress.show()
        self.set_working(f"examining {state.model.name} over {dataset.name}...")
        compute = compute_thread()

        def progress(stage, done, total):
            self._posted_progress.emit(job, stage, done, total)
            compute.breathe()  # the live view takes a turn between batches

        def work():
            from deepvis.doctor.diagnose import diagnose

            return diagnose(state.model, dataset, limit=limit, probe=state.probe, progress=progress, cancel=cancel)

        future = compute.submit(work)
        future.add_done_callback(lambda f: self._posted_done.emit(job, *outcome(f)))

    def halt(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def _show_progress(self, job: int, stage: str, done: int, total: int) -> None:
        if job != self._job:
            return
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.progress.setFormat(f"{stage} %v/%m")

    def _finished(self, job: int, report, error: str) -> None:
        if job != self._job:
            return
        self._cancel = None
        self.run_button.setEnabled(True)
        self.stop.setEnabled(False)
        self.progress.hide()
        self.set_working("")
        if report is None:
            if error:
                self.session.message.emit(f"doctor: {error}")
            self.summary.setText("Stopped." if not error else f"Could not examine the model: {error}")
            return
        report.pop("thumbnails", None)
        self.report = report
        self._show(report)

    # --- the report ------------------------------------------------------------------------

    def _show(self, report: dict) -> None:
        parts = [f"{report['model']} over {report['inputs']:,} inputs of {report['data']} in "
                 f"{report['seconds']['total']:.1f} s"]
        if report["classes"] is not None:
            parts.append(f"accuracy {report['classes']['accuracy']:.1%}")
        flags, advice = report["flags"], report["advisories"]
        parts.append(f"{len(flags)} finding{'s' * (len(flags) != 1)}" if flags else "nothing flagged")
        if advice:
            parts.append(f"{len(advice)} advisor{'ies' if len(advice) != 1 else 'y'}")
        self.summary.setText(" · ".join(parts) + "".join(f"\n{note}" for note in report["notes"]))
        self.findings.clear()
        for entry, colour, kind in [*((f, FLAG_COLOUR, "") for f in flags),
                                    *((a, ADVICE_COLOUR, "advisory: ") for a in advice)]:
            item = QListWidgetItem(f"{kind}{entry['where']}: {entry['what']}")
            item.setForeground(QBrush(colour))
            item.setData(Qt.ItemDataRole.UserRole, entry["where"])
            self.findings.addItem(item)
        if not flags and not advice:
            self.findings.addItem("Nothing flagged: no dead, saturated or non-finite layer, BatchNorm statistics "
                                  "that match the data, the declared preprocessing reads best.")
        best = report["preprocessing"]["best"]
        self.fix.setVisible(best not in (None, "declared"))
        if best not in (None, "declared"):
            self.fix.setText(f"Read the input as {best} for this session")
        self.table.setRowCount(len(report["layers"]))
        for r, row in enumerate(report["layers"]):
            values = (row["name"], row["type"], _share(row["dead_fraction"]), _share(row["saturated_fraction"]),
                      _share(row["nonfinite_fraction"] or None), _number(row["mean"]), _number(row["std"]),
                      ", ".join(row["flags"]))
            for c, value in enumerate(values):
                item = QTableWidgetItem(value)
                if c >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if row["flags"]:
                    item.setBackground(QBrush(FLAGGED_ROW))
                self.table.setItem(r, c, item)

    def _finding_clicked(self, item: QListWidgetItem) -> None:
        where = item.data(Qt.ItemDataRole.UserRole)
        if where:
            self._select_layer(where)

    def _select_layer(self, name: str) -> None:
        state = self.session.state
        if state is None:
            return
        if name in state.probe:
            self.session.set_layer(name)
            for r in range(self.table.rowCount()):
                if self.table.item(r, 0).text() == name:
                    self.table.selectRow(r)
                    break
        elif name != "input":
            self.session.message.emit(f"{name} is not a layer of {state.model.name} in view (a weight or module)")

    def _fix_preprocessing(self) -> None:
        if self.report is not None:
            best = self.report["preprocessing"]["best"]
            self.fix.hide()
            self.session.fix_preprocessing(best)

    def shutdown(self) -> None:
        self.halt()


def _share(value) -> str:
    return "" if value is None else f"{value:.0%}"


def _number(value) -> str:
    return "" if value is None else f"{value:.3g}"
