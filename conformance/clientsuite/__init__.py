"""Judging ABP/1 clients: a scripted server, its scenarios, and client runners.

The suite plays the server. ``scripted.ScriptedServer`` listens on loopback,
checks every byte a client sends against the protocol's schemas, and answers
the way a scenario (``scenarios``) says: by the spec, split into tiny
segments, ended only by end of stream, never, and so on. ``runner`` starts the
client under test (argv or menu contract, docs/spec.md section 8) with a
deadline and kills it by PID when the deadline passes. The pytest tests in
``conformance.client_tests`` and ``conformance serve`` are built on these.
"""
