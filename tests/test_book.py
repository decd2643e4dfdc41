"""The book's structure: toc and files agree, notebooks are clean, the Colab cell is right."""
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())


def toc_entries(node=TOC):
    """Every `file:`/`root:` entry of _toc.yml, in order."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("file", "root"):
                yield value
            else:
                yield from toc_entries(value)
    elif isinstance(node, list):
        for item in node:
            yield from toc_entries(item)


NOTEBOOKS = sorted((ROOT / "book").rglob("*.ipynb"))
NOTEBOOKS = [nb for nb in NOTEBOOKS if ".ipynb_checkpoints" not in nb.parts]


def test_every_toc_entry_exists_once():
    for entry in toc_entries():
        found = [p for p in (ROOT / f"{entry}.ipynb", ROOT / f"{entry}.md") if p.exists()]
        assert len(found) == 1, f"_toc.yml entry {entry!r} should match exactly one .ipynb or .md, found {found}"


def test_every_notebook_is_in_the_toc():
    listed = set(toc_entries())
    for nb in NOTEBOOKS:
        stem = nb.relative_to(ROOT).with_suffix("").as_posix()
        assert stem in listed, f"{nb.relative_to(ROOT)} is not in _toc.yml: add `- file: {stem}`"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(nb):
    cells = json.loads(nb.read_text())["cells"]
    dirty = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{nb.name}: cells {dirty} have outputs; clear them (the build executes notebooks)"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_starts_with_guarded_colab_install_of_this_repository(nb):
    code = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
    first = "".join(code[0]["source"])
    assert 'if "google.colab" in sys.modules:' in first, f"{nb.name}: the first code cell must be the guarded Colab install"
    urls = re.findall(r"git\+(https://[^\"']+)", first)
    assert urls == [CONFIG["repository"]["url"]], (
        f"{nb.name}: the Colab cell installs {urls}, but _config.yml's repository.url is "
        f"{CONFIG['repository']['url']}; make them the same")
    second = "".join(code[1]["source"])
    assert "describe_environment()" in second, f"{nb.name}: the second code cell must print ganlib.describe_environment()"


def test_config_builds_only_toc_files_and_executes_notebooks():
    assert CONFIG["only_build_toc_files"] is True
    # a plain `jupyter-book build .` executes every notebook; the Makefile's builds read a cache that
    # make book empties first and make test fills with nbval's run (book/_ext/build_config.py)
    assert CONFIG["execute"]["execute_notebooks"] == "force"
    makefile = (ROOT / "Makefile").read_text()
    book_recipe = makefile.split("\nbook:", 1)[1].split("\n\n", 1)[0]
    assert "rm -rf $(NB_CACHE)" in book_recipe and "--nbval-cache $(NB_CACHE)" in makefile
    assert makefile.count("build_config.py en $(EN_DIR) --cache $(NB_CACHE)") == 1
    assert "sphinx_exercise" in CONFIG["sphinx"]["extra_extensions"]
    assert CONFIG["bibtex_bibfiles"] == ["references.bib"]


def test_every_ganlib_package_is_listed_for_the_wheel():
    # pyproject.toml names ganlib's packages one by one; a subpackage missing there installs in
    # editable mode (as here) but is left out of a wheel, e.g. on Colab
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "ganlib").rglob("__init__.py")}
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"
