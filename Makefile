# Two commands do all the set-up on a fresh machine (Python 3.10+):
#   make book   build the virtual environment if needed, execute the notebooks, build _build/html
#   make test   pytest over tests/, nbval over every notebook in _toc.yml (timed), and a strict site build
VENV    ?= .venv
PY      := $(VENV)/bin/python
JB      := $(VENV)/bin/jupyter-book
STAMP   := $(VENV)/.installed
PYTHON3 ?= python3

# The offline data folder beside this repository, when there is one (CI and the dev machines).
ifneq ($(wildcard ../shared/data/MNIST),)
export GANLIB_DATA ?= $(abspath ../shared/data)
endif

# Notebooks are the toc entries that exist as .ipynb files.
TOC_FILES := $(shell sed -n 's/^ *- *file: *//p; s/^root: *//p' _toc.yml)
NOTEBOOKS := $(wildcard $(addsuffix .ipynb,$(TOC_FILES)))

.PHONY: book test env clean
env: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON3) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	touch $(STAMP)

book: $(STAMP)
	$(JB) build . -W --keep-going

test: $(STAMP)
	$(PY) -m pytest tests
	@# one nbval run per notebook, timed: the quick profile promises under a minute each
	@mkdir -p _build && : > _build/notebook_times.txt
	@for nb in $(NOTEBOOKS); do \
	  start=$$(date +%s); \
	  $(PY) -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider -q $$nb || exit 1; \
	  echo "$$nb: $$(( $$(date +%s) - start )) s" >> _build/notebook_times.txt; \
	done
	@echo "notebook run times (GANLIB_PROFILE=$${GANLIB_PROFILE:-auto}, nbval, including kernel start):"
	@cat _build/notebook_times.txt
	mkdir -p _build && $(PY) -c "import yaml; c = yaml.safe_load(open('_config.yml')); c['execute']['execute_notebooks'] = 'off'; yaml.safe_dump(c, open('_build/config-noexec.yml', 'w'))"
	$(JB) build . --config _build/config-noexec.yml --path-output _build/check -W --keep-going

clean:
	rm -rf _build
