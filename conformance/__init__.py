"""The ABP/1 conformance suite: judges a server or a client against docs/spec.md.

By role:

- ``cli`` (the ``conformance`` command), ``run_suite`` (pytest run in this
  process), ``plugin`` (the pytest plugin: options, markers, the ``abp``
  fixture, transcripts on reports);
- ``harness/``: talking to an implementation (connections and transcripts,
  the one line reader, crowds, processes, the framing probe, timing budgets);
- ``judging/``: the test author's session object, verdicts, fuzzing;
- ``suites/server``, ``suites/counter``, ``suites/client``: the tests (the
  client suite's scripted server beside its tests);
- ``reports/``, ``matrix/``, ``bench/``, ``corpus/``: verdicts shown, interop
  matrix, load, and the programs that prove the suite catches what it should.
"""
