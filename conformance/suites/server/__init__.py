"""The server conformance suite: one module per section of docs/spec.md.

Every test names the requirement(s) it checks with
``@pytest.mark.requirement(...)``, quotes the MUST in its docstring, and
reports a failure through the ``abp`` session or ``conformance.judging.verdict.fail``
(the requirement's text, expected and actual bytes; the plugin adds the wire
transcript). Tests share one live server: each uses its own names and never
assumes an empty book.
"""
