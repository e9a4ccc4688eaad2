"""The one-table contract: ``flask db`` and ``manage.py db`` are generated from ``spec.py``.

- ``--help`` parity: for every command of :func:`flask_migrate.spec.command_specs`, the help
  that Flask's ``flask`` CLI (click) and Flask-Script's ``Manager.handle`` (argparse) print is
  parsed into structured form (option strings, metavars, help texts, positional arguments and
  their help, description, usage) and compared: with each other, and with the table.
- The table itself: every API parameter has an entry, unknown parameters and flags that
  default to True are refused, defaults come from the API signature, and a command's help is
  the first paragraph of its docstring.
- Usage errors exit 2 on both front-ends.

Each test runs on the stack of the interpreter running pytest (click 7 + Flask-Script 2.0.6 on
legacy, click 8 + Flask-Script-NG on modern), so running the suite on both stacks covers both.
"""
from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from flask_migrate import commands, dispatch, spec
from tests.conftest import FRONTS, Project, copy_app, sqlite_url

SPECS = {command.name: command for command in spec.command_specs()}
NAMES = list(SPECS)
GROUP = "<group>"

# ---------------------------------------------------------------------------------------------
# Collecting the help texts
# ---------------------------------------------------------------------------------------------

_MARK = "=====FLASK-MIGRATE-HELP {}====="
_MARK_RE = re.compile(r"^=====FLASK-MIGRATE-HELP (.+)=====\n", re.M)

# Run once per front-end, in the project folder: prints `db [CMD] --help` for every name given,
# through the same objects `flask` and `python manage.py` use, each after a marker line.  One
# process per front-end instead of one per command keeps the module fast;
# test_harness_is_the_real_cli checks that it prints exactly what the real command line prints.
_HARNESS = r"""
import sys

front, names = sys.argv[1], sys.argv[2:]
if front == "flask":
    from flask.cli import cli  # the FlaskGroup behind the `flask` command

    def show(args):
        cli.main(args=args, prog_name="python -m flask")
else:
    from manage import manager  # the Flask-Script Manager of manage.py

    def show(args):
        manager.handle("manage.py", args)

for name in names:
    print(%(mark)r.format(name), flush=True)
    args = ["db", "--help"] if name == %(group)r else ["db", name, "--help"]
    try:
        show(args)
    except SystemExit as exit:
        sys.stdout.flush()
        if exit.code not in (0, None):
            print(%(mark)r.format("exit status %%s" %% exit.code), flush=True)
    else:
        print(%(mark)r.format("returned without exiting"), flush=True)
""" % {"mark": _MARK, "group": GROUP}


def _environment(path: Path) -> dict[str, str]:
    return {
        "FLASK_APP": "app.py",
        "DATABASE_URL": sqlite_url(path / "app.db"),
        "PYTHONDONTWRITEBYTECODE": "1",
        # Both click and argparse wrap to $COLUMNS; fix it so the raw texts are reproducible.
        "COLUMNS": "80",
    }


@pytest.fixture(scope="module")
def help_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """One copy of the single-database app, shared by the read-only --help tests."""
    path = tmp_path_factory.mktemp("help") / "single"
    copy_app("single", path)
    return Project(path, "single", _environment(path), None)


def _collect(project: Project, front: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env.update(project.env)
    completed = subprocess.run(
        [sys.executable, "-c", _HARNESS, front, GROUP, *NAMES],
        cwd=project.path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr, completed.stderr
    parts = _MARK_RE.split(completed.stdout)
    texts = dict(zip(parts[1::2], parts[2::2]))
    problems = [key for key in texts if key.startswith(("exit status", "returned"))]
    assert not problems, f"{front}: --help did not exit 0: {problems}\n{completed.stdout}"
    assert set(texts) == {GROUP, *NAMES}, completed.stdout
    return texts


def _in_parallel(function: Any, arguments: dict[Any, Any]) -> dict[Any, Any]:
    """``{key: function(*args)}``, run in threads: each call waits on its own subprocess."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = {key: pool.submit(function, *args) for key, args in arguments.items()}
        return {key: future.result() for key, future in futures.items()}


def _files(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


@pytest.fixture(scope="module")
def help_run(help_project: Project) -> tuple[dict[str, dict[str, str]], set[str]]:
    """(front -> name (a command name, or GROUP) -> the raw ``--help`` text, the files that
    printing all of them added to or removed from the project folder)."""
    before = _files(help_project.path)
    texts = _in_parallel(_collect, {front: (help_project, front) for front in FRONTS})
    return texts, before ^ _files(help_project.path)


@pytest.fixture(scope="module")
def help_texts(help_run) -> dict[str, dict[str, str]]:
    """front -> name (a command name, or GROUP) -> the raw ``--help`` text."""
    return help_run[0]


# ---------------------------------------------------------------------------------------------
# Parsing click's and argparse's help into one structure
# ---------------------------------------------------------------------------------------------


def _words(text: str) -> str:
    """Whitespace normalised: click and argparse wrap (and click 7 spaces) differently."""
    return " ".join(text.split())


@dataclass
class Entry:
    term: str
    help: str


@dataclass
class ParsedHelp:
    usage: str
    description: str
    sections: list[tuple[str, list[Entry]]] = field(default_factory=list)
    #: The closing text after the sections (click's and argparse's ``epilog``).
    epilog: str = ""

    def section_titles(self) -> list[str]:
        return [title.lower() for title, _ in self.sections]

    def entries(self, *titles: str) -> list[Entry]:
        return [entry for title, entries in self.sections if title.lower() in titles
                for entry in entries]


_SECTION_RE = re.compile(r"^([A-Za-z][A-Za-z ]*):\s*$")


def _split_epilog(lines: list[str]) -> tuple[list[str], str]:
    """The lines before the epilog, and the epilog (it starts with the traceback hint)."""
    start = dispatch.TRACEBACK_HINT.split()[0] + " " + dispatch.TRACEBACK_ENV
    for index, line in enumerate(lines):
        # The group's description holds the same words, before any section.
        if line.strip().startswith(start) and any(_SECTION_RE.match(l) for l in lines[:index]):
            return lines[:index], _words(" ".join(lines[index:]))
    return lines, ""


def parse_help(text: str) -> ParsedHelp:
    """Split one ``--help`` text into usage, description, titled sections of entries, epilog."""
    lines, epilog = _split_epilog(text.strip("\n").splitlines())
    assert lines and lines[0].lower().startswith("usage:"), text
    index = 1
    usage = [lines[0]]
    while index < len(lines) and lines[index].startswith(" ") and lines[index].strip():
        usage.append(lines[index])  # a wrapped usage line
        index += 1
    description: list[str] = []
    parsed = ParsedHelp(_words(" ".join(usage)), "")
    entries: list[Entry] | None = None
    indent = None
    for line in lines[index:]:
        header = _SECTION_RE.match(line)
        if header:
            entries = []
            indent = None
            parsed.sections.append((header.group(1), entries))
            continue
        if entries is None:
            description.append(line)
            continue
        if not line.strip():
            continue  # click 7 separates wrapped entries with a blank line
        width = len(line) - len(line.lstrip())
        if indent is None:
            indent = width
        if width == indent:
            term, _, rest = line.strip().partition("  ")
            entries.append(Entry(term.strip(), rest.strip()))
        else:
            entries[-1].help = _words(f"{entries[-1].help} {line}")
    parsed.description = _words(" ".join(description))
    parsed.epilog = epilog
    return parsed


_HELP_FLAGS = {"-?", "-h", "--help"}


def options_of(parsed: ParsedHelp) -> dict[frozenset[str], tuple[str | None, str]]:
    """Option strings -> (metavar, help), without the front-end's own help option."""
    found: dict[frozenset[str], tuple[str | None, str]] = {}
    for entry in parsed.entries("options", "optional arguments"):
        strings, metavars = set(), set()
        for piece in entry.term.split(", "):
            words = piece.split()
            strings.add(words[0])
            metavars.update(words[1:])
        if strings & _HELP_FLAGS:
            continue
        assert len(metavars) <= 1, entry
        key = frozenset(strings)
        assert key not in found, f"option {sorted(key)} listed twice"
        found[key] = (metavars.pop() if metavars else None, _words(entry.help))
    return found


def positionals_of(parsed: ParsedHelp) -> list[tuple[str, str]]:
    """The positional arguments listed in the help, in order, as (name, help)."""
    return [
        (entry.term.strip("[]. "), _words(entry.help))
        for entry in parsed.entries("arguments", "positional arguments")
    ]


def _usage_tokens(usage: str) -> list[str]:
    """Split a usage line on spaces outside brackets."""
    tokens, current, depth = [], "", 0
    for char in usage:
        depth += char == "["
        depth -= char == "]"
        if char == " " and depth == 0:
            if current:
                tokens.append(current)
            current = ""
        else:
            current += char
    if current:
        tokens.append(current)
    return tokens


_POSITIONAL_RE = re.compile(r"(\[)?([A-Z_]+)(\s*\.\.\.)?(\])?(\.\.\.)?")


def usage_positionals(front: str, parsed: ParsedHelp) -> list[tuple[str, bool, bool]]:
    """The positional arguments of the usage line, as (name, optional, repeatable).

    click: ``Usage: python -m flask db CMD [OPTIONS] REVISION`` (``[X]``, ``X...``,
    ``[X]...``); argparse: ``usage: db CMD [-?] [-d DIR] [REVISION]`` (``[X ...]``).
    """
    tokens = _usage_tokens(parsed.usage)
    if front == "flask":
        tokens = tokens[tokens.index("[OPTIONS]") + 1:]
    else:
        tokens = [t for t in tokens[3:] if not t.startswith(("[-", "-"))]
    result = []
    for token in tokens:
        match = _POSITIONAL_RE.fullmatch(token)
        assert match, f"unexpected usage token {token!r} in {parsed.usage!r}"
        result.append((match.group(2), bool(match.group(1)),
                       bool(match.group(3) or match.group(5))))
    return result


def expected_options(options: tuple[spec.Option, ...]) -> dict[frozenset[str], tuple[Any, str]]:
    """What the table says the options section must list."""
    return {
        frozenset(option.parameter.flags): (option.parameter.metavar, _words(option.help))
        for option in options
        if option.kind not in (spec.Kind.ARGUMENT, spec.Kind.ARGUMENTS)
    }


def expected_positionals(command: spec.CommandSpec) -> list[tuple[str, str]]:
    return [
        (option.parameter.metavar, _words(option.help))
        for option in command.options
        if option.kind in (spec.Kind.ARGUMENT, spec.Kind.ARGUMENTS)
    ]


@pytest.fixture(scope="module")
def parsed(help_texts: dict[str, dict[str, str]]) -> dict[str, dict[str, ParsedHelp]]:
    return {
        front: {name: parse_help(text) for name, text in texts.items()}
        for front, texts in help_texts.items()
    }


# ---------------------------------------------------------------------------------------------
# --help parity, per command
# ---------------------------------------------------------------------------------------------


def _both(parsed: dict[str, dict[str, ParsedHelp]], name: str) -> tuple[ParsedHelp, ParsedHelp]:
    return parsed["flask"][name], parsed["script"][name]


@pytest.mark.parametrize("name", NAMES)
def test_options_match(parsed, help_texts, name):
    flask_help, script_help = _both(parsed, name)
    flask_options, script_options = options_of(flask_help), options_of(script_help)
    assert flask_options == script_options, (
        f"{name}: flask db and manage.py db list different options\n"
        f"--- flask\n{help_texts['flask'][name]}--- script\n{help_texts['script'][name]}"
    )
    assert flask_options == expected_options(SPECS[name].options)


def test_help_runs_no_command(help_run):
    """``db CMD --help`` only prints: ``init --help`` made no migrations folder, ``upgrade
    --help`` no database file, and so on for every command, through both front-ends."""
    _, changed = help_run
    assert {"init", "upgrade", "revision"} <= set(NAMES)
    assert changed == set(), sorted(changed)


@pytest.mark.parametrize("name", NAMES)
def test_positional_arguments_match(parsed, help_texts, name):
    """Each positional argument is listed once, with the same help, by both front-ends."""
    flask_help, script_help = _both(parsed, name)
    assert positionals_of(flask_help) == positionals_of(script_help), (
        f"{name}: positional arguments differ\n"
        f"--- flask\n{help_texts['flask'][name]}--- script\n{help_texts['script'][name]}"
    )
    assert positionals_of(flask_help) == expected_positionals(SPECS[name])


@pytest.mark.parametrize("name", NAMES)
def test_usage_positionals_match(parsed, name):
    """The usage lines agree on each positional argument's name, optionality and repetition."""
    flask_usage = usage_positionals("flask", parsed["flask"][name])
    script_usage = usage_positionals("script", parsed["script"][name])
    assert flask_usage == script_usage, (
        f"{name}: usage lines disagree\n  flask:  {parsed['flask'][name].usage}\n"
        f"  script: {parsed['script'][name].usage}"
    )
    assert [entry[0] for entry in script_usage] == [n for n, _ in expected_positionals(SPECS[name])]


@pytest.mark.parametrize("name", NAMES)
def test_description_matches(parsed, name):
    flask_help, script_help = _both(parsed, name)
    assert flask_help.description == script_help.description
    assert flask_help.description == SPECS[name].help
    assert flask_help.description  # every command has a description


@pytest.mark.parametrize("name", NAMES)
def test_epilog_names_the_traceback_variable(parsed, name):
    """Every command's help ends with how to see a full traceback, on both front-ends."""
    for front in FRONTS:
        assert parsed[front][name].epilog == dispatch.TRACEBACK_HINT, front


@pytest.mark.parametrize("name", NAMES)
def test_no_unexpected_sections(parsed, name):
    """Only options and positional arguments are listed; nothing appears twice."""
    allowed = {"options", "optional arguments", "arguments", "positional arguments"}
    for front in FRONTS:
        titles = parsed[front][name].section_titles()
        assert set(titles) <= allowed, (front, titles)
        assert len(titles) == len(set(titles)), (front, titles)


def test_defaults_from_the_signature_reach_the_help(parsed):
    """The defaults shown in --help are the API's, on both front-ends."""
    for front in FRONTS:
        downgrade = dict(positionals_of(parsed[front]["downgrade"]))["REVISION"]
        upgrade = dict(positionals_of(parsed[front]["upgrade"]))["REVISION"]
        assert "Default: -1." in downgrade, (front, downgrade)
        assert "Default: head." in upgrade, (front, upgrade)
        head = options_of(parsed[front]["revision"])[frozenset({"--head"})][1]
        assert "Default: head." in head, (front, head)


# ---------------------------------------------------------------------------------------------
# --help parity, group level
# ---------------------------------------------------------------------------------------------


def test_group_help_lists_every_command(parsed, help_texts):
    flask_group = parsed["flask"][GROUP]
    listed = {entry.term: _words(entry.help) for entry in flask_group.entries("commands")}
    assert set(listed) == set(NAMES), help_texts["flask"][GROUP]
    for name, short in listed.items():
        # click shows a short help: the start of the description.
        assert short and SPECS[name].help.startswith(short.rstrip(".")), (name, short)

    script_text = help_texts["script"][GROUP]
    choices = re.search(r"\{([a-z,-]+)\}", script_text)
    assert choices, script_text
    assert choices.group(1).split(",") == NAMES, script_text
    listed_script = dict(
        (match.group(1), match.group(2))
        for match in re.finditer(r"^    ([a-z-]+)(?:[ ]{2,}(.*))?$", script_text, re.M)
    )
    assert set(listed_script) == set(NAMES), script_text


def test_group_options_match(parsed, help_texts):
    flask_options = options_of(parsed["flask"][GROUP])
    script_options = options_of(parsed["script"][GROUP])
    assert flask_options == script_options, help_texts
    assert flask_options == expected_options(spec.group_options())
    assert set().union(*flask_options) == {"-d", "--directory", "-x", "--x-arg"}


# ---------------------------------------------------------------------------------------------
# Real command lines: usage errors, group options, and the harness checked against the CLI
# ---------------------------------------------------------------------------------------------

#: case -> (arguments after `db`, the word the error message must name)
USAGE_ERRORS = {
    "unknown option": (("upgrade", "--bogus"), "--bogus"),
    "missing option value": (("upgrade", "--tag"), "--tag"),
    "missing group option value": (("-d",), "-d"),
    "unknown command": (("nosuch",), "nosuch"),
}

OTHER_RUNS = {
    "group options": ("-x", "a=1", "-d", "elsewhere", "current"),
    "upgrade --help": ("upgrade", "--help"),
}


@pytest.fixture(scope="module")
def cli_results(help_project):
    """front -> case -> Result: each command line below, run once through each real front-end.

    None of them changes the project (each fails, or only prints help), so they share one
    project and run side by side.
    """
    cases = {case: args for case, (args, _) in USAGE_ERRORS.items()}
    cases.update(OTHER_RUNS)
    runs = {(front, case): (front, *args) for front in FRONTS for case, args in cases.items()}
    results = _in_parallel(help_project.run, runs)
    return {front: {case: results[front, case] for case in cases} for front in FRONTS}


def test_harness_is_the_real_cli(cli_results, help_texts):
    """The in-process collection prints exactly what `flask db` / `manage.py db` print."""
    for front in FRONTS:
        result = cli_results[front]["upgrade --help"]
        assert result.returncode == 0, str(result)
        assert result.stdout == help_texts[front]["upgrade"], front


@pytest.mark.parametrize("front", FRONTS)
def test_group_options_are_accepted(cli_results, front):
    """`db -x ARG -d DIR CMD` parses, and the group's -d reaches the command."""
    current = cli_results[front]["group options"]
    assert current.returncode == 1, str(current)
    assert "elsewhere" in current.stderr, str(current)
    assert "Traceback" not in current.stderr, str(current)


@pytest.mark.parametrize("case", USAGE_ERRORS)
@pytest.mark.parametrize("front", FRONTS)
def test_usage_error_exits_2(cli_results, front, case):
    result = cli_results[front][case]
    assert result.returncode == 2, str(result)
    assert "Traceback" not in result.stderr, str(result)
    assert result.stderr.strip(), str(result)


@pytest.mark.parametrize("case", USAGE_ERRORS)
@pytest.mark.parametrize("front", FRONTS)
def test_usage_error_names_the_culprit(cli_results, front, case):
    result = cli_results[front][case]
    culprit = USAGE_ERRORS[case][1]
    assert re.search(rf"(^|[^\w-]){re.escape(culprit)}([^\w-]|$)", result.stderr), str(result)


# ---------------------------------------------------------------------------------------------
# The table itself
# ---------------------------------------------------------------------------------------------


def test_every_api_parameter_has_an_entry():
    specs = spec.command_specs()  # raises LookupError on a missing entry
    assert [command.function for command in specs] == list(spec.COMMANDS)
    for command in specs:
        signature = inspect.signature(command.function)
        passed = [option for option in command.options if option.api]
        assert [option.name for option in passed] == list(signature.parameters)
        for option in passed:
            assert option.parameter is spec.PARAMETERS[option.name]
            assert option.default == signature.parameters[option.name].default
        # What the command line takes and does not pass on: -d where the API has no folder.
        assert [option.name for option in command.options if not option.api] in (
            [], ["directory"])


def test_an_option_the_api_lacks_is_parsed_and_not_passed():
    """list_templates() has no directory parameter; 'db list-templates -d X' still works."""
    command = SPECS["list-templates"]
    assert "directory" not in inspect.signature(command.function).parameters
    assert not command.accepts("directory") and takes(command, "directory")
    assert dispatch.arguments(command, {"directory": "elsewhere"}, {"directory": "x"}) == {}
    assert dispatch.arguments(SPECS["show"], {"directory": "elsewhere"}, {}) == {
        "directory": "elsewhere"}


def test_the_ctrl_c_sentence_is_the_commands_own():
    """db test works on throwaway databases only: its Ctrl-C line says they are gone, where
    every other command's sends the user to 'db status'."""
    sentences = {name: command.interrupted for name, command in SPECS.items()}
    assert "throwaway databases" in sentences.pop("test")
    assert set(sentences.values()) == {
        "interrupted; run 'db status' to see where each database is"}


def takes(command: spec.CommandSpec, name: str) -> bool:
    """The command line of ``command`` takes the option ``name``."""
    return any(option.name == name for option in command.options)


def test_every_spec_command_is_a_public_api_function():
    import flask_migrate

    for command in spec.command_specs():
        api_name = command.name.replace("-", "_")
        assert getattr(flask_migrate, api_name) is command.function
        assert getattr(commands, api_name) is command.function


def test_spec_covers_the_commands_of_the_spec_document():
    spec_document = {
        "list-templates", "init", "revision", "migrate", "edit", "merge", "upgrade",
        "downgrade", "show", "history", "heads", "branches", "current", "stamp", "check",
    }
    # Commands the later issues added: status and lint (deploys), doctor and convert-multidb
    # (legacy), test (tested migrations; it runs env.py, so it takes -x too).
    assert spec_document <= set(NAMES)
    assert set(NAMES) - spec_document <= {"status", "lint", "doctor", "convert-multidb", "test"}
    x_commands = {name for name, command in SPECS.items() if command.accepts("x_arg")}
    assert x_commands == {"migrate", "upgrade", "downgrade", "test"}


@pytest.mark.parametrize("name", NAMES)
def test_every_command_takes_directory(name):
    """SPEC section 3: "All take -d/--directory"."""
    assert takes(SPECS[name], "directory")


def test_unknown_parameter_is_refused():
    def frobnicate(directory=None, wibble=3):
        """Do something."""

    with pytest.raises(LookupError, match="wibble"):
        spec.command_spec(frobnicate)


def test_flag_defaulting_to_true_is_refused():
    def frobnicate(directory=None, verbose=True):
        """Do something."""

    with pytest.raises(ValueError, match="verbose"):
        spec.command_spec(frobnicate)


def test_defaults_come_from_the_signature():
    def frobnicate(directory=None, revision="zz42", head="branch@head", verbose=False):
        """Do something."""

    command = spec.command_spec(frobnicate)
    options = {option.name: option for option in command.options}
    assert options["revision"].default == "zz42"
    assert "zz42" in options["revision"].help
    assert "branch@head" in options["head"].help
    assert "Default" not in options["directory"].help  # None is not shown as a default

    real = {option.name: option for option in SPECS["downgrade"].options}
    assert real["revision"].default == "-1" and "-1" in real["revision"].help
    real = {option.name: option for option in SPECS["upgrade"].options}
    assert real["revision"].default == "head" and "head" in real["revision"].help


def test_command_help_is_the_first_docstring_paragraph():
    def list_frobs(directory=None):
        """List the frobs,
        every one of them.

        Not this paragraph.
        """

    command = spec.command_spec(list_frobs)
    assert command.name == "list-frobs"
    assert command.help == "List the frobs, every one of them."
    for name, command in SPECS.items():
        first = inspect.getdoc(command.function).split("\n\n")[0]
        # reStructuredText ``literals`` are shown in single quotes on a terminal.
        assert command.help == _words(first).replace("``", "'"), name
