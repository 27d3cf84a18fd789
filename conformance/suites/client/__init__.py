"""The client conformance tests: run with ``conformance run --client TEMPLATE``
(argv contract) or ``--client-menu TEMPLATE`` (menu contract). Each test plays
a scripted server to the client under test and names the requirements of
docs/spec.md it checks."""
