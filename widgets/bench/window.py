"""The window the GUI benchmarks measure: the app as a user starts it, on a clip played as
fast as the model runs, with no saved session read or written."""

from deepvis.bench.engine import default_bench_video


def open_bench_window(model_spec=None, input_spec=None, weights=None, model_options=None, **window_options):
    """(app, window, collector, input_spec): keep ``collector`` alive while the window runs."""
    from deepvis.widgets.window.app import check_display

    check_display()
    from deepvis.widgets.window import qtenv  # noqa: F401
    from PySide6.QtWidgets import QApplication

    from deepvis.widgets.window.app import collect_garbage_on_gui_thread
    from deepvis.widgets.window.mainwindow import MainWindow
    from deepvis.widgets.window.theme import apply_dark_theme

    input_spec = str(input_spec or default_bench_video())
    app = QApplication.instance() or QApplication([])
    apply_dark_theme(app)
    collector = collect_garbage_on_gui_thread()
    window = MainWindow(model=model_spec, weights=weights, input_spec=None, restore=False, persist=False,
                        model_options=dict(model_options or {}), autostart=False, **window_options)
    window.session.open_input(input_spec, realtime=False)
    window.resize(1440, 900)
    window.show()
    return app, window, collector, input_spec
