"""Prepare the Chinese edition's build: its config, its table of contents and its execution cache.

Usage: ``python book/_ext/edition_config.py OUT_DIR [--no-execute]``, then
``jupyter-book build . --config OUT_DIR/_config.yml --toc OUT_DIR/_toc.yml`` (``make book`` does
both). It writes

* ``OUT_DIR/_config.yml``: ``_config.yml`` with ``config`` of ``book/zh_CN.yml`` merged over it,
  mapping by mapping, so the edition changes only what that file names (theme options, launch
  buttons and extensions stay as in English);
* ``OUT_DIR/_toc.yml``: ``_toc.yml`` with its part captions translated (``captions``);
* unless ``--no-execute`` (for extracting messages, which needs no outputs): the edition's
  execution cache, a copy of the English edition's (``_build/.jupyter_cache``) without the
  notebooks that have a catalog, so those alone run again, with ``GANLIB_LANG=zh_CN``.
"""
import shutil
import sys
from pathlib import Path

import nbformat
import yaml
from jupyter_cache import get_cache

ROOT = Path(__file__).resolve().parents[2]
EDITION = yaml.safe_load((ROOT / "book" / "zh_CN.yml").read_text(encoding="utf-8"))
CATALOGS = ROOT / "book" / "locales" / "zh_CN" / "LC_MESSAGES"
ENGLISH_CACHE = ROOT / "_build" / ".jupyter_cache"


def merged(base: dict, override: dict) -> dict:
    """``base`` with ``override`` merged over it, mappings key by key, anything else replaced."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def translated_notebooks() -> list[Path]:
    """The notebooks that have a catalog, i.e. that the edition translates."""
    pages = [p.relative_to(CATALOGS).with_suffix("") for p in CATALOGS.rglob("*.po")]
    return sorted(ROOT / f"{page}.ipynb" for page in pages if (ROOT / f"{page}.ipynb").exists())


def edition_config(no_execute: bool) -> dict:
    config = merged(yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8")), EDITION["config"])
    # Jupyter Book finds local extensions relative to the config file, which is written elsewhere
    config["sphinx"]["local_extensions"] = {
        name: str(ROOT / path) for name, path in config["sphinx"]["local_extensions"].items()}
    if no_execute:
        config["execute"]["execute_notebooks"] = "off"
    return config


def edition_toc() -> dict:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    for part in toc.get("parts", []):
        if part["caption"] not in EDITION["captions"]:
            raise SystemExit(f"book/zh_CN.yml: captions has no Chinese for the part {part['caption']!r}; add it")
        part["caption"] = EDITION["captions"][part["caption"]]
    return toc


def prepare_cache(config: dict) -> None:
    cache_dir = ROOT / config["execute"]["cache"]
    shutil.rmtree(cache_dir, ignore_errors=True)
    if not ENGLISH_CACHE.exists():
        return  # nothing to reuse: the edition's build executes every notebook
    shutil.copytree(ENGLISH_CACHE, cache_dir)
    cache = get_cache(cache_dir)
    for path in translated_notebooks():
        try:
            cache.remove_cache(cache.match_cache_notebook(nbformat.read(path, as_version=4)).pk)
        except KeyError:  # not executed in English (yet): it runs in the edition's build anyway
            pass


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) not in (1, 2) or args[1:] not in ([], ["--no-execute"]):
        sys.exit("usage: python book/_ext/edition_config.py OUT_DIR [--no-execute]")
    out = Path(args[0])
    out.mkdir(parents=True, exist_ok=True)
    config = edition_config(no_execute="--no-execute" in args)
    for name, data in (("_config.yml", config), ("_toc.yml", edition_toc())):
        (out / name).write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    if "--no-execute" not in args:
        prepare_cache(config)
