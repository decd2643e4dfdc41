# Two commands do all the set-up on a fresh machine (Python 3.10+):
#   make book   build the virtual environment if needed, execute the notebooks, build _build/html and
#               the Chinese edition in _build/html/zh_CN
#   make test   pytest over tests/; nbval over every notebook in _toc.yml (timed); again in the smoke
#               profile each notebook whose code that profile changes (full-profile code paths at quick
#               budgets); the strict site build, from nbval's execution of the notebooks; the Chinese
#               edition; and every page of both in headless Chromium (tests/test_site.py)
# bash with pipefail: a failing command fails its recipe line even when piped into tee
SHELL   := /bin/bash
.SHELLFLAGS := -o pipefail -c
VENV    ?= .venv
PY      := $(VENV)/bin/python
JB      := $(VENV)/bin/jupyter-book
STAMP   := $(VENV)/.installed
# the jupyter-cache of executed notebooks that the site builds read (book/_ext/build_config.py)
NB_CACHE := _build/.jupyter_cache
# each edition's build config and toc; the Chinese edition's Sphinx output too (the site gets it as zh_CN/)
EN_DIR  := _build/en
ZH_DIR  := _build/zh_CN
PYTHON3 ?= python3

# The offline data folder beside this repository, when there is one (CI and the dev machines).
ifneq ($(wildcard ../shared/data/MNIST),)
export GANLIB_DATA ?= $(abspath ../shared/data)
endif

# Notebooks are the toc entries that exist as .ipynb files.
TOC_FILES := $(shell sed -n 's/^ *- *file: *//p; s/^root: *//p' _toc.yml)
NOTEBOOKS := $(wildcard $(addsuffix .ipynb,$(TOC_FILES)))

# The English site, every page read again (--all), each notebook's outputs from $(NB_CACHE) or,
# where it has none, executed there; then the Chinese edition: the translated notebooks run again
# with ganlib printing in Chinese, the others reuse the English execution (book/_ext/build_config.py).
define BUILD_ENGLISH
	$(PY) book/_ext/build_config.py en $(EN_DIR) --cache $(NB_CACHE)
	$(JB) build . --all --config $(EN_DIR)/_config.yml --toc $(EN_DIR)/_toc.yml -W --keep-going 2>&1 \
	  | tee _build/site_build.log
endef
define BUILD_EDITION
	$(PY) book/_ext/build_config.py zh_CN $(ZH_DIR) --cache $(NB_CACHE)
	GANLIB_LANG=zh_CN $(JB) build . --all --config $(ZH_DIR)/_config.yml --toc $(ZH_DIR)/_toc.yml \
	  --path-output $(ZH_DIR) -W --keep-going
	rm -rf _build/html/zh_CN && cp -r $(ZH_DIR)/_build/html _build/html/zh_CN
endef

.PHONY: book test env clean translations
env: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON3) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	touch $(STAMP)

book: $(STAMP)
	rm -rf $(NB_CACHE) && mkdir -p _build
	$(BUILD_ENGLISH)
	$(BUILD_EDITION)

test: $(STAMP)
	$(PY) -m pytest tests --ignore=tests/test_site.py
	@# one nbval run per notebook, timed: the quick profile promises under a minute each. Each
	@# notebook that passes is kept, outputs included, as the site build's execution (tests/nbval_cache.py)
	@rm -rf $(NB_CACHE) && mkdir -p _build && : > _build/notebook_times.txt
	@for nb in $(NOTEBOOKS); do \
	  start=$$(date +%s); \
	  $(PY) -m pytest -p tests.nbval_cache --nbval-cache $(NB_CACHE) --nbval-lax --nbval-current-env \
	    -p no:cacheprovider -q $$nb || exit 1; \
	  echo "$$nb: $$(( $$(date +%s) - start )) s" >> _build/notebook_times.txt; \
	done
	@echo "notebook run times (GANLIB_PROFILE=$${GANLIB_PROFILE:-auto}, nbval, including kernel start):"
	@cat _build/notebook_times.txt
	@# the full profile's code paths at quick budgets (GANLIB_PROFILE=smoke), where they differ from the quick run's
	$(PY) tests/run_smoke.py $(NOTEBOOKS)
	@# the site as readers get it (warnings are errors), from nbval's execution of each notebook:
	@# every notebook nbval passed must come from its cache (a miss is a bug in tests/nbval_cache.py)
	$(BUILD_ENGLISH)
	@cached=$$(grep -c 'Using cached notebook' _build/site_build.log); \
	echo "site build: $$cached of $(words $(NOTEBOOKS)) notebooks from nbval's run"; \
	test "$$cached" -eq $(words $(NOTEBOOKS)) || { echo "the site build executed a notebook that nbval had run"; exit 1; }
	$(BUILD_EDITION)
	$(PY) -m pytest tests/test_site.py

clean:
	rm -rf _build

# Update the Chinese catalogs (book/locales/zh_CN) after the English prose changed: new and changed
# messages come in untranslated (tests/test_translations.py lists them). Catalogs exist for the
# translated pages only; PAGES="book/losses ..." starts new ones.
translations: $(STAMP)
	$(PY) book/_ext/build_config.py zh_CN $(ZH_DIR) --cache $(NB_CACHE) --no-execute
	rm -rf $(ZH_DIR)/gettext
	$(JB) build . --config $(ZH_DIR)/_config.yml --toc $(ZH_DIR)/_toc.yml --path-output $(ZH_DIR)/gettext \
	  --builder custom --custom-builder gettext
	cd $(ZH_DIR)/gettext/_build/gettext && for pot in $$(find . -name '*.pot'); do \
	  page=$${pot#./}; page=$${page%.pot}; \
	  [ -f $(CURDIR)/book/locales/zh_CN/LC_MESSAGES/$$page.po ] || [[ " $(PAGES) " == *" $$page "* ]] || rm $$pot; \
	done
	$(VENV)/bin/sphinx-intl update -p $(ZH_DIR)/gettext/_build/gettext -l zh_CN -d book/locales
