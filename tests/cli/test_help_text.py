"""Every option of every command says what it does and, where it has one, its default; `gui --tab`
lists and checks the tab names without importing Qt."""

import argparse
import re

import pytest

from deepvis.cli import build_parser
from deepvis.core.defaults import TAB_TITLES

# Actions whose default only means "not given": a flag that is off, a count that is zero.
_FLAGS = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._StoreConstAction,
          argparse._AppendConstAction, argparse._CountAction, argparse._HelpAction, argparse._VersionAction)


def _options(parser, command="deepvis"):
    """(command, parser, action) for every argument of every command and subcommand."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{command} {name}")
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield command, parser, action


def _states_default(help_text: str, default) -> bool:
    # "(default: 16)", "(default auto)", "... default: tsne)": the word, then the value itself.
    return re.search(rf"\bdefault:?\s+{re.escape(str(default))}(?![\w.])", help_text) is not None


def test_every_option_has_help_that_states_its_default():
    missing, silent = [], []
    options = list(_options(build_parser()))
    assert len(options) > 200  # every command's options were walked, the subcommands' too
    for command, parser, action in options:
        if action.help == argparse.SUPPRESS:
            continue  # hidden on purpose (test hooks such as --min-size)
        name = f"{command} {'/'.join(action.option_strings) or action.dest}"
        if not action.help or not action.help.strip():
            missing.append(name)
            continue
        default = action.default
        if default is None or default is argparse.SUPPRESS or isinstance(action, _FLAGS) or default == []:
            continue
        text = parser._get_formatter()._expand_help(action)  # what --help prints, %(default)s filled in
        if not _states_default(text, default):
            silent.append(f"{name} (default {default!r}): {text}")
    assert not missing, "options without help:\n" + "\n".join(missing)
    assert not silent, "help that does not state the default:\n" + "\n".join(silent)


def test_every_value_states_its_domain_and_values_outside_it_are_refused(capsys):
    """The one rule for option values: a number's domain is its type's, written at the end of its
    help; a value outside is exit 2 before any work; every other value names its form (choices,
    or a metavar such as FILE, HxW, NAME)."""
    from deepvis.cli import _run

    bare, unsaid, formless = [], [], []
    numbers = 0
    for command, _, action in _options(build_parser()):
        if not action.option_strings or action.nargs == 0 or action.help == argparse.SUPPRESS:
            continue
        name = f"{command} {action.option_strings[0]}"
        if action.type in (int, float) and not action.choices:
            bare.append(name)  # int or float: -3 frames, nan seconds and 1e9 octaves would pass
        domain = getattr(action.type, "domain", None)
        if domain is not None:
            numbers += 1
            if not action.help.endswith(f"[{domain}]"):
                unsaid.append(f"{name}: {action.help}")
        elif not action.choices and action.metavar is None:
            formless.append(name)
    assert numbers > 40
    assert not bare, f"numbers without a domain: {bare}"
    assert not unsaid, "domains not written into the help:\n" + "\n".join(unsaid)
    assert not formless, f"values whose form is not named: {formless}"
    for argv, said in ((["dream", "--model", "digits_cnn", "--input", "x.png", "--layer", "conv1", "--out", "d.png",
                         "--octaves", "13"], "from 1 to 12"),
                       (["embed", "--data", "digits", "--out", "e.png", "--perplexity", "0.5"], "from 1 to 1000"),
                       (["predict", "--model", "digits_cnn", "--input", "x.png", "--init-seed", "-1"], "from 0"),
                       (["sample", "--count", "1025", "--out", "s.png"], "1,024")):
        with pytest.raises(SystemExit) as exit_:
            _run(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_.value.code == 2 and len(err) == 1 and err[0].startswith("error: ") and said in err[0], err


def test_gui_help_lists_the_tab_names(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["gui", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert ", ".join(TAB_TITLES) in text


@pytest.mark.parametrize("given,title", [("filters", "Filters"), ("RECEPTIVE FIELD", "Receptive field"),
                                         ("3-d", "3-D"), ("Signals", "Signals")])
def test_gui_tab_takes_a_title_in_any_case(given, title):
    assert build_parser().parse_args(["gui", "--tab", given]).tab == title


def test_gui_tab_refuses_an_unknown_name_with_one_error_line(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["gui", "--tab", "Nope"])
    assert exc.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "'Nope'" in lines[0], lines
    assert "Receptive field" in lines[0]
