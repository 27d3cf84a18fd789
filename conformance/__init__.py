"""The ABP/1 conformance suite: judges a server or a client against docs/spec.md.

``conformance run`` (``conformance.cli``) runs the pytest packages
``conformance.server_tests``, ``conformance.counter_tests`` and
``conformance.client_tests`` through the plugin ``conformance.plugin``, and
``conformance.reports`` shows the verdict, requirement by requirement.
"""
