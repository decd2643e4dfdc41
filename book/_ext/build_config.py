"""Write the config and table of contents of one edition's build, as ``make book`` and ``make test`` run it.

Usage::

    python book/_ext/build_config.py en OUT_DIR --cache CACHE
    python book/_ext/build_config.py zh_CN OUT_DIR --cache CACHE [--no-execute]

then ``jupyter-book build . --all --config OUT_DIR/_config.yml --toc OUT_DIR/_toc.yml``.
``_config.yml`` itself executes every notebook (``force``), so a plain ``jupyter-book build .``
never shows stale outputs. The Makefile's builds read executions from a jupyter-cache instead:

* ``en``: ``_config.yml`` reading executions from ``CACHE`` (``execute_notebooks: cache``), which
  ``make test`` fills with nbval's run of each notebook and ``make book`` empties first, so that
  there the build executes every notebook once and keeps it for the Chinese edition;
* ``zh_CN``: ``_config.yml`` and ``_toc.yml`` with ``book/zh_CN.yml`` merged over them (its
  ``config``, mapping by mapping, so theme options, launch buttons and extensions stay as in
  English; its ``captions`` for the parts). Its cache, ``CACHE_zh_CN``, is a copy of the English
  edition's ``CACHE`` without the translated notebooks, so those alone run again, with
  ``GANLIB_LANG=zh_CN``. ``--no-execute`` is for extracting messages, which needs no outputs.
"""
import argparse
import shutil
import sys
from pathlib import Path

import nbformat
import yaml
from jupyter_cache import get_cache

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))
from editions import EDITIONS, translated_pages  # noqa: E402  (a sibling module, not a package)


def merged(base: dict, override: dict) -> dict:
    """``base`` with ``override`` merged over it, mappings key by key, anything else replaced."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def read_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def build_config(edition: str, cache: Path, execute: bool) -> dict:
    config = read_yaml(ROOT / "_config.yml")
    if edition != "en":
        config = merged(config, read_yaml(ROOT / "book" / f"{edition}.yml")["config"])
    config["execute"].update(execute_notebooks="cache" if execute else "off", cache=str(cache))
    sphinx = config["sphinx"]
    # Jupyter Book finds local extensions relative to the config file, which is written elsewhere
    sphinx["local_extensions"] = {name: str(ROOT / path) for name, path in sphinx["local_extensions"].items()}
    sphinx.setdefault("config", {})["book_editions"] = list(EDITIONS)  # the language switch may link them
    return config


def build_toc(edition: str) -> dict:
    toc = read_yaml(ROOT / "_toc.yml")
    if edition == "en":
        return toc
    captions = read_yaml(ROOT / "book" / f"{edition}.yml")["captions"]
    for part in toc.get("parts", []):
        if part["caption"] not in captions:
            raise SystemExit(f"book/{edition}.yml: captions has no translation of the part {part['caption']!r}; add it")
        part["caption"] = captions[part["caption"]]
    return toc


def prepare_edition_cache(english_cache: Path, edition_cache: Path) -> None:
    """The English executions less those of the translated notebooks, which the edition runs itself."""
    if not english_cache.exists():
        raise SystemExit(f"no English executions at {english_cache}: build the English edition first (make book)")
    shutil.rmtree(edition_cache, ignore_errors=True)
    shutil.copytree(english_cache, edition_cache)
    cache = get_cache(edition_cache)
    for page in translated_pages():
        path = ROOT / f"{page}.ipynb"
        if not path.exists():
            continue
        try:
            cache.remove_cache(cache.match_cache_notebook(nbformat.read(path, as_version=4)).pk)
        except KeyError:  # not executed in English: the edition's build runs it anyway
            pass


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python book/_ext/build_config.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("edition", choices=["en", *EDITIONS])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--cache", type=Path, required=True, help="the English edition's jupyter-cache")
    parser.add_argument("--no-execute", action="store_true", help="outputs are not needed (extracting messages)")
    args = parser.parse_args(argv)
    cache = args.cache if args.edition == "en" else args.cache.with_name(f"{args.cache.name}_{args.edition}")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in (("_config.yml", build_config(args.edition, cache, not args.no_execute)),
                       ("_toc.yml", build_toc(args.edition))):
        (args.out_dir / name).write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    if args.edition != "en" and not args.no_execute:
        prepare_edition_cache(args.cache, cache)


if __name__ == "__main__":
    main()
