"""docs/plugins.md against the code: every hook with its exact signature, the tutorial's files identical to
what ``conjure plugins new`` writes, the tutorial's final module working, and its commands parsing."""
import ast
import importlib.util
import inspect
import re
import shlex
import sys
from pathlib import Path

import pytest

from engine import Request, hookspecs
from engine.cli import _parser
from engine.scaffold import render
from engine.testing import check_generator, make_engine

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "plugins.md"
TEXT = DOC.read_text(encoding="utf-8")
HOOKS = [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(f, "conjure_spec")]


def _blocks(marker: str) -> dict[str, str]:
    """Code blocks preceded by ``<!-- MARKER: PATH -->``, as {PATH: code}."""
    rx = re.compile(rf"<!-- {marker}: (\S+) -->\n```\w*\n(.*?)```", re.S)
    return {m.group(1): m.group(2) for m in rx.finditer(TEXT)}


def _spec_def_lines() -> dict[str, str]:
    """``def name(args) -> ret:`` exactly as written in engine/hookspecs.py."""
    src = (ROOT / "engine" / "hookspecs.py").read_text(encoding="utf-8")
    out = {}
    for node in ast.parse(src).body:
        if isinstance(node, ast.FunctionDef):
            seg = ast.get_source_segment(src, node)
            out[node.name] = seg[:seg.index(":\n") + 1]
    return out


HOOKS_IN_SOURCE_ORDER = list(_spec_def_lines())


def test_hooks_found():
    assert len(HOOKS) == 7 and "register_level_generators" in HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_its_exact_signature(hook):
    params = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
    short = f"{hook}({params})"  # e.g. register_level_generators(register)
    assert f"### `{short}`" in TEXT, f"docs/plugins.md has no heading for {short}"
    assert _spec_def_lines()[hook] in TEXT, f"docs/plugins.md lacks the exact signature of {hook}"


def test_no_documented_hook_that_does_not_exist():
    section = TEXT[TEXT.index("## Hook reference"):TEXT.index("\n## ", TEXT.index("## Hook reference") + 5)]
    documented = re.findall(r"^### `(\w+)\(", section, re.M)
    assert documented == sorted(documented, key=HOOKS_IN_SOURCE_ORDER.index)
    assert set(documented) == set(HOOKS)


def test_tutorial_files_match_the_scaffold():
    files = render("mazes", "level")
    shown = _blocks("scaffold")
    assert set(shown) == {"pyproject.toml", "conjure_mazes/__init__.py", "tests/test_mazes.py"}
    for path, code in shown.items():
        assert code == files[path], f"docs/plugins.md shows a stale {path}; regenerate it from engine/scaffold.py"


def test_tutorial_final_module_keeps_the_scaffold_generator_and_works(tmp_path):
    final = _blocks("tutorial")["conjure_mazes/__init__.py"]
    scaffold = render("mazes", "level")["conjure_mazes/__init__.py"]
    generator = scaffold[scaffold.index("class MazesGenerator"):scaffold.index("@hookimpl")].rstrip()
    assert generator in final
    pkg = tmp_path / "conjure_mazes_doc"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(final)
    spec = importlib.util.spec_from_file_location("conjure_mazes_doc", pkg / "__init__.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["conjure_mazes_doc"] = mod
    try:
        spec.loader.exec_module(mod)
        eng = make_engine(mod, builtins=True)
        assert {p.name: p.registered for p in eng.plugins()}["conjure_mazes_doc"] == [
            "level generator mazes", "exporter mazes-ascii"]
        check_generator(eng, "mazes", seeds=[0, 7], params_cases=[{}, {"width": 40}])
        level = eng.generate("level", "mazes", seed=7, params={"width": 12, "height": 9})
        (path,) = eng.export(level, tmp_path / "maze.mazes.txt")
        rows = path.read_text().splitlines()
        assert len(rows) == 9 and all(len(r) == 12 for r in rows) and rows[1][1] == "S" and rows[7][10] == "E"
        (path,) = eng.export(level, tmp_path / "plain.mazes.txt", entities="no")
        assert set(path.read_text()) <= {".", "#", "\n"}
    finally:
        sys.modules.pop("conjure_mazes_doc", None)


def test_commands_in_the_docs_parse():
    commands = [ln.strip() for block in re.findall(r"```sh\n(.*?)```", TEXT, re.S) for ln in block.splitlines()
                if ln.strip().startswith("conjure ")]
    assert len(commands) >= 8
    parser = _parser()
    for cmd in commands:
        argv = shlex.split(cmd.split("#")[0])[1:]
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"docs/plugins.md: `{cmd}` does not parse")


def test_request_methods_named_in_the_docs_exist():
    for name in set(re.findall(r"request\.(\w+)\(", TEXT)) | set(re.findall(r"\br\.(\w+)\(", TEXT)):
        assert callable(getattr(Request, name, None)), f"docs mention request.{name}() which does not exist"


def test_docs_name_the_helpers_that_exist():
    import engine.quality
    import engine.testing
    import engine.weights

    for mod, names in ((engine.testing, ["make_engine", "check_generator", "conjure_engine"]),
                       (engine.weights, ["load_safetensors", "load_model_card", "save_safetensors"]),
                       (engine.quality, ["dungeon_problems", "platformer_problems"])):
        for n in names:
            assert hasattr(mod, n) and n in TEXT, n
    for phrase in ("never pickle", "importlib.resources", "request.torch_generator()", "request.rng()",
                   "CONJURE_TRACE_PLUGINS", "generate_batch", "version"):
        assert phrase in TEXT, phrase


# --------------------------------------------------------------------------------------------- optional protocols
def _protocol_members() -> dict[str, list[str]]:
    """{protocol: its member lines exactly as written in engine/generator.py} (``def ...: ...``, ``name: type``)."""
    from engine.generator import PROTOCOLS

    src = (ROOT / "engine" / "generator.py").read_text(encoding="utf-8")
    wanted = {p.__name__ for p in PROTOCOLS}
    out = {}
    for node in ast.parse(src).body:
        if isinstance(node, ast.ClassDef) and node.name in wanted:
            out[node.name] = [ast.get_source_segment(src, n).strip() for n in node.body
                              if isinstance(n, (ast.FunctionDef, ast.AnnAssign))]
    assert set(out) == wanted
    return out


PROTOCOL_SECTION = TEXT[TEXT.index("## Optional generator protocols"):TEXT.index("## The exporter contract")]


@pytest.mark.parametrize("name", sorted(_protocol_members()))
def test_every_optional_protocol_is_documented_with_its_exact_members(name):
    members = _protocol_members()[name]
    assert members, f"{name} declares no members"
    part = PROTOCOL_SECTION.split(f"### `{name}`", 1)
    assert len(part) == 2, f"docs/plugins.md has no heading for the protocol {name}"
    body = part[1].split("\n### ", 1)[0]
    for line in members:
        assert line in body, f"docs/plugins.md: {name} lacks `{line}`"


def test_no_documented_protocol_that_does_not_exist():
    assert sorted(re.findall(r"^### `(\w+)`", PROTOCOL_SECTION, re.M)) == sorted(_protocol_members())


def _member_names() -> set[str]:
    from engine.generator import PROTOCOLS

    names = {"id", "kind", "version", "description", "params", "generate", "generate_batch", "validate",
             "train_options"}  # the contract, and Trainable's documented optional attribute
    for p in PROTOCOLS:
        names |= {n for n in vars(p) if not n.startswith("_")} | set(getattr(p, "__annotations__", {}))
    return names


GENERATOR_NAMES = {"gen", "generator", "g", "other", "provider"}


def test_the_engine_looks_up_no_undeclared_generator_attribute():
    """Every ``getattr(gen, "NAME", ...)`` in engine/ names the contract or a declared protocol member, so a
    modder finds every ability the engine looks for in engine/generator.py and here."""
    known = _member_names()
    hidden = []
    for path in sorted((ROOT / "engine").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("getattr", "hasattr")
                    and len(node.args) >= 2 and isinstance(node.args[0], ast.Name)
                    and node.args[0].id in GENERATOR_NAMES and isinstance(node.args[1], ast.Constant)
                    and node.args[1].value not in known):
                hidden.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.args[1].value}")
    assert not hidden, "undeclared generator attributes (declare them in engine/generator.py): " + ", ".join(hidden)


def test_built_in_generators_implement_whole_protocols(eng):
    from engine.generator import PROTOCOLS

    for gen in eng.generators():
        for proto in PROTOCOLS:
            members = {n for n in vars(proto) if not n.startswith("_")} | set(getattr(proto, "__annotations__", {}))
            has = {m for m in members if getattr(gen, m, None) is not None}
            assert not has or isinstance(gen, proto), f"{gen.id} implements only {sorted(has)} of {proto.__name__}"


# --------------------------------------------------------------------------------------------- the map of the house
def _on_disk() -> tuple[set[str], set[str]]:
    """(every module and folder of engine/ as ``x.py``/``x/``, every folder of plugins/ as ``x/``)."""
    def names(folder: Path, files: bool) -> set[str]:
        out = set()
        for p in folder.iterdir():
            if p.name.startswith((".", "__pycache__")) or p.name.endswith(".egg-info"):
                continue
            if p.is_dir():
                out.add(p.name + "/")
            elif files and p.suffix == ".py":
                out.add(p.name)
        return out

    return names(ROOT / "engine", True), names(ROOT / "plugins", False)


def _listed(block: str, top: str) -> set[str]:
    """Names listed (indented, first word) under ``top`` in a layout block, up to the next top-level line."""
    out, inside = set(), False
    for line in block.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            inside = line.split()[0] == top
        elif inside:
            out.add(line.split()[0])
    return out


def test_every_engine_module_and_plugins_folder_is_on_the_map():
    import engine

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Repository layout"):]
    block = re.search(r"```\n(.*?)```", section, re.S).group(1)
    doc = engine.__doc__
    engine_doc = doc[doc.index("The modules of ``engine/``"):doc.index("The folders of ``plugins/``")]
    plugins_doc = doc[doc.index("The folders of ``plugins/``"):]
    engine_files, plugin_folders = _on_disk()
    for where, got_engine, got_plugins in (
            ("README.md's layout section", _listed(block, "engine/"), _listed(block, "plugins/")),
            ("engine/__init__.py's docstring", {ln.split()[0] for ln in engine_doc.splitlines()[2:] if ln.strip()},
             {ln.split()[0] for ln in plugins_doc.splitlines()[2:] if ln.strip()})):
        assert not engine_files - got_engine, f"{where} lacks engine/ {sorted(engine_files - got_engine)}"
        assert not got_engine - engine_files, f"{where} lists engine/ {sorted(got_engine - engine_files)}, gone"
        assert not plugin_folders - got_plugins, f"{where} lacks plugins/ {sorted(plugin_folders - got_plugins)}"
        assert not got_plugins - plugin_folders, f"{where} lists plugins/ {sorted(got_plugins - plugin_folders)}"
