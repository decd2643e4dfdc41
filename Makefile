# Two commands do all the set-up on a fresh machine (Python 3.10+):
#   make book   build the virtual environment if needed, execute the notebooks, build _build/html
#   make test   pytest over tests/, nbval over every notebook in _toc.yml (timed), every notebook again in
#               the smoke profile (full-profile code at quick budgets) and the strict site build, two at
#               a time; then every page of the site in headless Chromium (tests/test_site.py)
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

# `make test` runs its checks two at a time (CI has two cores), each on one torch thread: the
# site build, pytest, and every notebook under nbval (quick profile) and in the smoke profile.
# The longest go first. Each check's output is printed whole when it ends (--output-sync).
CHECKS      := _build/checks
NBVAL_RUNS  := $(patsubst %.ipynb,$(CHECKS)/%.nbval,$(NOTEBOOKS))
# the two slowest in the smoke profile (about 4 min each) start first, so that they do not end last
SLOWEST     := $(filter %/applications.ipynb %/applications_image.ipynb,$(NOTEBOOKS))
SMOKE_RUNS  := $(patsubst %.ipynb,$(CHECKS)/%.smoke,$(SLOWEST) $(filter-out $(SLOWEST),$(NOTEBOOKS)))

test: $(STAMP)
	rm -rf $(CHECKS)
	$(MAKE) -j2 --output-sync=target --no-print-directory checks
	@echo "check times (GANLIB_PROFILE=$${GANLIB_PROFILE:-auto}; two at a time, one thread each):"
	@cat $(CHECKS)/*.time $(CHECKS)/*/*.time
	@# the built site read in headless Chromium
	$(PY) -m pytest tests/test_site.py

.PHONY: checks
checks: $(CHECKS)/site.done $(SMOKE_RUNS) $(CHECKS)/pytest.done $(NBVAL_RUNS)

# timed: `$(call timed,NAME,COMMAND)` runs COMMAND on one thread and writes NAME's time beside its stamp
timed = @mkdir -p $(dir $@) && start=$$(date +%s) && OMP_NUM_THREADS=1 $(2) && \
	echo "$(1): $$(( $$(date +%s) - start )) s" > $@.time && touch $@

# the site as readers get it: notebooks executed, warnings are errors
$(CHECKS)/site.done: $(STAMP)
	$(call timed,site build,$(JB) build . -W --keep-going)

$(CHECKS)/pytest.done: $(STAMP)
	$(call timed,pytest,$(PY) -m pytest tests --ignore=tests/test_site.py -p no:cacheprovider -q)

# the quick profile promises under a minute a notebook
$(CHECKS)/%.nbval: %.ipynb $(STAMP)
	$(call timed,$< (nbval),$(PY) -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider -q $<)

# the full profile's code paths at quick budgets (GANLIB_PROFILE=smoke)
$(CHECKS)/%.smoke: %.ipynb $(STAMP)
	$(call timed,$< (smoke),$(PY) tests/run_smoke.py $<)

clean:
	rm -rf _build
