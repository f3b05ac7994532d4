"""``fetch``: zoo weights downloaded ahead of time into their library's cache, or listed."""

import sys

from deepvis.cli.common import clear_progress_line, download_bar, print_json
from deepvis.errors import DeepvisError


def register(sub) -> None:
    p = sub.add_parser("fetch", help="download zoo weights into their library's cache ahead of time; without "
                                     "names, list the zoo's weights and where they are")
    p.add_argument("names", nargs="*", metavar="NAME", help="zoo names (deepvis models) or timm:NAME")
    p.add_argument("--all", action="store_true", help="every zoo model with published weights (the total size "
                                                      "is said first)")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=cmd_fetch)


def weights_state(entry) -> tuple[str, str | None]:
    """("bundled" | "cache" | "download" | "missing", the file when it is here)."""
    try:
        path = entry.weights_file()
    except DeepvisError:
        return ("download" if entry.fetch is not None else "missing"), None
    return ("cache" if entry.fetch is not None else "bundled"), str(path)


def cmd_fetch(args):
    from deepvis.core.download import progress_to
    from deepvis.core.zoo import get_entry, zoo

    if args.all and args.names:
        raise DeepvisError("give zoo names or --all, not both")
    if not args.all and not args.names:
        rows = []
        for entry in zoo().values():
            state, path = weights_state(entry)
            rows.append({"name": entry.name, "weights": state, "file": path, "download_mb": entry.download_mb})
        from deepvis.core.timmsource import cached_timm_models

        rows += [{"name": name, "weights": "cache", "file": None, "download_mb": round(mb, 1)}
                 for name, mb in cached_timm_models()]
        if args.json:
            print_json(rows)
            return
        width = max(len(r["name"]) for r in rows)
        for r in rows:
            size = f"{r['download_mb']:.1f} MB" if r["download_mb"] else ""
            print(f"{r['name']:<{width}}  {r['weights']:<8}  {size:>9}  {r['file'] or ''}")
        return
    timm_names = [n for n in args.names if n.lower().startswith("timm:")]
    entries = ([e for e in zoo().values() if e.fetch is not None] if args.all else
               [_entry(get_entry, n) for n in args.names if n not in timm_names])
    for entry in entries:
        if entry.fetch is None:
            raise DeepvisError(f"{entry.name}'s weights ship with deepvis or its packages: nothing to download")
    missing = [e for e in entries if weights_state(e)[0] == "download"]
    if args.all:
        total = sum(e.download_mb or 0 for e in missing)
        print(f"{len(entries)} zoo models with published weights, {len(missing)} not in the cache: "
              f"{total:,.0f} MB to download")
    tty = sys.stderr.isatty()
    for entry in entries:
        try:
            with progress_to(download_bar if tty else None):
                path = entry.fetch()
        finally:  # the bar's line is cleared before the result or the error line
            if tty:
                clear_progress_line()
        print(f"{entry.name}: {'downloaded to' if entry in missing else 'already in the cache:'} {path}")
    for name in timm_names:  # Hugging Face's own progress bars show on the terminal
        from deepvis.core.timmsource import fetch_timm

        where, had = fetch_timm(name)
        print(f"{name}: {'already in the cache:' if had else 'downloaded to'} {where}")


def _entry(get_entry, name):
    entry = get_entry(name)
    if entry is None:
        raise DeepvisError(f"unknown model {name!r}: deepvis fetch takes zoo names (deepvis models) and timm:NAME")
    return entry
