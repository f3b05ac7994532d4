"""The ``gui`` command: the desktop app, or a screenshot of it."""

from deepvis.cli.common import add_allow_truncated, add_model, model_options, positive_int, whole
from deepvis.core.defaults import TAB_TITLES
from deepvis.errors import DeepvisError
from deepvis.io.outputs import IMAGE, check_output


def register(sub) -> None:
    p = sub.add_parser("gui", help="open the app (the default without a command)")
    add_model(p)
    add_allow_truncated(p)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--input", metavar="PATH",
                        help="image, folder of images, video, or 'pattern' (default: the model's own kind of "
                             "bundled input: photos, digits, mosaics, scenes or a recording; File > Samples)")
    source.add_argument("--camera", type=whole(0), metavar="N", help="camera index")
    p.add_argument("--atlas", metavar="ATLAS", help="open an atlas (deepvis atlas build) in the Embedding tab")
    p.add_argument("--tab", type=tab_title, choices=TAB_TITLES, metavar="NAME",
                   help=f"tab to show first, in any case: {', '.join(TAB_TITLES)} "
                        "(default: Activations; Signals for a 1-D model, Embedding with --atlas)")
    p.add_argument("--saliency", metavar="METHOD",
                   help="start with this back-prop method in the saliency pane (see deepvis saliency --help)")
    p.add_argument("--screenshot", metavar="PNG", help="save the window after --after-frames results and quit")
    p.add_argument("--after-frames", type=positive_int, default=3, metavar="N",
                   help="live results to wait for before --screenshot (default: %(default)s)")
    p.set_defaults(func=cmd_gui, on_compute_thread=False)


def tab_title(text: str) -> str:
    """A --tab name in any case as its title; anything else is left for argparse's choices to refuse."""
    return {title.lower(): title for title in TAB_TITLES}.get(text.strip().lower(), text)


def cmd_gui(args):
    try:
        from deepvis.widgets.window.app import run_gui
    except ImportError as exc:
        raise DeepvisError(f"the GUI needs PySide6 and pyqtgraph ({exc})") from None
    if args.screenshot:
        check_output(args.screenshot, IMAGE, "--screenshot")
    options = model_options(args)
    input_spec = f"camera:{args.camera}" if args.camera is not None else args.input
    # Explicit arguments describe a fresh session; the last session is restored only for a bare start.
    restore = args.model is None and input_spec is None and not args.screenshot
    code = run_gui(model=args.model, weights=args.weights, input_spec=input_spec, tab=args.tab,
                   model_options=options, screenshot=args.screenshot, after_frames=args.after_frames,
                   restore=restore, saliency=args.saliency, atlas=args.atlas)
    if code:
        raise DeepvisError("the window closed with an error")
