"""Sphinx fixes that keep the book's pages free of JavaScript errors (``tests/test_site.py`` checks
every page in a browser). A local extension, named in ``_config.yml`` under ``local_extensions``.

* sphinx-thebe 0.3 adds its inline configuration script (``const THEBE_JS_URL = ...``) once per
  read of the environment; on a page that carries it twice the second ``const`` is a SyntaxError.
  Identical inline scripts are kept once.

The handler runs before the theme's (priority 100): ``html-page-context`` stops at the first
handler that returns a template name.
"""


def _keep_each_inline_script_once(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        body = getattr(script, "attributes", {}).get("body")
        if not getattr(script, "filename", None) and body is not None:  # inline (None or "")
            if body in seen:
                continue
            seen.add(body)
        kept.append(script)
    # in place: later handlers (MathJax's, for one) add their scripts to this same list
    scripts[:] = kept


def setup(app):
    app.connect("html-page-context", _keep_each_inline_script_once, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
